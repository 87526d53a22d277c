r"""Gradient flow through time: how much of the final loss's gradient reaches each earlier step.

For a loss :math:`L` that depends on the last step's output only, :func:`gradient_flow` measures
:math:`\lVert \partial L / \partial h_t \rVert` for every step t (and, for an LSTM,
:math:`\lVert \partial L / \partial c_t \rVert`) by running the engine's own step functions
(:mod:`lstmkit.core.cells`) one step at a time and asking autograd for the gradient with respect to
every intermediate state. ``∂L/∂c_t`` is the total derivative through the node :math:`c_t` — both the
carry :math:`c_{t+1} = f_{t+1} \odot c_t + \dots` and the output :math:`h_t = o_t \odot \tanh(c_t)` —
which is BPTT's :math:`\delta c_t`. In a tanh RNN the gradient shrinks roughly geometrically with the
distance T−1−t (Hochreiter 1991; Bengio et al. 1994); the LSTM's cell state is the
"constant error carousel" that lets it through, scaled only by the forget gates.

:func:`gradient_flow_study` trains a tanh RNN, a GRU and an LSTM briefly on the adding problem and
measures all three on the same test sequences, fresh and trained; :func:`plot_gradient_flow` draws the
curves on a log scale.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from lstmkit.core.cells import LSTMStepState, gru_step, input_projection, rnn_step, standard_step, variant_step

log = logging.getLogger(__name__)

MODELS = ("rnn", "gru", "lstm")
MIN_T = 22  # the second marker lies in 10 … T/2 − 1


@dataclass(frozen=True)
class GradientFlow:
    """Per-step gradient norms, averaged over the sequences of the batch: (T,) each."""

    norm_h: Tensor
    norm_c: Tensor | None  # None for GRU / RNN (no cell state)


def state_gradients(
    layer: nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]
) -> tuple[Tensor, Tensor | None]:
    """``∂L/∂h_t`` (T, B, P or H) and, for an LSTM, ``dL/dc_t`` (T, B, H) for every step t.

    ``layer`` is a one-layer, one-direction :class:`lstmkit.LSTM` (any variant), :class:`lstmkit.GRU` or
    :class:`lstmkit.RNN`; ``inputs`` are in its layout ((T, B, I) or (B, T, I) with ``batch_first``);
    ``loss_fn`` maps the last step's output (B, P or H) to per-sequence losses (B,) (or a scalar), and
    L is their sum — so row b of each gradient is sequence b's own. The state starts at zero.
    """
    spec = getattr(layer, "spec", None)
    if spec is None or not hasattr(layer, "cell_weights"):
        raise TypeError(f"layer must be an lstmkit LSTM, GRU or RNN, got {type(layer).__name__}")
    if spec.num_layers != 1 or spec.bidirectional:
        raise ValueError(
            f"gradient flow is measured on one layer in one direction, got num_layers={spec.num_layers}, "
            f"bidirectional={spec.bidirectional}; build the layer with num_layers=1, bidirectional=False"
        )
    if not isinstance(inputs, Tensor) or inputs.dim() != 3 or inputs.shape[-1] != spec.input_size:
        raise ValueError(
            f"inputs must be 3-D with {spec.input_size} features in the layer's layout, "
            f"got {tuple(getattr(inputs, 'shape', ()))}"
        )
    x = inputs.transpose(0, 1) if spec.batch_first else inputs  # (T, B, I)
    (w,) = layer.cell_weights()
    T, B = x.shape[:2]
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    with torch.enable_grad():
        if spec.mode == "lstm":
            variant = spec.variant
            xg = input_projection(x, w, spec.layer_norm)  # (T, B, G)
            H = spec.hidden_size
            gates0 = x.new_zeros(B, 3 * H) if variant.full_recurrence else None
            # The zero initial state requires grad so that every state is in the graph even when the
            # layer's parameters are frozen.
            h0 = x.new_zeros(B, spec.output_size).requires_grad_(True)
            state = LSTMStepState(h0, x.new_zeros(B, H).requires_grad_(True), gates0)
            for t in range(T):
                if variant.is_standard:
                    state = standard_step(xg[t], state, w, spec.layer_norm)
                else:
                    state = variant_step(xg[t], state, w, variant, spec.layer_norm)
                hs.append(state.h)
                cs.append(state.c)
        else:
            if spec.mode == "gru":
                xg = torch.nn.functional.linear(x, w.w_ih, w.b_ih)  # (T, B, 3H): b_hh stays in the step
            else:
                xg = input_projection(x, w, False)  # (T, B, H)
            h = x.new_zeros(B, spec.hidden_size).requires_grad_(True)
            for t in range(T):
                h = gru_step(xg[t], h, w) if spec.mode == "gru" else rnn_step(xg[t], h, w, spec.mode == "rnn_relu")
                hs.append(h)
        loss = loss_fn(hs[-1]).sum()
        grads = torch.autograd.grad(loss, hs + cs, allow_unused=True)
    grads = [torch.zeros_like(s) if g is None else g for g, s in zip(grads, hs + cs)]
    dh = torch.stack(grads[:T])  # (T, B, P or H)
    dc = torch.stack(grads[T:]) if cs else None  # (T, B, H)
    return dh, dc


def gradient_flow(layer: nn.Module, inputs: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> GradientFlow:
    """:func:`state_gradients` reduced to norms: ``mean_b ‖∂L_b/∂h_t^{(b)}‖₂`` per step (and the same for c)."""
    dh, dc = state_gradients(layer, inputs, loss_fn)
    norm_h = dh.detach().norm(dim=-1).mean(dim=1)  # (T,)
    norm_c = None if dc is None else dc.detach().norm(dim=-1).mean(dim=1)
    return GradientFlow(norm_h, norm_c)


# ------------------------------------------------------------------------------------------ the study
def adding_problem(n: int, T: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` sequences of a simplified adding problem (after Hochreiter & Schmidhuber 1997, exp. 4).

    Input channel 0 holds values drawn from U(−1, 1), channel 1 marks two of them with 1.0: one among the
    first 10 steps, one among steps 10 … T/2−1. The target is ``0.5 + (x₁ + x₂) / 4``, so a constant
    0.5 scores MSE ≈ 0.042 and the information always lies at least T/2 steps before the end.
    (``lstmkit experiment adding`` runs the paper's exact task; this one only feeds the diagnostics.)
    Returns inputs (T, n, 2) and targets (n,).
    """
    if T < MIN_T:
        raise ValueError(f"T must be at least {MIN_T} for the adding problem (markers at steps 0…9 and 10…T/2−1), got {T}")
    values = torch.rand(T, n, generator=generator) * 2 - 1  # (T, n)
    first = torch.randint(0, 10, (n,), generator=generator)
    second = torch.randint(10, T // 2, (n,), generator=generator)
    marks = torch.zeros(T, n)
    idx = torch.arange(n)
    marks[first, idx] = 1.0
    marks[second, idx] = 1.0
    target = 0.5 + (values[first, idx] + values[second, idx]) / 4
    return torch.stack([values, marks], dim=-1), target


class LastStepRegressor(nn.Module):
    """A recurrent layer and a linear read-out of its last step: the model the study trains."""

    def __init__(self, layer: nn.Module, out_features: int = 1) -> None:
        super().__init__()
        self.layer = layer
        self.head = nn.Linear(layer.spec.output_size, out_features)

    def forward(self, x: Tensor) -> Tensor:  # x (T, B, I) -> (B,)
        out, _ = self.layer(x)
        return self.head(out[-1]).squeeze(-1)


def make_layer(model: str, hidden_size: int, input_size: int = 2, *, variant: str = "standard", forget_bias: float = 1.0):
    """``"rnn"`` (tanh), ``"gru"`` or ``"lstm"`` (``variant``; forget-gate bias ``forget_bias`` where it has one)."""
    from lstmkit.core.cells import get_variant
    from lstmkit.layers import GRU, LSTM, RNN

    if model == "rnn":
        return RNN(input_size, hidden_size)
    if model == "gru":
        return GRU(input_size, hidden_size)
    if model == "lstm":
        v = get_variant(variant)
        has_f = "f" in v.gates and not v.coupled
        return LSTM(input_size, hidden_size, variant=v.name, forget_bias=forget_bias if has_f else None)
    raise ValueError(f"model={model!r} is not one of {MODELS}")


def train_adding(
    net: LastStepRegressor, T: int, steps: int, *, batch_size: int = 32, lr: float = 3e-3,
    generator: torch.Generator | None = None,
) -> list[float]:  # fmt: skip
    """Adam on fresh adding-problem batches for ``steps`` steps (gradient norm clipped at 1); the losses."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    net.train()
    for _ in range(steps):
        x, y = adding_problem(batch_size, T, generator)
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    return losses


def gradient_flow_study(
    T: int = 100, *, steps: int = 1000, hidden_size: int = 32, batch_size: int = 32, n_eval: int = 256,
    lr: float = 3e-3, forget_biases: tuple[float, ...] = (1.0, 5.0), models: tuple[str, ...] = MODELS,
    seed: int = 0,
):  # fmt: skip
    """Gradient flow of a tanh RNN, a GRU and an LSTM (one per forget-gate bias in ``forget_biases``) on
    the same adding-problem test sequences, fresh and after ``steps`` Adam steps.

    Every model starts from the same seed and trains on the same batches. Returns a tidy DataFrame with
    columns ``model, forget_bias, state, t, norm_h, norm_c, mse, accuracy``: ``state`` is ``fresh`` or
    ``trained``; ``forget_bias`` and ``norm_c`` are NaN for the models without them; ``mse`` is the test
    MSE in that state (a constant 0.5 scores ≈ 0.042) and ``accuracy`` the fraction of test sequences
    with |error| < 0.04 (the 1997 paper's criterion).
    """
    import numpy as np
    import pandas as pd

    x_eval, y_eval = adding_problem(n_eval, T, torch.Generator().manual_seed(seed + 10_000))
    runs = [(m, fb) for m in models for fb in (forget_biases if m == "lstm" else (None,))]
    rows = []
    for model, fb in runs:
        torch.manual_seed(seed)
        net = LastStepRegressor(make_layer(model, hidden_size, forget_bias=fb))
        net.eval()
        name = model if fb is None else f"{model} (forget bias {fb:g})"
        for state in ("fresh", "trained"):
            if state == "trained":
                start = time.perf_counter()
                gen = torch.Generator().manual_seed(seed + 1)
                losses = train_adding(net, T, steps, batch_size=batch_size, lr=lr, generator=gen)
                log.info("%s: %d steps in %.1f s, last training loss %.4f", name, steps, time.perf_counter() - start,
                         float(np.mean(losses[-20:])) if losses else float("nan"))  # fmt: skip
            with torch.no_grad():
                err = net(x_eval) - y_eval
            # Measured in float64: a tanh RNN's gradient from 100 steps away falls below float32's
            # smallest number (1e-45) and would read as exactly 0.
            net64 = copy.deepcopy(net).double()
            flow = gradient_flow(net64.layer, x_eval.double(),
                                 lambda h_last: (net64.head(h_last).squeeze(-1) - y_eval.double()) ** 2)  # fmt: skip
            rows.append({
                "model": np.full(T, model, dtype=object),
                "forget_bias": np.full(T, np.nan if fb is None else fb),
                "state": np.full(T, state, dtype=object),
                "t": np.arange(T),
                "norm_h": flow.norm_h.double().numpy(),
                "norm_c": flow.norm_c.double().numpy() if flow.norm_c is not None else np.full(T, np.nan),
                "mse": np.full(T, float((err**2).mean())),
                "accuracy": np.full(T, float((err.abs() < 0.04).float().mean())),
            })  # fmt: skip
    return pd.DataFrame({k: np.concatenate([r[k] for r in rows]) for k in rows[0]})


COLORS = {"rnn": "#d62728", "gru": "#2ca02c"}
LSTM_COLORS = ("#1f77b4", "#9467bd", "#17becf", "#8c564b")


def _curves(frame):
    """(label, color, rows) per model run, in the frame's order."""
    import pandas as pd

    if "forget_bias" not in frame:
        frame = frame.assign(forget_bias=float("nan"))
    keys = frame[["model", "forget_bias"]].drop_duplicates()
    lstm_seen = 0
    for model, fb in keys.itertuples(index=False):
        rows = frame[(frame["model"] == model) & (frame["forget_bias"].isna() if pd.isna(fb) else frame["forget_bias"] == fb)]
        if model == "lstm":
            color = LSTM_COLORS[lstm_seen % len(LSTM_COLORS)]
            lstm_seen += 1
            label = "LSTM" if pd.isna(fb) else f"LSTM f-bias {fb:g}"
        else:
            color, label = COLORS.get(model), model.upper()
        yield label, color, rows


def plot_gradient_flow(frame, path: str | Path, *, title: str = "") -> Path:
    """One panel per state (fresh, trained): the norms against t on a log scale, ``h`` solid, ``c`` dashed."""
    from lstmkit.reports.plots import _pyplot, _save

    plt = _pyplot()
    states = list(dict.fromkeys(frame["state"]))
    fig, axes = plt.subplots(1, len(states), figsize=(5.2 * len(states), 4.0), sharey=True, squeeze=False)
    positive = frame[["norm_h", "norm_c"]].to_numpy().ravel()
    positive = positive[positive > 0]
    floor = max(float(positive.min()) / 10, 1e-300) if positive.size else 1e-300  # log axis: 0 drawn at the floor
    for ax, state in zip(axes[0], states):
        part = frame[frame["state"] == state]
        for label, color, rows in _curves(part):
            mse = rows["mse"].iloc[0]
            ax.semilogy(rows["t"], rows["norm_h"].clip(lower=floor), color=color, lw=1.6,
                        label=f"{label} h (test MSE {mse:.4f})")  # fmt: skip
            if rows["norm_c"].notna().any():
                ax.semilogy(rows["t"], rows["norm_c"].clip(lower=floor), color=color, lw=1.2, ls="--", label=f"{label} c")
        ax.set_title(state)
        ax.set_xlabel("time step t (the loss reads only the last step)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("‖∂L/∂h_t‖ (solid), ‖∂L/∂c_t‖ (dashed)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
