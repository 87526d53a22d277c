r"""Gate activations over time: what every gate of every unit does on an input sequence.

The step functions of :mod:`lstmkit.core.cells` compute the gates internally and return only the new
state. :func:`gate_step` recomputes one step from a layer's :class:`~lstmkit.core.cells.CellWeights`
following the same equations (the module docstring of :mod:`lstmkit.core.cells`) and returns every
intermediate; the tests check that its ``h`` and ``c`` equal the layer's outputs bit for bit (against
the reference backend) for every variant, so the heatmaps show what the layer really computed.

- :func:`trace_gates` — i, f, g, o, c and h of every layer·direction over a sequence (a :class:`GateTrace` each)
- :func:`gates_frame` — the same as a tidy DataFrame (one row per step × unit), for CSV
- :func:`plot_gates` — heatmaps (time × unit) of i, f, g, o, c and h under the input, as a PNG
- :func:`cell_activation_view` / :func:`render_cell_activations_html` / :func:`plot_cell_activations`
  — per-token cell-state values of chosen units, each character coloured by its unit's value
  (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks")

A gate that a variant removes is recorded as its constant (``i = 1`` for NIG, ``f = 1`` for NFG,
``o = 1`` for NOG); CIFG's ``f`` is ``1 - i``; NIAF's ``g`` is the linear pre-activation.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.core.cells import CellWeights, LSTMStepState, Variant, input_projection, variant_step_with_gates

GATE_NAMES = ("i", "f", "g", "o", "c", "h")


@dataclass(frozen=True)
class GateValues:
    """Everything one step of an LSTM computes, each (B, H) except ``h`` (B, P or H)."""

    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    c: Tensor
    cell_out: Tensor  # o ⊙ act(c) before the projection (= h without one)
    h: Tensor


@dataclass(frozen=True)
class GateTrace:
    """One layer·direction's gates over a sequence, time-major (T, B, H) in the input's time order
    (the reverse direction's steps are flipped back, so ``t`` always means input position ``t``)."""

    layer: int
    direction: int  # 0 forward, 1 reverse
    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    c: Tensor
    cell_out: Tensor  # (T, B, H)
    h: Tensor  # (T, B, P or H)


def gate_step(
    xg: Tensor, state: LSTMStepState, w: CellWeights, variant: Variant, layer_norm: bool = False
) -> tuple[LSTMStepState, GateValues]:
    """One LSTM step of ``variant`` (standard included), returning the new state *and* its gates.

    It runs the engine's own :func:`~lstmkit.core.cells.variant_step_with_gates`, so ``h`` and ``c``
    are bitwise those of the reference loop.
    """
    new, g = variant_step_with_gates(xg, state, w, variant, layer_norm)
    full = new.c.shape
    values = GateValues(g.i.expand(full), g.f.expand(full), g.g, g.o.expand(full), new.c, g.cell_out, new.h)
    return new, values


def _time_major(layer: torch.nn.Module, x: Tensor) -> Tensor:
    """``x`` in the layer's layout (or one unbatched sequence (T, I)) -> (T, B, I)."""
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"inputs must be a 3-D tensor in the layer's layout or 2-D (T, I), got {getattr(x, 'shape', type(x))}")
    if x.shape[-1] != layer.input_size:
        raise ValueError(f"inputs have {x.shape[-1]} features but the layer has input_size={layer.input_size}")
    if x.dim() == 2:
        return x.unsqueeze(1)
    return x.transpose(0, 1) if layer.batch_first else x


def _check_lstm(layer: torch.nn.Module) -> None:
    if getattr(layer, "mode", None) != "lstm" or not hasattr(layer, "cell_weights"):
        raise TypeError(
            f"layer must be an lstmkit.LSTM (gates exist only in LSTMs), got {type(layer).__name__}; "
            "convert a torch.nn.LSTM with lstmkit.LSTM(...).load_state_dict(torch_lstm.state_dict())"
        )


def trace_gates(layer: torch.nn.Module, inputs: Tensor) -> list[GateTrace]:
    """Gates of every layer and direction of ``layer`` (an :class:`lstmkit.LSTM`) over ``inputs``.

    ``inputs`` are in the layer's layout ((T, B, I), or (B, T, I) with ``batch_first``) or one sequence
    (T, I); the state starts at zero and dropout between layers is off (what ``layer.eval()`` computes).
    Returns one :class:`GateTrace` per layer·direction in torch's order (l0, l0_reverse, l1, …).
    """
    _check_lstm(layer)
    return _trace_time_major(layer, _time_major(layer, inputs))


