r"""Forecast accuracy metrics, vectorised over arrays shaped (n_series, horizon).

Conventions shared by every function here:

* ``y_true`` and point forecasts ``y_pred`` are (N, H) arrays (any shape works as long as they
  broadcast; the series axis is 0 and the horizon axis is 1). Quantile forecasts are (N, H, Q).
* **NaN masking**: a point where the actual or the forecast is NaN is left out of every sum and count,
  so series of different horizons can share one NaN-padded array.
* ``axis=None`` (default) averages over *all* remaining forecast points — the M3 convention, under
  which the "All" column weighs each series by its horizon. ``axis=1`` returns one value per series
  (N,); ``axis=0`` one per horizon step (H,).
"""

from __future__ import annotations

import numpy as np

Axis = int | None


def _arrays(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _masked_mean(values: np.ndarray, axis: Axis) -> np.ndarray | float:
    """Mean over non-NaN entries; NaN where nothing is left."""
    valid = ~np.isnan(values)
    total = np.sum(np.where(valid, values, 0.0), axis=axis)
    count = np.sum(valid, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    return float(out) if np.ndim(out) == 0 else out


def smape(y_true: np.ndarray, y_pred: np.ndarray, axis: Axis = None) -> np.ndarray | float:
    r"""Symmetric MAPE in percent, the M3 definition (range 0–200).

    .. math::
        \mathrm{sMAPE} = \frac{1}{|P|} \sum_{(i,h) \in P} 200 \,
        \frac{|y_{i,h} - \hat y_{i,h}|}{|y_{i,h}| + |\hat y_{i,h}|}

    over the set :math:`P` of non-NaN points (for one series this is :math:`\frac{200}{H}\sum_h …`).
    A point where both actual and forecast are 0 counts as 0 error.
    """
    y, f = _arrays(y_true, y_pred)
    denom = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        pointwise = np.where(denom == 0, 0.0, 200.0 * np.abs(y - f) / denom)
    pointwise = np.where(np.isnan(y) | np.isnan(f), np.nan, pointwise)
    return _masked_mean(pointwise, axis)


def mase_scale(history: np.ndarray, m: int = 1) -> np.ndarray:
    r"""Per-series MASE denominator: the in-sample mean absolute seasonal difference.

    .. math::
        s_i = \frac{1}{n_i - m} \sum_{t=m}^{n_i - 1} |y_{i,t} - y_{i,t-m}|

    ``history`` is (N, T) (a right-aligned NaN-padded panel works as is; differences touching a NaN are
    skipped) or one series (T,). Series with ``n ≤ m`` fall back to the lag-1 difference; a series
    whose scale is still undefined or 0 (e.g. constant) gets NaN, which masks it out of :func:`mase`.
    """
    (H,) = _arrays(history)
    single = H.ndim == 1
    H = np.atleast_2d(H)

    def scale(lag: int) -> np.ndarray:
        if H.shape[1] <= lag:
            return np.full(len(H), np.nan)
        return np.asarray(_masked_mean(np.abs(H[:, lag:] - H[:, :-lag]), axis=1))

    s = scale(m)
    if m > 1:
        s = np.where(np.isnan(s), scale(1), s)
    s = np.where(s > 0, s, np.nan)
    return s[0] if single else s


def mase(
    y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray, axis: Axis = None
) -> np.ndarray | float:
    r"""Mean absolute scaled error.

    .. math::
        \mathrm{MASE} = \frac{1}{|P|} \sum_{(i,h) \in P} \frac{|y_{i,h} - \hat y_{i,h}|}{s_i}

    with :math:`s_i` from :func:`mase_scale` (shape (N,)). With equal horizons this is the mean of the
    per-series MASEs. Series whose scale is NaN are masked out.
    """
    y, f, s = _arrays(y_true, y_pred, scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.abs(y - f) / s.reshape(-1, *([1] * (y.ndim - 1)))
    return _masked_mean(scaled, axis)


def mae(y_true: np.ndarray, y_pred: np.ndarray, axis: Axis = None) -> np.ndarray | float:
    r"""Mean absolute error, :math:`\frac{1}{|P|}\sum_P |y - \hat y|`."""
    y, f = _arrays(y_true, y_pred)
    return _masked_mean(np.abs(y - f), axis)


def rmse(y_true: np.ndarray, y_pred: np.ndarray, axis: Axis = None) -> np.ndarray | float:
    r"""Root mean squared error, :math:`\sqrt{\frac{1}{|P|}\sum_P (y - \hat y)^2}`.

    With ``axis=None`` it pools all points (not the mean of per-series RMSEs).
    """
    y, f = _arrays(y_true, y_pred)
    return np.sqrt(_masked_mean((y - f) ** 2, axis))


def _quantile_args(
    y_true: np.ndarray, q_pred: np.ndarray, quantiles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, q, tau = _arrays(y_true, q_pred, quantiles)
    tau = tau.reshape(-1)
    if q.shape[-1] != tau.size:
        raise ValueError(
            f"q_pred's last axis must hold one forecast per quantile level ({tau.size} levels), "
            f"got shape {q.shape}"
        )
    if np.any((tau <= 0) | (tau >= 1)):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {tau.tolist()}")
    return y, q, tau


def pinball_loss(
    y_true: np.ndarray, q_pred: np.ndarray, quantiles: np.ndarray, axis: Axis = None
) -> np.ndarray | float:
    r"""Quantile (pinball) loss averaged over points and quantile levels.

    .. math::
        \rho_\tau(y, q) = \max\big(\tau (y - q),\ (\tau - 1)(y - q)\big), \qquad
        \mathrm{PL} = \frac{1}{|P|\,Q} \sum_{(i,h) \in P} \sum_{j=1}^{Q} \rho_{\tau_j}(y_{i,h}, q_{i,h,j})

    ``q_pred`` is (N, H, Q) for levels ``quantiles`` (Q,). ``axis`` reduces the (N, H) point grid as in
    the other metrics (the quantile axis is always averaged).
    """
    y, q, tau = _quantile_args(y_true, q_pred, quantiles)
    diff = y[..., None] - q
    loss = np.maximum(tau * diff, (tau - 1.0) * diff)  # (N, H, Q)
    loss = np.where(np.isnan(loss).any(axis=-1, keepdims=True), np.nan, loss).mean(axis=-1)
    return _masked_mean(loss, axis)


def crps_from_quantiles(
    y_true: np.ndarray, q_pred: np.ndarray, quantiles: np.ndarray, axis: Axis = None
) -> np.ndarray | float:
    r"""CRPS approximated from a set of quantile forecasts.

    The CRPS of a predictive distribution :math:`F` equals twice its pinball loss integrated over all
    levels, :math:`\mathrm{CRPS}(F, y) = 2\int_0^1 \rho_\tau(y, F^{-1}(\tau))\,d\tau`. Replacing the
    integral by the mean over the Q available levels gives

    .. math::
        \widehat{\mathrm{CRPS}} = 2 \cdot \mathrm{PL} = \frac{2}{Q}\sum_{j=1}^Q \rho_{\tau_j}(y, q_j)

    (GluonTS' ``mean_wQuantileLoss`` is this estimator further divided by :math:`\sum|y|`).
    It is close to the exact CRPS when the levels are many and evenly spread over (0, 1), e.g.
    0.05, 0.10, …, 0.95; with only a few levels (e.g. 0.1, 0.5, 0.9) treat it as a comparative score.
    """
    return 2.0 * pinball_loss(y_true, q_pred, quantiles, axis=axis)


def coverage(
    y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray, axis: Axis = None
) -> np.ndarray | float:
    r"""Empirical interval coverage: the share of points with :math:`l \le y \le u`.

    .. math:: \mathrm{cov} = \frac{1}{|P|}\sum_{(i,h) \in P} \mathbf 1[l_{i,h} \le y_{i,h} \le u_{i,h}]

    An 80 % interval (levels 0.1 and 0.9) should cover about 0.8 of the actuals.
    """
    y, lo, hi = _arrays(y_true, lower, upper)
    inside = ((y >= lo) & (y <= hi)).astype(np.float64)
    inside = np.where(np.isnan(y) | np.isnan(lo) | np.isnan(hi), np.nan, inside)
    return _masked_mean(inside, axis)
