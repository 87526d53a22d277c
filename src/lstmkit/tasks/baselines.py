r"""Statistical forecasting baselines every forecast is compared against.

* :func:`naive` — the last observed value, repeated: :math:`\hat y_{n+k} = y_n`.
* :func:`seasonal_naive` — the last season repeated: :math:`\hat y_{n+k} = y_{n+k-m\lceil k/m \rceil}`.
* :func:`naive2` — the M3/M4 benchmark: naive on the seasonally adjusted series, reseasonalised,
  :math:`\hat y_{n+k} = (y_n / S_{n}) \cdot S_{n+k}`, where :math:`S` are classical multiplicative
  indices applied only where the M3 90 % autocorrelation test finds seasonality
  (:mod:`lstmkit.data.seasonality`).
* :func:`statsforecast_baselines` (and :func:`ets`, :func:`theta`) — statsforecast's AutoETS and Theta
  (the M3 winner), imported only when called.

Input is either a long frame (``unique_id, ds, y``; other names through ``id=``, ``time=``,
``target=``), laid out by :func:`lstmkit.data.panel.to_panel`, or an already built right-aligned
NaN-padded (N, T) array. Every function returns forecasts shaped (N, horizon), rows in the order in which
series first appear in the frame (the panel's order). Missing values inside a series are carried forward
(last observation) — the baselines need no more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lstmkit.data.seasonality import deseasonalize
from lstmkit.errors import ConfigError, DataError

History = pd.DataFrame | np.ndarray


def history_array(
    data: History, *, target: str = "y", time: str = "ds", id: str | None = "unique_id"
) -> np.ndarray:
    """(N, T) float64 right-aligned, NaN-padded history of ``data`` (a long frame or such an array)."""
    if isinstance(data, pd.DataFrame):
        from lstmkit.data.panel import to_panel

        return np.asarray(to_panel(data, target=target, time=time, id=id).y, dtype=np.float64)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"history must be a long DataFrame or an (N, T) array, got shape {arr.shape}")
    return arr


def _check(horizon: int, season_length: int = 1) -> tuple[int, int]:
    if int(horizon) != horizon or horizon < 1:
        raise ConfigError(f"horizon must be a positive integer, got {horizon!r}")
    if int(season_length) != season_length or season_length < 1:
        raise ConfigError(f"season_length must be a positive integer (1 = no seasonality), got {season_length!r}")
    return int(horizon), int(season_length)


def _ffill(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along the time axis (leading NaNs, i.e. padding, stay NaN)."""
    cols = np.where(np.isnan(values), 0, np.arange(values.shape[1]))
    np.maximum.accumulate(cols, axis=1, out=cols)
    return np.take_along_axis(values, cols, axis=1)


def _last_value(values: np.ndarray) -> np.ndarray:
    last = _ffill(values)[:, -1]
    if np.isnan(last).any():
        row = int(np.flatnonzero(np.isnan(last))[0])
        raise DataError(f"series at row {row} has no observed value; drop it before forecasting")
    return last


def naive(data: History, horizon: int, **columns: str | None) -> np.ndarray:
    """Naive forecast: the last observation for every step. Returns (N, horizon)."""
    h, _ = _check(horizon)
    last = _last_value(history_array(data, **columns))
    return np.repeat(last[:, None], h, axis=1)


def seasonal_naive(data: History, horizon: int, season_length: int, **columns: str | None) -> np.ndarray:
    r"""Seasonal naive: step ``k`` repeats the value one or more whole seasons back.

    :math:`\hat y_{n+k} = y_{n - m + ((k-1) \bmod m) + 1}` (1-based time). Series shorter than one
    season fall back to :func:`naive`. Returns (N, horizon).
    """
    h, m = _check(horizon, season_length)
    Y = _ffill(history_array(data, **columns))
    flat = np.repeat(_last_value(Y)[:, None], h, axis=1)
    if m == 1 or Y.shape[1] < m:
        return flat
    season = Y[:, -m:]  # column j holds phase j; the last observation has phase m - 1
    out = season[:, np.arange(h) % m]
    return np.where(np.isnan(season).any(axis=1, keepdims=True), flat, out)


