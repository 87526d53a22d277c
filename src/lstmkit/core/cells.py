r"""Step functions: one time step of every recurrent cell lstmkit knows.

The loop over time, bidirectionality, stacking and variable lengths live in :mod:`lstmkit.core.reference`;
this module only says what a cell computes from its pre-activations and previous state. The input
projection :math:`W x_t + b` of every step is computed for the whole sequence as one GEMM outside the
loop, so each step receives ``xg`` (B, G) — the input part of its pre-activations — and adds the
recurrent part itself.

Notation: :math:`\sigma` is the logistic sigmoid, :math:`\odot` the element-wise product. Gate rows of
``weight_ih`` / ``weight_hh`` are stacked in the order i, f, g, o (torch's order), with the gates a
variant removes left out.

**The standard cell** (the seed article's equations 1–6; Gers et al. 2000; identical to
``torch.nn.LSTM``):

.. math::
    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)

**Greff et al. 2017's "vanilla" LSTM** (``"peephole"``; Gers & Schmidhuber 2000) adds diagonal
peephole weights :math:`p` from the cell state to the gates; the output gate reads the *new* cell state:

.. math::
    i_t &= \sigma(\ldots + p_i \odot c_{t-1}), \quad f_t = \sigma(\ldots + p_f \odot c_{t-1}) \\
    o_t &= \sigma(\ldots + p_o \odot c_t)

Greff's eight ablations are each one change to that vanilla cell (peepholes of removed gates go too):

=========  ==============================================================================
``nig``    no input gate: :math:`i_t = 1`
``nfg``    no forget gate: :math:`f_t = 1`, so :math:`c_t = c_{t-1} + i_t \odot g_t` (the 1997 cell)
``nog``    no output gate: :math:`o_t = 1`
``niaf``   no input activation: :math:`g_t` is the linear pre-activation (no tanh)
``noaf``   no output activation: :math:`h_t = o_t \odot c_t`
``cifg``   coupled input and forget gate: :math:`f_t = 1 - i_t` (the GRU's trick)
``fgr``    full gate recurrence: the pre-activations of i, f, o also receive
           :math:`R [i_{t-1}; f_{t-1}; o_{t-1}]` through nine extra H×H matrices (``weight_fgr``)
=========  ==============================================================================

(Greff's NP — no peepholes — is the standard cell.)

**Layer normalisation** (Ba et al. 2016, eq. 20–22): the input and recurrent parts of the
pre-activation vector are normalised separately over all G rows, and the cell state before the output
activation:

.. math::
    a_t = \mathrm{LN}(W_x x_t; \gamma_x, \beta_x) + \mathrm{LN}(W_h h_{t-1}; \gamma_h, \beta_h) + b,
    \qquad h_t = o_t \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

**Projection** (LSTMP, Sak et al. 2014; torch's ``proj_size``): :math:`h_t = W_{hr}\,(o_t \odot \tanh(c_t))`,
a P-vector, which is what the next step and the next layer receive.

**GRU** (Cho et al. 2014, torch's form) with gate order r, z, n:

.. math::
    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \quad
    z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})), \quad
    h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

**Elman RNN**: :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})` (or ReLU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

LN_EPS = 1e-5


@dataclass(frozen=True)
class Variant:
    """What one member of the LSTM family changes relative to Greff's vanilla cell."""

    name: str
    gates: tuple[str, ...]  # which of i, f, g, o have weight rows, in that order
    peepholes: tuple[str, ...] = ()  # gates that read the cell state (rows of weight_peep, same order)
    candidate_tanh: bool = True  # False: NIAF
    output_tanh: bool = True  # False: NOAF
    coupled: bool = False  # CIFG: f = 1 - i
    full_recurrence: bool = False  # FGR
    summary: str = ""

    @property
    def num_gates(self) -> int:
        return len(self.gates)

    @property
    def is_standard(self) -> bool:
        return self.name == "standard"


