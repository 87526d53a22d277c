"""lstmkit: Long Short-Term Memory networks, from the cell's six equations to trained models.

Symbols used in shape comments throughout the package:
    B batch · T time steps · I input features · H hidden units · P projection size
    L layers · D directions (1 or 2) · G gate rows (4H for the standard cell)
"""

from __future__ import annotations

__version__ = "0.1.0"

from lstmkit.errors import ConfigError, DataError, ModelDirError, UserError
from lstmkit.layers import GRU, LSTM, RNN, LSTMCell, LSTMState

# The task estimators pull in pandas, the text tools and their models: imported on first use.
_LAZY = {
    "Forecaster": "lstmkit.tasks.forecaster",
    "TextClassifier": "lstmkit.tasks.classifier",
    "TextGenerator": "lstmkit.tasks.generator",
    "Translator": "lstmkit.tasks.translator",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lstmkit' has no attribute {name!r}")


__all__ = [
    "Forecaster",
    "TextClassifier",
    "TextGenerator",
    "Translator",
    "LSTM",
    "LSTMCell",
    "GRU",
    "RNN",
    "LSTMState",
    "UserError",
    "DataError",
    "ConfigError",
    "ModelDirError",
    "__version__",
]
