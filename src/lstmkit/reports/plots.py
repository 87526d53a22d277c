"""PNG plots for forecasting runs: a few series with their forecasts, training curves, metrics per model.

Each function draws one figure with matplotlib's Agg backend (no display needed), writes it atomically
and returns the path. matplotlib is imported inside the functions (it is an optional dependency); a
missing matplotlib raises a :class:`~lstmkit.errors.ConfigError` that says what to install.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.errors import ConfigError

LSTM_COLOR = "#1f77b4"
ACTUAL_COLOR = "#222222"
BASELINE_COLORS = ["#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib, which is not installed; pip install matplotlib (or lstmkit[forecast])") from None
    matplotlib.use("Agg", force=True)  # never open a window; works on headless machines
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    from lstmkit.training.checkpoint import atomic_write_bytes

    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _rows(history) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Each series' observed history as a 1-D array (leading padding dropped), and ids if known."""
    ids = None
    if hasattr(history, "y") and hasattr(history, "ids"):  # a Panel
        ids = np.asarray(history.ids)
        history = history.y
    if isinstance(history, np.ndarray) and history.ndim == 2:
        rows = []
        for r in history.astype(np.float64):
            finite = np.flatnonzero(np.isfinite(r))
            rows.append(r[finite[0]:] if finite.size else r[:0])
        return rows, ids
    return [np.asarray(r, dtype=np.float64).reshape(-1) for r in history], ids


def _intervals(levels: Sequence[float]) -> list[tuple[int, int, float]]:
    """Symmetric pairs of quantile levels as (lower index, upper index, coverage), widest first."""
    levels = [float(q) for q in levels]
    pairs = []
    for i, lo in enumerate(levels):
        for j, hi in enumerate(levels):
            if lo < 0.5 and abs(lo + hi - 1.0) < 1e-9:
                pairs.append((i, j, hi - lo))
    return sorted(pairs, key=lambda p: -p[2])