_IFO = ("i", "f", "o")

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("standard", ("i", "f", "g", "o"), summary="the seed's cell (Gers 2000), = torch.nn.LSTM"),
        Variant("peephole", ("i", "f", "g", "o"), _IFO, summary="Greff's vanilla: peepholes (Gers 2000)"),
        Variant("nig", ("f", "g", "o"), ("f", "o"), summary="no input gate (i = 1)"),
        Variant("nfg", ("i", "g", "o"), ("i", "o"), summary="no forget gate (f = 1; the 1997 cell)"),
        Variant("nog", ("i", "f", "g"), ("i", "f"), summary="no output gate (o = 1)"),
        Variant("niaf", ("i", "f", "g", "o"), _IFO, candidate_tanh=False, summary="no input activation"),
        Variant("noaf", ("i", "f", "g", "o"), _IFO, output_tanh=False, summary="no output activation"),
        Variant("cifg", ("i", "g", "o"), ("i", "o"), coupled=True, summary="coupled gates (f = 1 - i)"),
        Variant("fgr", ("i", "f", "g", "o"), _IFO, full_recurrence=True, summary="full gate recurrence"),
    )
}


def get_variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``; a ``ValueError`` listing the known ones otherwise."""
    if not isinstance(name, str) or name.lower() not in VARIANTS:
        raise ValueError(
            f"variant={name!r} is not an LSTM variant lstmkit knows; use one of {sorted(VARIANTS)}"
        )
    return VARIANTS[name.lower()]


class CellWeights(NamedTuple):
    """The parameters of one layer in one direction (``None`` where the configuration has none)."""

    w_ih: Tensor  # (G, I)
    w_hh: Tensor  # (G, P or H)
    b_ih: Tensor | None = None  # (G,)
    b_hh: Tensor | None = None  # (G,)
    w_hr: Tensor | None = None  # (P, H)   projection
    w_peep: Tensor | None = None  # (len(peepholes), H)
    w_fgr: Tensor | None = None  # (3H, 3H) rows: target gate i, f, o; columns: source gate i, f, o
    ln_ih: tuple[Tensor, Tensor] | None = None  # (G,), (G,)
    ln_hh: tuple[Tensor, Tensor] | None = None  # (G,), (G,)
    ln_cell: tuple[Tensor, Tensor] | None = None  # (H,), (H,)


class LSTMStepState(NamedTuple):
    h: Tensor  # (B, P or H)
    c: Tensor  # (B, H)
    gates: Tensor | None = None  # (B, 3H) previous i, f, o — only carried by FGR


def input_projection(x: Tensor, w: CellWeights, layer_norm: bool) -> Tensor:
    """Input part of every step's pre-activations, for all steps in one GEMM: ``(T, B, I) -> (T, B, G)``.

    Without layer norm both biases are folded in here, so the recurrence adds only ``W_hh h``.
    """
    if layer_norm:
        xg = F.layer_norm(F.linear(x, w.w_ih), (w.w_ih.shape[0],), *w.ln_ih, eps=LN_EPS)
        return xg if w.b_ih is None else xg + w.b_ih + w.b_hh
    xg = F.linear(x, w.w_ih, w.b_ih)
    return xg if w.b_hh is None else xg + w.b_hh


def recurrent_preactivation(xg: Tensor, h: Tensor, w: CellWeights, layer_norm: bool) -> Tensor:
    """``xg + W_hh h`` (layer-normalised when asked), the full pre-activation of a step: (B, G)."""
    hg = F.linear(h, w.w_hh)
    if layer_norm:
        hg = F.layer_norm(hg, (w.w_hh.shape[0],), *w.ln_hh, eps=LN_EPS)
    return xg + hg


def standard_step(xg: Tensor, state: LSTMStepState, w: CellWeights, layer_norm: bool = False) -> LSTMStepState:
    """One step of the seed's cell (equations 1–6 above), with optional layer norm and projection."""
    a = recurrent_preactivation(xg, state.h, w, layer_norm)  # (B, 4H)
    i, f, g, o = a.chunk(4, dim=-1)
    c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
    h = torch.sigmoid(o) * torch.tanh(_norm_cell(c, w, layer_norm))
    return LSTMStepState(_project(h, w), c)


