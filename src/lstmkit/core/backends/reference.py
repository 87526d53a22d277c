"""The ``reference`` backend: the readable loop of :mod:`lstmkit.core.reference`; runs every configuration.

:class:`StackBackend` is also the shared ``forward`` of the fused backends: they differ only in the
per-direction kernel they hand to :func:`lstmkit.core.reference.run_stack`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lstmkit.core.reference import RNNSpec, run_stack


class StackBackend:
    """Runs a layer's stack through :func:`run_stack` with the per-direction kernel :meth:`direction`."""

    def direction(self) -> Callable[..., tuple[Tensor, Tensor, Tensor | None]] | None:
        """The per-direction kernel (``run_direction``'s contract); ``None`` is the reference loop."""
        return None

    def forward(
        self, spec: RNNSpec, module: torch.nn.Module, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        if spec.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        out, h_n, c_n = run_stack(
            x, h0, c0, module.cell_weights(), spec, lengths, module.training, direction=self.direction()
        )
        if spec.batch_first:
            out = out.transpose(0, 1)
        return out, h_n, c_n


class ReferenceBackend(StackBackend):
    name = "reference"
    supports = "every cell, variant, layer norm, projection, dtype and device"

    def unsupported(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> str | None:
        return None
