"""The ``reference`` backend: the readable loop of :mod:`lstmkit.core.reference`; runs every configuration."""

from __future__ import annotations

import torch
from torch import Tensor

from lstmkit.core.reference import RNNSpec, run_stack


class ReferenceBackend:
    name = "reference"
    supports = "every cell, variant, layer norm, projection, dtype and device"

    def unsupported(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> str | None:
        return None

    def forward(
        self, spec: RNNSpec, module: torch.nn.Module, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        if spec.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        out, h_n, c_n = run_stack(x, h0, c0, module.cell_weights(), spec, lengths, module.training)
        if spec.batch_first:
            out = out.transpose(0, 1)
        return out, h_n, c_n
