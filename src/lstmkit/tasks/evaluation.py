"""Honest evaluation: hold out the end of every series, refit, and score the LSTM beside the baselines.

``backtest`` makes K rolling origins: window k (oldest first) trains on everything up to
``T - (K - k)·H`` steps and forecasts the next H. Each window refits the forecaster from scratch on the
truncated data, so nothing after an origin reaches the model, its scaling or its deseasonalisation.
The baselines (naive, seasonal naive, Naive2, and statsforecast's AutoETS and Theta when installed)
forecast the same windows from the same histories.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lstmkit.data.panel import Panel
from lstmkit.errors import ConfigError, DataError
from lstmkit.tasks import baselines
from lstmkit.training import metrics

log = logging.getLogger(__name__)

STAT_BASELINES = ("theta", "ets")


@dataclass
class Backtest:
    """Forecasts and actuals of every window: arrays (K, N, H[, Q])."""

    actual: np.ndarray  # (K, N, H)
    forecasts: dict[str, np.ndarray]  # model -> (K, N, H) point forecasts
    quantiles: np.ndarray | None  # (K, N, H, Q) LSTM quantile forecasts
    levels: tuple[float, ...]
    scale: np.ndarray  # (K, N) MASE denominators from each window's history
    ids: np.ndarray
    groups: np.ndarray | None
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Metrics per model (rows) overall and per group: sMAPE, MASE, MAE, RMSE (+ interval scores)."""
        rows = []
        groups = [("all", np.ones(len(self.ids), dtype=bool))]
        if self.groups is not None:
            groups += [(str(g), self.groups == g) for g in pd.unique(self.groups)]
        for gname, sel in groups:
            y = self.actual[:, sel]
            for model, f in self.forecasts.items():
                fs = f[:, sel]
                row = {
                    "group": gname, "model": model, "series": int(sel.sum()),
                    "sMAPE": metrics.smape(y, fs),
                    "MASE": metrics.mase(y.reshape(-1, y.shape[-1]), fs.reshape(-1, y.shape[-1]), self.scale[:, sel].reshape(-1)),
                    "MAE": metrics.mae(y, fs), "RMSE": metrics.rmse(y, fs),
                    "seconds": self.seconds.get(model, np.nan),
                }  # fmt: skip
                if model == "lstm" and self.quantiles is not None:
                    q = self.quantiles[:, sel].reshape(-1, y.shape[-1], len(self.levels))
                    yy = y.reshape(-1, y.shape[-1])
                    row["CRPS"] = metrics.crps_from_quantiles(yy, q, self.levels)
                    lo, hi = _outer_pair(self.levels)
                    if lo is not None:
                        lower, upper = q[..., self.levels.index(lo)], q[..., self.levels.index(hi)]
                        row[f"coverage_{round(100 * (hi - lo))}"] = metrics.coverage(yy, lower, upper)
                rows.append(row)
        return pd.DataFrame(rows)


def _outer_pair(levels: tuple[float, ...]) -> tuple[float | None, float | None]:
    """The widest symmetric pair of levels (e.g. 0.1 and 0.9 → an 80% interval)."""
    for lo in sorted(levels):
        hi = round(1.0 - lo, 10)
        if lo < 0.5 and any(abs(hi - q) < 1e-9 for q in levels):
            return lo, next(q for q in levels if abs(hi - q) < 1e-9)
    return None, None


def backtest(
    forecaster,
    panel: Panel,
    *,
    windows: int = 1,
    groups: np.ndarray | None = None,
    baseline_models: tuple[str, ...] = ("naive", "seasonal_naive", "naive2", *STAT_BASELINES),
    progress: bool = False,
) -> Backtest:
    """Refit ``forecaster`` (an unfitted template: its parameters are reused) at K rolling origins."""
    H = forecaster.horizon
    if windows < 1:
        raise ConfigError(f"--windows must be >= 1, got {windows}")
    n_obs = np.isfinite(panel.y).sum(axis=1)
    need = windows * H + 2
    if n_obs.max() < need:
        raise DataError(
            f"holding out {windows} window(s) of horizon {H} needs series with more than {need} observations; "
            f"the longest has {int(n_obs.max())} — use fewer --windows or a shorter --horizon"
        )
    from lstmkit.data.panel import season_length

    m = forecaster.season_length or season_length(panel.freq)
    K, N = windows, panel.n_series
    actual = np.full((K, N, H), np.nan)
    fc: dict[str, np.ndarray] = {}
    quant = None
    scale = np.full((K, N), np.nan)
    seconds: dict[str, float] = {}
    models = list(baseline_models)
    if any(b in STAT_BASELINES for b in models):
        try:
            import statsforecast  # noqa: F401
        except ImportError:
            log.info("statsforecast is not installed: ETS and Theta baselines skipped (pip install statsforecast)")
            models = [b for b in models if b not in STAT_BASELINES]
    T = panel.y.shape[1]
    for k in range(K):
        cut = (K - k) * H
        hist = panel.truncate(cut)
        actual[k] = panel.y[:, T - cut : T - cut + H]
        y_hist = hist.y.astype(np.float64)
        scale[k] = metrics.mase_scale(y_hist, m)
        has_hist = np.isfinite(y_hist).any(axis=1)
        if not has_hist.all():
            actual[k, ~has_hist] = np.nan  # a series that starts inside the held-out block is not scored
        t0 = time.perf_counter()
        model = type(forecaster)(**forecaster.get_params())
        model.fit(_drop_empty(hist, has_hist), progress=progress)
        pred = np.full((N, H, 1 + len(model.quantiles)), np.nan)
        pred[has_hist] = model.predict(output="array")
        seconds["lstm"] = seconds.get("lstm", 0.0) + time.perf_counter() - t0
        fc.setdefault("lstm", np.full((K, N, H), np.nan))[k] = pred[..., 0]
        if model.quantiles:
            if quant is None:
                quant = np.full((K, N, H, len(model.quantiles)), np.nan)
            quant[k] = pred[..., 1:]
        for b in models:
            t0 = time.perf_counter()
            out = np.full((N, H), np.nan)
            yh = y_hist[has_hist]
            if b == "naive":
                out[has_hist] = baselines.naive(yh, H)
            elif b == "seasonal_naive":
                out[has_hist] = baselines.seasonal_naive(yh, H, m)
            elif b == "naive2":
                out[has_hist] = baselines.naive2(yh, H, m)
            elif b == "theta":
                out[has_hist] = baselines.theta(yh, H, m)
            elif b == "ets":
                out[has_hist] = baselines.ets(yh, H, m)
            else:
                raise ConfigError(f"unknown baseline {b!r}; use naive, seasonal_naive, naive2, theta, ets")
            seconds[b] = seconds.get(b, 0.0) + time.perf_counter() - t0
            fc.setdefault(b, np.full((K, N, H), np.nan))[k] = out
    return Backtest(actual, fc, quant, tuple(forecaster.quantiles), scale, panel.ids, groups, seconds)


def _drop_empty(panel: Panel, keep: np.ndarray) -> Panel:
    if keep.all():
        return panel
    return Panel(
        ids=panel.ids[keep], y=panel.y[keep], start=panel.start[keep], last_time=panel.last_time[keep],
        freq=panel.freq, past=None if panel.past is None else panel.past[keep],
        future=None if panel.future is None else panel.future[keep],
        static=None if panel.static is None else panel.static[keep], names=panel.names,
    )  # fmt: skip