def _trace_time_major(layer: torch.nn.Module, x: Tensor) -> list[GateTrace]:
    """:func:`trace_gates` on inputs already time-major (T, B, I), whatever the layer's layout."""
    spec = layer.spec
    traces: list[GateTrace] = []
    weights = layer.cell_weights()
    D = spec.num_directions
    with torch.no_grad():
        layer_in = x
        for k in range(spec.num_layers):
            outs = []
            for d in range(D):
                w = weights[k * D + d]
                seq = layer_in.flip(0) if d == 1 else layer_in
                trace = _run_one(seq, w, spec.variant, spec.layer_norm, spec.hidden_size, spec.output_size)
                if d == 1:
                    trace = {name: v.flip(0) for name, v in trace.items()}
                traces.append(GateTrace(k, d, **trace))
                outs.append(trace["h"])
            layer_in = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D·P)
    return traces


def _run_one(x: Tensor, w: CellWeights, variant: Variant, layer_norm: bool, H: int, P: int) -> dict[str, Tensor]:
    T, B = x.shape[:2]
    xg = input_projection(x, w, layer_norm)  # (T, B, G)
    z = x.new_zeros(B, H)
    state = LSTMStepState(x.new_zeros(B, P), z, x.new_zeros(B, 3 * H) if variant.full_recurrence else None)
    steps = []
    for t in range(T):
        state, values = gate_step(xg[t], state, w, variant, layer_norm)
        steps.append(values)
    fields = ("i", "f", "g", "o", "c", "cell_out", "h")
    return {name: torch.stack([getattr(s, name) for s in steps]) for name in fields}