def naive2(data: History, horizon: int, season_length: int, **columns: str | None) -> np.ndarray:
    """Naive2, the M3 benchmark: naive on the seasonally adjusted series, times the seasonal indices.

    Series failing the M3 seasonality test (or with ``season_length == 1``) get plain naive.
    Returns (N, horizon). This is the M4 benchmark code's Naive2 (R ``acf``, the 1.645 test,
    ``decompose(type="multiplicative")``); on M3 it scores sMAPE 17.88 / 10.03 / 16.76 / 6.30
    (yearly / quarterly / monthly / other) against the M3 paper's 17.88 / 9.95 / 16.91 / 6.30.
    """
    h, m = _check(horizon, season_length)
    d = deseasonalize(history_array(data, **columns), m)
    return _last_value(d.adjusted)[:, None] * d.future(h)


# --------------------------------------------------------------------------------------------------
# statsforecast

#: statsforecast model classes the wrapper can build (by class name), all with a season_length.
STATSFORECAST_MODELS = ("AutoETS", "Theta", "AutoTheta", "OptimizedTheta", "AutoARIMA", "SeasonalNaive")


def _statsforecast():  # -> the statsforecast module
    try:
        import statsforecast
        import statsforecast.models
    except ImportError:
        raise DataError(
            "the ETS and Theta baselines need the package 'statsforecast', which is not installed; "
            "fix: pip install statsforecast   (or: pip install 'lstmkit[forecast]')"
        ) from None
    return statsforecast


def _long_from_array(Y: np.ndarray) -> pd.DataFrame:
    """Back to a long frame with integer ids (row numbers, so statsforecast's sorted output keeps our
    order) and integer time steps (forecasts need no calendar)."""
    Y = _ffill(Y)
    rows, cols = np.nonzero(~np.isnan(Y))  # row-major: by series, then time
    return pd.DataFrame({"unique_id": rows, "ds": cols, "y": Y[rows, cols]})


def statsforecast_baselines(
    data: History,
    horizon: int,
    season_length: int,
    models: Sequence[str] = ("AutoETS", "Theta"),
    *,
    n_jobs: int = 1,
    **columns: str | None,
) -> dict[str, np.ndarray]:
    """Forecasts of statsforecast models, each (N, horizon), keyed by model name.

    ``models`` are class names from :data:`STATSFORECAST_MODELS`, built with ``season_length``.
    A series on which a model fails to fit gets statsforecast's fallback, the naive forecast.
    ``n_jobs`` > 1 fits series in parallel processes.
    """
    h, m = _check(horizon, season_length)
    unknown = [name for name in models if name not in STATSFORECAST_MODELS]
    if unknown or not models:
        raise ConfigError(f"models must name some of {list(STATSFORECAST_MODELS)}, got {list(models)}")
    sf = _statsforecast()
    Y = history_array(data, **columns)
    built = [getattr(sf.models, name)(season_length=m) for name in models]
    engine = sf.StatsForecast(models=built, freq=1, n_jobs=n_jobs, fallback_model=sf.models.Naive())
    out = engine.forecast(df=_long_from_array(Y), h=h)
    out = out.sort_values(["unique_id", "ds"], kind="stable")
    n = Y.shape[0]
    return {name: out[str(model)].to_numpy(np.float64).reshape(n, h) for name, model in zip(models, built)}


def ets(data: History, horizon: int, season_length: int, *, n_jobs: int = 1, **columns: str | None) -> np.ndarray:
    """statsforecast ``AutoETS`` (exponential smoothing, model chosen by AICc). Returns (N, horizon)."""
    return statsforecast_baselines(data, horizon, season_length, ["AutoETS"], n_jobs=n_jobs, **columns)["AutoETS"]


def theta(data: History, horizon: int, season_length: int, *, n_jobs: int = 1, **columns: str | None) -> np.ndarray:
    """statsforecast ``Theta`` (the standard Theta method with M3-test deseasonalisation). (N, horizon)."""
    return statsforecast_baselines(data, horizon, season_length, ["Theta"], n_jobs=n_jobs, **columns)["Theta"]
