"""The readable time loop: the oracle every fast backend is tested against.

Written once for every cell of :mod:`lstmkit.core.cells`: one direction of one layer
(:func:`run_direction`), then stacking, bidirectionality, dropout between layers and variable lengths
(:func:`run_stack`). Tensors are time-major here, ``(T, B, ·)``.

Variable lengths: a sequence of length ``n`` is processed for steps ``0 … n-1`` only. Past its end the
state is frozen (so the final state is the one at its own last step) and the output is zero. The reverse
direction reads each sequence from its own last step back to its first: the steps ``0 … n-1`` are
reversed in place before the loop and the outputs reversed back after it. That is what torch computes
with ``pack_padded_sequence`` / ``pad_packed_sequence``, without packing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.core.cells import (
    CellWeights,
    LSTMStepState,
    Variant,
    gru_step,
    input_projection,
    rnn_step,
    standard_step,
    variant_step,
)

MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")


@dataclass(frozen=True)
class RNNSpec:
    """Everything that fixes what a recurrent stack computes (not its weights)."""

    mode: str  # one of MODES
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    variant: Variant | None = None  # LSTM only
    layer_norm: bool = False

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Size of h per direction: P with a projection, else H."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def is_standard_lstm(self) -> bool:
        return self.mode == "lstm" and self.variant is not None and self.variant.is_standard


def reverse_within_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse steps ``0 … n_b-1`` of every sequence b of ``x`` (T, B, …), leaving the padding in place.

    The map is its own inverse, so the same call undoes it.
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    n = lengths.to(x.device).unsqueeze(0)  # (1, B)
    idx = torch.where(t < n, n - 1 - t, t)  # (T, B)
    idx = idx.reshape(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def run_direction(
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w: CellWeights,
    spec: RNNSpec,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer, one direction: ``x`` (T, B, I) -> outputs (T, B, P or H), h_n (B, ·), c_n (B, H) or None."""
    if reverse:
        x = reverse_within_lengths(x, lengths)
    T = x.shape[0]
    if spec.mode == "gru":
        xg = F.linear(x, w.w_ih, w.b_ih)  # (T, B, 3H): b_hh stays in the step (r ⊙ (W h + b_hn))
    else:
        xg = input_projection(x, w, spec.layer_norm)  # (T, B, G)
    masks = None
    if lengths is not None:
        steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
        masks = (steps < lengths.to(x.device).unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)

    outputs = []
    if spec.mode == "lstm":
        variant = spec.variant
        # FGR carries the previous step's i, f, o; they start at zero like h and c.
        gates0 = c0.new_zeros(c0.shape[0], 3 * c0.shape[1]) if variant.full_recurrence else None
        state = LSTMStepState(h0, c0, gates0)
        for t in range(T):
            if variant.is_standard:
                new = standard_step(xg[t], state, w, spec.layer_norm)
            else:
                new = variant_step(xg[t], state, w, variant, spec.layer_norm)
            if masks is not None:
                m = masks[t]
                outputs.append(new.h * m)
                new = LSTMStepState(*(None if n is None else torch.where(m, n, s) for n, s in zip(new, state)))
            else:
                outputs.append(new.h)
            state = new
        h_n, c_n = state.h, state.c
    else:
        h, c_n = h0, None
        for t in range(T):
            new_h = gru_step(xg[t], h, w) if spec.mode == "gru" else rnn_step(xg[t], h, w, spec.mode == "rnn_relu")
            if masks is not None:
                outputs.append(new_h * masks[t])
                new_h = torch.where(masks[t], new_h, h)
            else:
                outputs.append(new_h)
            h = new_h
        h_n = h
    out = torch.stack(outputs) if outputs else xg.new_zeros(0, x.shape[1], spec.output_size)
    if reverse:
        out = reverse_within_lengths(out, lengths)
    return out, h_n, c_n


def run_stack(
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    weights: list[CellWeights],
    spec: RNNSpec,
    lengths: Tensor | None = None,
    training: bool = False,
    direction: Callable[..., tuple[Tensor, Tensor, Tensor | None]] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """A stack of layers (each uni- or bidirectional) over time-major ``x`` (T, B, I).

    ``direction`` runs one layer in one direction with :func:`run_direction`'s signature and contract
    (lengths, reversal, frozen state past a sequence's end); fused backends pass their own kernel
    here and reuse the stacking, bidirectionality and dropout of this function.

    ``weights`` holds one entry per layer and direction, in torch's order (l0, l0_reverse, l1, …);
    ``h0`` is (L·D, B, P or H), ``c0`` (L·D, B, H) for the LSTM. Returns outputs (T, B, D·(P or H)),
    h_n and c_n stacked like ``h0`` / ``c0``.
    """
    direction = run_direction if direction is None else direction
    D = spec.num_directions
    h_n, c_n = [], []
    layer_in = x
    for layer in range(spec.num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            out, h, c = direction(
                layer_in, h0[k], None if c0 is None else c0[k], weights[k], spec, lengths, reverse=d == 1
            )
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D·H)
        if spec.dropout > 0 and training and layer < spec.num_layers - 1:
            layer_in = F.dropout(layer_in, spec.dropout, training=True)
    return layer_in, torch.stack(h_n), None if c0 is None else torch.stack(c_n)
