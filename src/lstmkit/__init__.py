"""lstmkit: Long Short-Term Memory networks, from the cell's six equations to trained models.

Symbols used in shape comments throughout the package:
    B batch · T time steps · I input features · H hidden units · P projection size
    L layers · D directions (1 or 2) · G gate rows (4H for the standard cell)
"""

from __future__ import annotations

__version__ = "0.1.0"

from lstmkit.errors import ConfigError, DataError, ModelDirError, UserError
from lstmkit.layers import GRU, LSTM, RNN, LSTMCell, LSTMState

__all__ = [
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
