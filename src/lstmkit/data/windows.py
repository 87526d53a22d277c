"""Training and forecasting windows cut from a panel, normalised on their own past only.

A window is (series n, origin c): inputs are the ``L`` steps before column ``c``, targets the ``H``
steps from ``c`` on. The panel is padded with ``L`` NaN columns on the left and ``H`` on the right once,
so every window — even of a series shorter than ``L`` — is one gather, and padding is masked like any
missing value (short series are padded and masked, not dropped).

Normalisation uses only the inputs (no leakage from the targets): the *level* is the mean of the last
``k`` observed inputs. With ``log`` scaling (positive data) the network reads ``log(x / level)`` and
predicts ``log(y / level)``; with ``standard`` scaling it reads ``(x - level) / scale`` (``scale`` = the
inputs' standard deviation) and predicts ``(y - level) / scale``. Missing inputs become 0 in that space
and an ``observed`` flag tells the network which were real; missing targets are masked in the loss and
never imputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Windows:
    x: Tensor  # (B, L, F) encoder features: value, observed flag, past covariates, future covariates
    target: Tensor  # (B, H) in the normalised space (NaN-free; see mask)
    mask: Tensor  # (B, H) 1 where the target is observed
    level: Tensor  # (B,)
    scale: Tensor  # (B,)
    static: Tensor | None  # (B, Cs)
    future: Tensor | None  # (B, H, Cf) future covariates over the horizon
    valid: Tensor  # (B,) windows with at least one observed input


class WindowMaker:
    """Cuts normalised windows from a panel held as padded torch tensors."""

    def __init__(
        self,
        y: np.ndarray,  # (N, T) (deseasonalised) target, NaN-padded on the left
        lookback: int,
        horizon: int,
        level_window: int,
        log_scale: bool,
        past: np.ndarray | None = None,  # (N, T, Cp), already standardised
        future: np.ndarray | None = None,  # (N, T + H', Cf), already standardised
        static: np.ndarray | None = None,  # (N, Cs), already standardised
    ) -> None:
        self.L, self.H, self.k, self.log_scale = lookback, horizon, min(level_window, lookback), log_scale
        N, T = y.shape
        self.N, self.T = N, T
        self.y = torch.from_numpy(np.pad(y.astype(np.float32), ((0, 0), (lookback, horizon)), constant_values=np.nan))
        self.past = None if past is None else torch.from_numpy(_pad3(past, lookback, T + horizon))
        self.future = None if future is None else torch.from_numpy(_pad3(future, lookback, T + horizon))
        self.static = None if static is None else torch.from_numpy(static.astype(np.float32))
        self.offsets = torch.arange(-lookback, horizon)  # (L + H,)

    @property
    def n_features(self) -> int:
        return 2 + (0 if self.past is None else self.past.shape[-1]) + (0 if self.future is None else self.future.shape[-1])

    def cut(self, n: Tensor, c: Tensor) -> Windows:
        """Windows of series ``n`` (B,) at origins ``c`` (B,) (panel columns, 0..T)."""
        L = self.L
        cols = (c.unsqueeze(1) + self.offsets + L).long()  # (B, L + H) columns of the padded panel
        rows = n.unsqueeze(1)
        w = self.y[rows, cols]  # (B, L + H)
        x_raw, y_raw = w[:, :L], w[:, L:]
        obs = ~torch.isnan(x_raw)
        level = torch.nanmean(x_raw[:, -self.k :], dim=1)
        level = torch.where(torch.isnan(level), torch.nanmean(x_raw, dim=1), level)  # (B,)
        valid = ~torch.isnan(level)
        if self.log_scale:
            level = torch.where(valid & (level > 0), level, torch.ones_like(level))
            scale = torch.ones_like(level)
            xs = torch.log(x_raw / level.unsqueeze(1))
            ts = torch.log(y_raw / level.unsqueeze(1))
        else:
            level = torch.where(valid, level, torch.zeros_like(level))
            centred = torch.where(obs, x_raw - level.unsqueeze(1), torch.zeros_like(x_raw))
            var = centred.square().sum(1) / obs.sum(1).clamp(min=1)
            scale = torch.maximum(var.sqrt(), 1e-3 * level.abs() + 1e-6)  # flat windows: avoid ÷0
            xs = (x_raw - level.unsqueeze(1)) / scale.unsqueeze(1)
            ts = (y_raw - level.unsqueeze(1)) / scale.unsqueeze(1)
        mask = ~torch.isnan(ts)
        feats = [torch.nan_to_num(xs, nan=0.0).unsqueeze(-1), obs.float().unsqueeze(-1)]
        if self.past is not None:
            feats.append(self.past[rows, cols[:, :L]])
        fut_h = None
        if self.future is not None:
            feats.append(self.future[rows, cols[:, :L]])
            fut_h = self.future[rows, cols[:, L:]]
        return Windows(
            x=torch.cat(feats, dim=-1),
            target=torch.nan_to_num(ts, nan=0.0),
            mask=mask.float(),
            level=level,
            scale=scale,
            static=None if self.static is None else self.static[n],
            future=fut_h,
            valid=valid,
        )

    def to_original(self, out: Tensor, win: Windows) -> Tensor:
        """Map network outputs (B, H, Q) in the normalised space back to the (deseasonalised) data scale."""
        if self.log_scale:
            return win.level.view(-1, 1, 1) * torch.exp(out.clamp(max=20.0))
        return win.level.view(-1, 1, 1) + win.scale.view(-1, 1, 1) * out


def _pad3(a: np.ndarray, left: int, width: int) -> np.ndarray:
    """Pad (N, T', C) to (N, left + width, C) with zeros (covariates are standardised; 0 = the mean)."""
    N, Tp, C = a.shape
    out = np.zeros((N, left + width, C), dtype=np.float32)
    take = min(Tp, width)
    out[:, left : left + take] = np.nan_to_num(a[:, :take], nan=0.0)
    return out