def gates_frame(traces: GateTrace | Sequence[GateTrace], sequence: int = 0):
    """A tidy DataFrame of one sequence's gates: columns ``layer, direction, t, unit, i, f, g, o, c, h``.

    ``h`` is the cell output ``o ⊙ tanh(c)`` of each unit (before a projection, if the layer has one).
    """
    import numpy as np
    import pandas as pd

    if isinstance(traces, GateTrace):
        traces = [traces]
    frames = []
    for tr in traces:
        T, B, H = tr.c.shape
        if not 0 <= sequence < B:
            raise ValueError(f"sequence={sequence} is out of range: the inputs hold {B} sequence(s)")
        cols = {name: getattr(tr, src)[:, sequence].detach().cpu().double().numpy().reshape(-1)
                for name, src in zip(GATE_NAMES, ("i", "f", "g", "o", "c", "cell_out"))}  # fmt: skip
        frames.append(pd.DataFrame({
            "layer": tr.layer, "direction": tr.direction,
            "t": np.repeat(np.arange(T), H), "unit": np.tile(np.arange(H), T), **cols,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def plot_gates(
    trace: GateTrace, path: str | Path, *, sequence: int = 0, inputs: Tensor | None = None,
    input_names: Sequence[str] | None = None, title: str = "",
) -> Path:  # fmt: skip
    """Heatmaps (unit × time) of i, f, g, o, c and h for one sequence, under a plot of its inputs.

    ``inputs`` (T, I) — the sequence fed in — is drawn as lines on top when given. Gates use a fixed
    0…1 colour scale, ``g`` and ``h`` −1…1, ``c`` symmetric around 0 at its largest magnitude.
    """
    from lstmkit.reports.plots import _pyplot, _save

    plt = _pyplot()
    panels = [
        ("i", "input gate $i_t$", "viridis", (0, 1)),
        ("f", "forget gate $f_t$", "viridis", (0, 1)),
        ("g", "candidate $g_t$", "RdBu_r", (-1, 1)),
        ("o", "output gate $o_t$", "viridis", (0, 1)),
        ("c", "cell state $c_t$", "RdBu_r", None),
        ("cell_out", "output $h_t$", "RdBu_r", (-1, 1)),
    ]
    rows = len(panels) + (inputs is not None)
    H = trace.c.shape[-1]
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.0 + rows * max(1.1, 0.12 * H)), sharex=True, squeeze=False,
                             layout="constrained")  # fmt: skip
    axes = axes[:, 0]
    T = trace.c.shape[0]
    if inputs is not None:
        x = inputs.detach().cpu().double().numpy().reshape(T, -1)
        ax = axes[0]
        for j in range(x.shape[1]):
            ax.plot(range(T), x[:, j], lw=1, label=input_names[j] if input_names else f"x[{j}]")
        ax.set_ylabel("input", rotation=0, ha="right", va="center")
        ax.legend(loc="upper right", fontsize=7, ncol=x.shape[1], frameon=False)
        axes = axes[1:]
    for ax, (name, label, cmap, lim) in zip(axes, panels):
        m = getattr(trace, name)[:, sequence].detach().cpu().double().numpy().T  # (H, T)
        if lim is None:
            r = float(abs(m).max()) or 1.0
            lim = (-r, r)
        im = ax.imshow(m, aspect="auto", cmap=cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest",
                       extent=(-0.5, T - 0.5, H - 0.5, -0.5))  # fmt: skip
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.set_yticks([0, H - 1] if H > 1 else [0])
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    axes[-1].set_xlabel("time step t")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------------- cell activation view
def cell_activation_view(
    layer: torch.nn.Module, inputs: Tensor, tokens: Sequence[str], units: Sequence[int] | None = None,
    *, layer_index: int = -1, direction: int = 0,
):  # fmt: skip
    """Per-token cell state of chosen units over one sequence (Karpathy et al. 2015's cell view).

    ``inputs`` is the encoded sequence as the layer receives it — (T, I), or (T, 1, I) / (1, T, I) in
    the layer's layout — typically one-hot characters or embeddings; ``tokens`` are the T strings they
    encode (characters for a character model). Returns a DataFrame with columns
    ``position, token, unit, c, tanh_c, h``; ``tanh_c`` is what Karpathy et al. colour by.
    """
    import numpy as np
    import pandas as pd

    _check_lstm(layer)
    x = _time_major(layer, inputs)
    if x.shape[1] != 1:
        raise ValueError(f"inputs must hold one sequence, got a batch of {x.shape[1]}; pass inputs[:, :1] or one row")
    tokens = list(tokens)
    if len(tokens) != x.shape[0]:
        raise ValueError(f"tokens has {len(tokens)} entries but inputs has {x.shape[0]} steps; pass one token per step")
    traces = _trace_time_major(layer, x)  # x is time-major already: trace_gates would transpose it again
    D = layer.spec.num_directions
    k = layer_index % layer.spec.num_layers
    if direction not in range(D):
        raise ValueError(f"direction={direction} but the layer has {D} direction(s); use 0" + (" or 1" if D == 2 else ""))
    tr = traces[k * D + direction]
    H = tr.c.shape[-1]
    units = list(range(H)) if units is None else [int(u) for u in units]
    bad = [u for u in units if not 0 <= u < H]
    if bad:
        raise ValueError(f"units {bad} are out of range: the layer has hidden_size={H} (units 0…{H - 1})")
    c = tr.c[:, 0, units].double().numpy()  # (T, U)
    h = tr.cell_out[:, 0, units].double().numpy()
    T, U = c.shape
    return pd.DataFrame({
        "position": np.repeat(np.arange(T), U), "token": np.repeat(np.array(tokens, dtype=object), U),
        "unit": np.tile(units, T), "c": c.reshape(-1), "tanh_c": np.tanh(c).reshape(-1), "h": h.reshape(-1),
    })  # fmt: skip


def _rgb(v: float) -> str:
    """-1 -> blue, 0 -> white, +1 -> red (Karpathy et al.'s colouring)."""
    v = max(-1.0, min(1.0, float(v)))
    a = int(round(255 * (1 - abs(v))))
    return f"rgb(255,{a},{a})" if v >= 0 else f"rgb({a},{a},255)"


def render_cell_activations_html(view, path: str | Path | None = None, *, column: str = "tanh_c") -> str:
    """Self-contained HTML: one block per unit, each token's background coloured by ``column``
    (−1 blue … 0 white … +1 red). Returns the HTML and writes it to ``path`` when given."""
    from lstmkit.training.checkpoint import atomic_write_bytes

    blocks = []
    for unit, rows in view.groupby("unit", sort=False):
        spans = []
        for tok, v in zip(rows["token"], rows[column]):
            text = html.escape(str(tok)).replace("\n", "↵<br>").replace(" ", "&nbsp;")
            spans.append(f'<span title="{float(v):+.3f}" style="background:{_rgb(v)}">{text}</span>')
        blocks.append(f"<h3>unit {unit}</h3><div class='seq'>{''.join(spans)}</div>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>cell activations</title>"
        "<style>body{font-family:sans-serif}.seq{font-family:monospace;font-size:15px;line-height:1.6;"
        "word-wrap:break-word}</style></head><body>"
        f"<p>Background: {html.escape(column)} per token, blue −1 · white 0 · red +1 (hover for the value).</p>"
        + "".join(blocks) + "</body></html>"
    )
    if path is not None:
        atomic_write_bytes(Path(path), page.encode("utf-8"))
    return page


def plot_cell_activations(view, path: str | Path, *, column: str = "tanh_c", width: int = 60) -> Path:
    """The same colouring as a PNG: per unit, the text wrapped at ``width`` characters, one coloured cell each."""
    import numpy as np

    from lstmkit.reports.plots import _pyplot, _save

    plt = _pyplot()
    groups = list(view.groupby("unit", sort=False))
    lines_per = [max(1, -(-len(rows) // width)) for _, rows in groups]
    total = sum(lines_per) + len(groups)  # one title line per unit
    grid = np.full((total, width), np.nan)  # (lines, width): the colour of every character cell
    texts = []
    y = 0
    for (unit, rows), n_lines in zip(groups, lines_per):
        texts.append((0, y, f"unit {unit}", True))
        y += 1
        for j, (tok, v) in enumerate(zip(rows["token"], rows[column])):
            row, col = divmod(j, width)
            grid[y + row, col] = float(v)
            texts.append((col, y + row, "↵" if tok == "\n" else str(tok), False))
        y += n_lines
    fig, ax = plt.subplots(figsize=(0.16 * width + 0.4, 0.28 * total + 0.3))
    ax.imshow(grid, cmap="bwr", vmin=-1, vmax=1, alpha=0.75, aspect="auto", interpolation="nearest",
              extent=(0, width, total - 0.5, -0.5))  # fmt: skip
    for col, row, text, bold in texts:
        if bold:
            ax.text(col, row, text, fontsize=8, fontweight="bold", va="center")
        else:
            ax.text(col + 0.5, row, text, fontsize=8, ha="center", va="center", family="monospace")
    ax.set_xlim(0, width)
    ax.set_ylim(total - 0.5, -0.5)
    ax.axis("off")
    return _save(fig, path)


# ----------------------------------------------------------------------------------- a worked example
@dataclass(frozen=True)
class GateStudy:
    """An LSTM trained briefly on the adding problem and its gates on one fresh test sequence."""

    layer: torch.nn.Module
    inputs: Tensor  # (T, 1, 2) the test sequence: values, markers
    target: float
    prediction: float
    mse: float  # on 256 fresh test sequences (a constant 0.5 scores ≈ 0.042)
    trace: GateTrace


def gate_study(
    variant: str = "standard", T: int = 50, *, steps: int = 1000, hidden_size: int = 8, seed: int = 0,
    lr: float = 3e-3, forget_bias: float = 5.0,
) -> GateStudy:  # fmt: skip
    """Train a one-layer LSTM ``variant`` for ``steps`` Adam steps on the adding problem (see
    :func:`lstmkit.diagnostics.gradients.adding_problem`) and trace its gates on a fresh sequence."""
    from lstmkit.diagnostics.gradients import LastStepRegressor, adding_problem, make_layer, train_adding

    torch.manual_seed(seed)
    net = LastStepRegressor(make_layer("lstm", hidden_size, variant=variant, forget_bias=forget_bias))
    train_adding(net, T, steps, batch_size=32, lr=lr, generator=torch.Generator().manual_seed(seed + 1))
    x_test, y_test = adding_problem(256, T, torch.Generator().manual_seed(seed + 10_000))
    with torch.no_grad():
        pred = net(x_test)
    mse = float(F.mse_loss(pred, y_test))
    x = x_test[:, :1]  # (T, 1, 2)
    trace = trace_gates(net.layer, x)[0]
    return GateStudy(net.layer, x, float(y_test[0]), float(pred[0]), mse, trace)