class StepGates(NamedTuple):
    """What one step computed on the way: gates (a removed gate is the constant 1) and o ⊙ act(c)."""

    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    cell_out: Tensor  # (B, H), before the projection


def variant_step(
    xg: Tensor, state: LSTMStepState, w: CellWeights, variant: Variant, layer_norm: bool = False
) -> LSTMStepState:
    """One step of Greff's vanilla cell with ``variant``'s change applied (see the module docstring)."""
    return variant_step_with_gates(xg, state, w, variant, layer_norm)[0]


def variant_step_with_gates(
    xg: Tensor, state: LSTMStepState, w: CellWeights, variant: Variant, layer_norm: bool = False
) -> tuple[LSTMStepState, StepGates]:
    """:func:`variant_step` that also returns the gates (for diagnostics; any variant, standard included)."""
    a = recurrent_preactivation(xg, state.h, w, layer_norm)  # (B, G)
    pre = dict(zip(variant.gates, a.chunk(variant.num_gates, dim=-1)))
    peep = dict(zip(variant.peepholes, w.w_peep.unbind(0))) if variant.peepholes else {}
    if variant.full_recurrence:
        # FGR: i, f, o also see the previous step's gate activations (zeros at the first step).
        prev = state.gates if state.gates is not None else a.new_zeros(a.shape[0], 3 * state.c.shape[-1])
        ri, rf, ro = F.linear(prev, w.w_fgr).chunk(3, dim=-1)
        pre["i"], pre["f"], pre["o"] = pre["i"] + ri, pre["f"] + rf, pre["o"] + ro

    c_prev = state.c
    one = c_prev.new_ones(())

    def gate(name: str, c_read: Tensor) -> Tensor:  # σ(pre + p ⊙ c); a removed gate is the constant 1
        if name not in pre:
            return one
        return torch.sigmoid(pre[name] + peep[name] * c_read if name in peep else pre[name])

    i = gate("i", c_prev)
    f = 1.0 - i if variant.coupled else gate("f", c_prev)
    g = torch.tanh(pre["g"]) if variant.candidate_tanh else pre["g"]
    c = f * c_prev + i * g  # (B, H)
    o = gate("o", c)  # the output peephole reads the new c_t
    c_out = _norm_cell(c, w, layer_norm)
    h = o * (torch.tanh(c_out) if variant.output_tanh else c_out)
    gates = torch.cat([i, f, o], dim=-1) if variant.full_recurrence else None  # (B, 3H)
    return LSTMStepState(_project(h, w), c, gates), StepGates(i, f, g, o, h)


def gru_step(xg: Tensor, h: Tensor, w: CellWeights) -> Tensor:
    """One GRU step (torch's form; ``xg`` already holds ``W_i x + b_i`` for r, z, n)."""
    hg = F.linear(h, w.w_hh, w.b_hh)  # (B, 3H): b_hn must stay inside r ⊙ (...), so it is not folded
    xr, xz, xn = xg.chunk(3, dim=-1)
    hr, hz, hn = hg.chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def rnn_step(xg: Tensor, h: Tensor, w: CellWeights, relu: bool = False) -> Tensor:
    """One Elman step; ``xg`` holds both biases and ``W_ih x``."""
    a = xg + F.linear(h, w.w_hh)
    return torch.relu(a) if relu else torch.tanh(a)


def _norm_cell(c: Tensor, w: CellWeights, layer_norm: bool) -> Tensor:
    if not layer_norm:
        return c
    return F.layer_norm(c, (c.shape[-1],), *w.ln_cell, eps=LN_EPS)


def _project(h: Tensor, w: CellWeights) -> Tensor:
    return h if w.w_hr is None else F.linear(h, w.w_hr)