def pick_series(n_total: int, n: int) -> np.ndarray:
    """``n`` row indices spread evenly over ``n_total`` series (deterministic, first and last included)."""
    if n_total <= n:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def plot_forecasts(
    history,
    forecasts: np.ndarray,
    quantiles: np.ndarray | None = None,
    ids: Sequence | None = None,
    path: str | Path = "forecasts.png",
    n: int = 6,
    *,
    levels: Sequence[float] = (),
    actual: np.ndarray | None = None,
    select: Sequence | None = None,
    context: int | None = None,
    title: str | None = None,
) -> Path:
    """History, point forecast and prediction interval(s) of ``n`` series in a grid of small plots.

    Args:
        history: a :class:`~lstmkit.data.panel.Panel`, an (N, T) right-aligned array (NaN before each
            series starts) or a list of N 1-D arrays; each series ends at its forecast origin.
        forecasts: (N, H) point forecasts.
        quantiles: (N, H, Q) quantile forecasts for ``levels`` (shaded: every symmetric pair).
        ids: the N series' names (default: the panel's ids, else 0..N-1).
        n: how many series to draw (spread evenly over the N) unless ``select`` names them.
        actual: (N, H) held-out values, drawn over the forecast (backtests).
        context: history steps shown before the origin (default ``max(4H, 24)``).
    """
    plt = _pyplot()
    rows, panel_ids = _rows(history)
    forecasts = np.asarray(forecasts, dtype=np.float64)
    if forecasts.ndim != 2 or forecasts.shape[0] != len(rows):
        raise ValueError(f"forecasts must be (N, H) with N = {len(rows)} series, got shape {forecasts.shape}")
    N, H = forecasts.shape
    names = np.asarray(ids if ids is not None else panel_ids if panel_ids is not None else np.arange(N))
    if select is not None:
        where = {str(v): i for i, v in enumerate(names)}
        missing = [s for s in select if str(s) not in where]
        if missing:
            raise ValueError(f"series {missing[:3]} are not among the ids")
        chosen = np.array([where[str(s)] for s in select], dtype=int)
    else:
        chosen = pick_series(N, n)
    ctx = context or max(4 * H, 24)
    cols = min(3, len(chosen))
    nrows = int(np.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows), squeeze=False)
    pairs = _intervals(levels) if quantiles is not None else []
    fut = np.arange(1, H + 1)
    for ax, i in zip(axes.flat, chosen):
        h = rows[i][-ctx:]
        ax.plot(np.arange(-len(h) + 1, 1), h, color=ACTUAL_COLOR, lw=1.2, label="history")
        for k, (lo, hi, cov) in enumerate(pairs):
            ax.fill_between(fut, quantiles[i, :, lo], quantiles[i, :, hi], color=LSTM_COLOR,
                            alpha=0.15 + 0.15 * k, lw=0, label=f"{round(100 * cov)}% interval")  # fmt: skip
        if actual is not None:
            a = np.asarray(actual, dtype=np.float64)[i]
            ax.plot(np.r_[0, fut], np.r_[h[-1] if len(h) else np.nan, a], color=ACTUAL_COLOR, lw=1.2, ls="--", label="actual")
        ax.plot(np.r_[0, fut], np.r_[h[-1] if len(h) else np.nan, forecasts[i]], color=LSTM_COLOR, lw=1.6, label="forecast")
        ax.axvline(0.5, color="#999999", lw=0.8, ls=":")
        ax.set_title(str(names[i]), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title or "Forecasts (steps relative to the forecast origin)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return _save(fig, path)


def plot_training(history, path: str | Path = "training.png", title: str | None = None) -> Path:
    """Training (solid) and validation (dashed) loss per epoch; one colour per ensemble member.

    ``history``: one run's rows (``[{"step", "train_loss", "val_loss"?}, …]``) or a list of them.
    """
    plt = _pyplot()
    runs = history if history and isinstance(history[0], (list, tuple)) else [history]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for k, rows in enumerate(runs):
        if not rows:
            continue
        color = f"C{k % 10}"
        label = f"member {k + 1}" if len(runs) > 1 else "train"
        steps = [r["step"] for r in rows]
        marker = "o" if len(rows) < 30 else None  # a short run is a few points: show them
        ax.plot(steps, [r["train_loss"] for r in rows], color=color, lw=1.4, marker=marker, ms=3, label=f"{label} (train)" if len(runs) > 1 else label)
        if any("val_loss" in r for r in rows):
            ax.plot(steps, [r.get("val_loss", np.nan) for r in rows], color=color, lw=1.4, ls="--", marker=marker, ms=3,
                    label=f"{label} (validation)" if len(runs) > 1 else "validation")  # fmt: skip
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (normalised scale)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Training curve", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_metrics(table: pd.DataFrame, path: str | Path = "metrics.png", metric: str = "sMAPE", title: str | None = None) -> Path:
    """Bar chart of ``metric`` (default sMAPE; lower is better) per model, grouped by ``group``."""
    plt = _pyplot()
    if metric not in table.columns:
        raise ValueError(f"the metrics table has no column {metric!r}; its columns are {list(table.columns)}")
    t = table if "group" in table.columns else table.assign(group="all")
    groups = list(pd.unique(t["group"]))
    models = list(pd.unique(t["model"]))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 0.5 * len(groups) * len(models)), 3.8))
    others = iter(BASELINE_COLORS * 3)
    for j, model in enumerate(models):
        vals = [t.loc[(t["group"] == g) & (t["model"] == model), metric].astype(float).mean() for g in groups]
        x = np.arange(len(groups)) + (j - (len(models) - 1) / 2) * width
        color = LSTM_COLOR if model == "lstm" else next(others)
        bars = ax.bar(x, vals, width * 0.95, color=color, label=model)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.legend(fontsize=8, ncol=min(5, len(models)), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or f"{metric} per model", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
