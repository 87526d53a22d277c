"""The forecasting network: an LSTM encoder over a normalised window and a multi-horizon head.

The estimator (:class:`lstmkit.tasks.forecaster.Forecaster`) does the windowing and normalisation; this
module only maps a batch of windows to forecasts in the normalised space, so it stays usable on its own.

``direct`` decoder: the encoder's last hidden state (with static and future covariates) goes through a
small MLP to all H steps × Q outputs at once — fast, and what won the M4 and N-BEATS comparisons.
``seq2seq`` decoder: an LSTM unrolled over the H horizon steps from the encoder's final state, reading
each step's future covariates and a step encoding; a linear layer gives Q outputs per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch import Tensor

from lstmkit.layers import LSTM


@dataclass(frozen=True)
class ForecastNetConfig:
    in_features: int  # per encoder step: value, observed flag, past/future covariates
    horizon: int
    n_outputs: int = 1  # point (+ one per quantile)
    hidden_size: int = 32
    num_layers: int = 2
    dropout: float = 0.0
    static_features: int = 0
    future_features: int = 0  # per horizon step
    decoder: str = "direct"  # or "seq2seq"
    variant: str = "standard"
    head_hidden: int = 0  # 0: a linear head

    def to_dict(self) -> dict:
        return asdict(self)


class ForecastNet(nn.Module):
    def __init__(self, cfg: ForecastNetConfig) -> None:
        super().__init__()
        if cfg.decoder not in ("direct", "seq2seq"):
            raise ValueError(f"decoder must be 'direct' or 'seq2seq', got {cfg.decoder!r}")
        self.cfg = cfg
        H, Q = cfg.horizon, cfg.n_outputs
        self.encoder = LSTM(
            cfg.in_features + cfg.static_features, cfg.hidden_size, cfg.num_layers, batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, variant=cfg.variant,
        )  # fmt: skip
        if cfg.decoder == "direct":
            head_in = cfg.hidden_size + cfg.static_features + H * cfg.future_features
            if cfg.head_hidden:
                self.head = nn.Sequential(nn.Linear(head_in, cfg.head_hidden), nn.ReLU(), nn.Linear(cfg.head_hidden, H * Q))
            else:
                self.head = nn.Linear(head_in, H * Q)
        else:
            self.decoder = LSTM(cfg.future_features + cfg.static_features + H, cfg.hidden_size, cfg.num_layers,
                                batch_first=True, variant=cfg.variant)  # fmt: skip
            self.head = nn.Linear(cfg.hidden_size, Q)

    def forward(self, x: Tensor, static: Tensor | None = None, future: Tensor | None = None) -> Tensor:
        """x (B, L, F), static (B, Cs), future (B, H, Cf) -> (B, H, Q) in the normalised space."""
        B, L, _ = x.shape
        H, Q = self.cfg.horizon, self.cfg.n_outputs
        if static is not None and static.shape[-1]:
            x = torch.cat([x, static.unsqueeze(1).expand(B, L, -1)], dim=-1)  # (B, L, F + Cs)
        out, state = self.encoder(x)  # (B, L, H_enc)
        if self.cfg.decoder == "direct":
            parts = [out[:, -1]]
            if static is not None and static.shape[-1]:
                parts.append(static)
            if future is not None and future.shape[-1]:
                parts.append(future.reshape(B, -1))
            z = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
            return self.head(z).view(B, H, Q)
        steps = torch.eye(H, device=x.device, dtype=x.dtype).expand(B, H, H)  # (B, H, H) step one-hot
        dec_in = [steps]
        if future is not None and future.shape[-1]:
            dec_in.insert(0, future)
        if static is not None and static.shape[-1]:
            dec_in.insert(0, static.unsqueeze(1).expand(B, H, -1))
        dec_out, _ = self.decoder(torch.cat(dec_in, dim=-1), state)  # (B, H, H_enc)
        return self.head(dec_out)  # (B, H, Q)
