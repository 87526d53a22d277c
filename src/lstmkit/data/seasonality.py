r"""The M3 seasonality test and classical multiplicative decomposition (the Naive2 recipe).

These are the deseasonalisation steps of the M3/M4 competitions' Naive2 benchmark, written once so the
benchmark and the LSTM forecaster adjust series identically:

1. **Seasonality test** (90 % one-sided, Makridakis & Hibon 2000; the M4 benchmark code). With the
   sample autocorrelations

   .. math::
       r_k = \frac{\sum_{t=k}^{n-1} (y_t - \bar y)(y_{t-k} - \bar y)}{\sum_{t=0}^{n-1} (y_t - \bar y)^2},

   a series of length :math:`n \ge 3m` is seasonal with period :math:`m > 1` iff

   .. math::
       |r_m| > 1.645 \sqrt{\frac{1 + 2 \sum_{k=1}^{m-1} r_k^2}{n}}

   (Bartlett's standard error of :math:`r_m` under an MA(m−1) null; 1.645 is the 95 % normal quantile,
   i.e. a 90 % two-sided band).
2. **Seasonal indices** (classical multiplicative decomposition, as ``statsmodels``'
   ``seasonal_decompose(model="multiplicative")``): a centred moving average of order :math:`m`
   (:math:`2 \times m` when :math:`m` is even) estimates the trend-cycle; the ratios
   :math:`y_t / \mathrm{CMA}_t` are averaged per seasonal phase and the :math:`m` averages are rescaled
   to mean 1.

**Phase convention.** Every function accepts one series (1-D) or a right-aligned NaN-padded panel
(2-D, (N, T), see :mod:`lstmkit.data.frames`). Phases are counted from the *end* of the series: index
``p`` of the returned (…, m) array applies to time steps ``t`` (0-based, series length ``n``) with
``(t - n) mod m == p``. Hence the last observation has phase ``m - 1`` and forecast step ``k``
(1-based) has phase ``(k - 1) mod m`` — the same columns for every series of a panel, whatever its
length. Leading NaNs (padding) and inner NaNs (missing values) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: One-sided 95 % normal quantile of the M3 seasonality test (a 90 % two-sided band).
Z_90 = 1.645


def _as_panel(y: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected one series (1-D) or a panel (N, T), got shape {arr.shape}")
    return np.atleast_2d(arr), arr.ndim == 1


def _check_m(m: int) -> int:
    if int(m) != m or m < 1:
        raise ValueError(f"season length m must be a positive integer, got {m!r}")
    return int(m)


def autocorrelations(y: np.ndarray, max_lag: int) -> np.ndarray:
    r"""Sample autocorrelations :math:`r_1 … r_{max\_lag}` (the M3 definition above).

    Returns (max_lag,) for one series, (N, max_lag) for a panel. NaNs (padding, gaps) contribute
    nothing to either sum; a constant series gets NaN.
    """
    Y, single = _as_panel(y)
    X = Y - np.nanmean(Y, axis=1, keepdims=True) if Y.size else Y
    X = np.nan_to_num(X, nan=0.0)  # zeros drop the missing terms from both sums
    T = X.shape[1]
    num = np.stack([np.einsum("nt,nt->n", X[:, k:], X[:, : T - k]) for k in range(1, max_lag + 1)], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.einsum("nt,nt->n", X, X)[:, None]  # (N, max_lag)
    return r[0] if single else r


def seasonality_test(y: np.ndarray, m: int, *, min_cycles: int = 3) -> np.ndarray | bool:
    r"""The M3 90 % autocorrelation test for seasonality of period ``m`` (formula in the module doc).

    Series with ``m == 1`` or fewer than ``min_cycles * m`` observed values are reported non-seasonal,
    as in the M4 benchmark code. Returns a bool for one series, an (N,) bool array for a panel.
    """
    m = _check_m(m)
    Y, single = _as_panel(y)
    n = np.sum(~np.isnan(Y), axis=1)
    if m == 1 or Y.shape[1] <= m:
        out = np.zeros(len(Y), dtype=bool)
    else:
        r = autocorrelations(Y, m)  # (N, m)
        limit = Z_90 * np.sqrt((1.0 + 2.0 * np.sum(r[:, :-1] ** 2, axis=1)) / n)
        out = (np.abs(r[:, -1]) > limit) & (n >= min_cycles * m)
    return bool(out[0]) if single else out


def seasonal_indices(y: np.ndarray, m: int) -> np.ndarray:
    r"""Multiplicative seasonal indices by classical decomposition (no test applied).

    .. math::
        \mathrm{CMA}_t = \frac{1}{m}\Big(\tfrac12 y_{t-m/2} + \sum_{j=-m/2+1}^{m/2-1} y_{t+j}
        + \tfrac12 y_{t+m/2}\Big) \ (m \text{ even}), \qquad
        S_p = \frac{\bar R_p}{\frac1m \sum_q \bar R_q},\quad
        \bar R_p = \operatorname{mean}_{t:\,(t-n) \bmod m = p} \frac{y_t}{\mathrm{CMA}_t}

    (for odd ``m`` the CMA is the plain m-term centred mean). Returns (m,) for one series, (N, m) for a
    panel, phases counted from the end (module doc). A series gets all-ones indices when ``m == 1``,
    when it is too short for one moving-average window, when a phase has no ratio, or when it has a
    value ≤ 0 (multiplicative seasonality is undefined there; ``statsmodels`` refuses such series).
    """
    m = _check_m(m)
    Y, single = _as_panel(y)
    N, T = Y.shape
    idx = np.ones((N, m))
    w = m + 1 if m % 2 == 0 else m  # window of the centred moving average
    if m > 1 and T >= w:
        weights = np.full(w, 1.0 / m)
        if m % 2 == 0:
            weights[[0, -1]] = 0.5 / m
        cma = sliding_window_view(Y, w, axis=1) @ weights  # (N, T - w + 1); NaN near any NaN
        half = (w - 1) // 2
        ratio = np.full((N, T + (-T) % m), np.nan)  # left-padded so the width is a multiple of m
        off = ratio.shape[1] - T + half
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio[:, off : off + cma.shape[1]] = Y[:, half : half + cma.shape[1]] / cma
        blocks = ratio.reshape(N, -1, m)  # column j of each block has phase j (last column: m - 1)
        counts = np.sum(~np.isnan(blocks), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.nansum(blocks, axis=1) / counts  # (N, m)
            scaled = means / means.mean(axis=1, keepdims=True)
        ok = np.isfinite(scaled).all(axis=1) & ~(np.nanmin(np.where(np.isnan(Y), np.inf, Y), 1) <= 0)
        idx[ok] = scaled[ok]
    return idx[0] if single else idx


def phase_factors(indices: np.ndarray, start: int, length: int) -> np.ndarray:
    """Seasonal factors for ``length`` consecutive steps starting at phase ``start`` (mod m).

    ``phase_factors(idx, 0, h)`` are the factors of forecast steps 1..h;
    ``phase_factors(idx, -T, T)`` those of the T columns of a right-aligned panel of width T.
    """
    m = indices.shape[-1]
    return indices[..., (start + np.arange(length)) % m]


@dataclass(frozen=True)
class Deseasonalized:
    """Result of :func:`deseasonalize`.

    Attributes:
        adjusted: the input divided by its seasonal factors (same shape as the input).
        indices: (m,) or (N, m) seasonal indices, all ones where the test found no seasonality.
        seasonal: the test's verdict, bool or (N,).
    """

    adjusted: np.ndarray
    indices: np.ndarray
    seasonal: np.ndarray | bool

    def future(self, horizon: int) -> np.ndarray:
        """Factors to multiply forecasts of steps 1..horizon by: (horizon,) or (N, horizon)."""
        return phase_factors(self.indices, 0, horizon)


def deseasonalize(y: np.ndarray, m: int, *, test: bool = True) -> Deseasonalized:
    """Divide out classical multiplicative seasonality where the M3 test detects it (Naive2's step).

    With ``test=False`` every series is adjusted by its indices regardless of the test.
    """
    Y, single = _as_panel(y)
    idx = seasonal_indices(Y, m)
    seasonal = seasonality_test(Y, m) if test else np.full(len(Y), m > 1)
    idx[~seasonal] = 1.0
    adjusted = Y / phase_factors(idx, -Y.shape[1], Y.shape[1])
    if single:
        return Deseasonalized(adjusted[0], idx[0], bool(seasonal[0]))
    return Deseasonalized(adjusted, idx, seasonal)
