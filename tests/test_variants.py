r"""Each LSTM variant is what its paper says, checked against equations written here from the papers.

The oracle is Greff et al. 2017 ("LSTM: A search space odyssey"), whose *vanilla* cell is the peephole
LSTM of Gers & Schmidhuber 2000 (σ logistic, ⊙ element-wise, g = h = tanh):

    i_t = σ(W_i x_t + R_i h_{t-1} + p_i ⊙ c_{t-1} + b_i)
    f_t = σ(W_f x_t + R_f h_{t-1} + p_f ⊙ c_{t-1} + b_f)
    z_t = g(W_z x_t + R_z h_{t-1} + b_z)                       (torch and lstmkit call it g)
    c_t = z_t ⊙ i_t + c_{t-1} ⊙ f_t
    o_t = σ(W_o x_t + R_o h_{t-1} + p_o ⊙ c_t + b_o)           (the output peephole reads the NEW c_t)
    y_t = h(c_t) ⊙ o_t

and the ablations NIG i=1 · NFG f=1 · NOG o=1 · NIAF g(x)=x · NOAF h(x)=x · CIFG f=1−i · FGR: i, f, o
also receive the previous step's gate activations i_{t-1}, f_{t-1}, o_{t-1} through nine H×H matrices.
Layer normalisation is Ba et al. 2016, eqs. 20–22:

    (i, f, g, o) pre-activations = LN(W_x x_t; α_x, β_x) + LN(W_h h_{t-1}; α_h, β_h) + b
    h_t = o_t ⊙ tanh(LN(c_t; α_c, β_c))          (c_t itself is carried un-normalised)

Assumptions about parameter names (from the API; each is also asserted, so a change shows up here):
- ``weight_ih_l{k}`` / ``weight_hh_l{k}`` / ``bias_ih_l{k}`` / ``bias_hh_l{k}`` stack one H-row block per
  gate the variant keeps, in the order i, f, g, o with removed gates omitted (so NFG and CIFG: i, g, o;
  NIG: f, g, o; NOG: i, f, g). b = bias_ih + bias_hh, as in torch.
- ``weight_peep_l{k}`` has one row per peephole, in the order i, f, o, only for gates that exist
  (vanilla: i, f, o; NIG: f, o; NFG/CIFG: i, o; NOG: i, f).
- ``weight_fgr_l{k}`` is (3H, 3H): rows are the target gates i, f, o, columns the source gates
  i_{t-1}, f_{t-1}, o_{t-1}; the previous gates start at zero (like h and c).
- LN parameters ``ln_ih_*`` (4H) normalise W_x x, ``ln_hh_*`` (4H) W_h h, ``ln_cell_*`` (H) c_t;
  LN's ε is 1e-5 (torch's LayerNorm default; the paper does not fix one).

Everything runs in float64, so the layer and these equations must agree to ~1e-12; the tolerance used is
1e-9 absolute (1e-6 would be enough to tell every variant apart, see ``test_variants_differ``).
"""

from __future__ import annotations

import pytest
import torch

import lstmkit

DT = torch.float64
T, B, I, H = 6, 3, 4, 5
RTOL, ATOL = 1e-7, 1e-9

GATES = {  # weight rows, in order
    "standard": "ifgo", "peephole": "ifgo", "nig": "fgo", "nfg": "igo", "nog": "ifg",
    "niaf": "ifgo", "noaf": "ifgo", "cifg": "igo", "fgr": "ifgo",
}  # fmt: skip
PEEPHOLES = {  # rows of weight_peep, in order
    "standard": "", "peephole": "ifo", "nig": "fo", "nfg": "io", "nog": "if",
    "niaf": "ifo", "noaf": "ifo", "cifg": "io", "fgr": "ifo",
}  # fmt: skip
VARIANTS = list(GATES)


def close(actual, expected, what):
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}: {m}")


def build(variant, **kw):
    """A reference-backend float64 layer with all parameters drawn N(0, 0.5²): larger than torch's
    init so that every term (peepholes, LN gains/shifts, FGR) moves the output well above tolerance."""
    layer = lstmkit.LSTM(I, H, variant=variant, backend="reference", dtype=DT, **kw)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.5 * torch.randn_like(p))
    return layer


def data(D=1, L=1):
    x = torch.randn(T, B, I, dtype=DT)
    h0 = torch.randn(L * D, B, H, dtype=DT)
    c0 = torch.randn(L * D, B, H, dtype=DT)
    return x, h0, c0


def blocks(sd, gates, sfx="_l0"):
    """Per-gate W (H, I), R (H, H), b (H,) = b_ih + b_hh, read from the state_dict."""
    W = dict(zip(gates, sd["weight_ih" + sfx].split(H)))
    R = dict(zip(gates, sd["weight_hh" + sfx].split(H)))
    b = dict(zip(gates, (sd["bias_ih" + sfx] + sd["bias_hh" + sfx]).split(H)))
    return W, R, b


def stepwise(layer, x, h0, c0):
    """Run the layer one step at a time, feeding its state back: h_t and c_t for t = -1 … T-1.

    Also checks that stepping equals one call over the whole sequence."""
    hs, cs = [h0[0]], [c0[0]]
    h, c = h0, c0
    for t in range(T):
        out, (h, c) = layer(x[t : t + 1], (h, c))
        close(out[0], h[0], f"output vs h_n at step {t}")
        hs.append(h[0])
        cs.append(c[0])
    out, (h_n, c_n) = layer(x, (h0, c0))
    close(out, torch.stack(hs[1:]), "whole-sequence output vs step by step")
    close(c_n[0], cs[-1], "whole-sequence c_n vs step by step")
    return hs, cs


def pre(W, R, b, gate, x_t, h_prev):
    return x_t @ W[gate].T + h_prev @ R[gate].T + b[gate]


# ------------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_parameters(variant):
    """Shapes follow the gates and peepholes the variant keeps; nothing else is there."""
    layer = build(variant)
    n, npeep = len(GATES[variant]), len(PEEPHOLES[variant])
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    expected = {
        "weight_ih_l0": (n * H, I), "weight_hh_l0": (n * H, H), "bias_ih_l0": (n * H,), "bias_hh_l0": (n * H,),
    }  # fmt: skip
    if npeep:
        expected["weight_peep_l0"] = (npeep, H)
    if variant == "fgr":
        expected["weight_fgr_l0"] = (3 * H, 3 * H)
    assert shapes == expected


# ------------------------------------------------------------------------------------------ ablations
def test_nfg_cell_state_is_running_sum_of_i_g():
    """NFG (f = 1, the 1997 cell): no forget-gate parameters, and c_t = c_0 + Σ_{s≤t} i_s ⊙ g_s."""
    layer = build("nfg")
    sd = layer.state_dict()
    assert sd["weight_ih_l0"].shape[0] == 3 * H and sd["weight_hh_l0"].shape[0] == 3 * H
    assert sd["weight_peep_l0"].shape[0] == 2  # p_i, p_o; no p_f
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    W, R, b = blocks(sd, "igo")
    p_i, p_o = sd["weight_peep_l0"]
    running = c0[0].clone()
    for t in range(T):
        i = torch.sigmoid(pre(W, R, b, "i", x[t], hs[t]) + p_i * cs[t])
        g = torch.tanh(pre(W, R, b, "g", x[t], hs[t]))
        running = running + i * g
        close(cs[t + 1], running, f"c_{t} vs c_0 + running sum of i⊙g")
        o = torch.sigmoid(pre(W, R, b, "o", x[t], hs[t]) + p_o * cs[t + 1])
        close(hs[t + 1], o * torch.tanh(cs[t + 1]), f"h_{t}")


def test_cifg_forget_is_one_minus_input():
    """CIFG: f = 1 − i, i.e. c_t = (1 − i_t) ⊙ c_{t-1} + i_t ⊙ g_t, with i's peephole on c_{t-1}."""
    layer = build("cifg")
    sd = layer.state_dict()
    assert sd["weight_ih_l0"].shape[0] == 3 * H
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    W, R, b = blocks(sd, "igo")
    p_i, p_o = sd["weight_peep_l0"]
    for t in range(T):
        i = torch.sigmoid(pre(W, R, b, "i", x[t], hs[t]) + p_i * cs[t])
        g = torch.tanh(pre(W, R, b, "g", x[t], hs[t]))
        close(cs[t + 1], (1 - i) * cs[t] + i * g, f"c_{t}")
        o = torch.sigmoid(pre(W, R, b, "o", x[t], hs[t]) + p_o * cs[t + 1])
        close(hs[t + 1], o * torch.tanh(cs[t + 1]), f"h_{t}")


def _vanilla_gates(sd, x_t, h_prev, c_prev):
    W, R, b = blocks(sd, "ifgo")
    p_i, p_f, p_o = sd["weight_peep_l0"]
    i = torch.sigmoid(pre(W, R, b, "i", x_t, h_prev) + p_i * c_prev)
    f = torch.sigmoid(pre(W, R, b, "f", x_t, h_prev) + p_f * c_prev)
    return i, f, pre(W, R, b, "g", x_t, h_prev), lambda c: torch.sigmoid(pre(W, R, b, "o", x_t, h_prev) + p_o * c)


def test_noaf_output_is_o_times_c():
    """NOAF: h(x) = x, so h_t = o_t ⊙ c_t (no tanh on the cell state)."""
    layer = build("noaf")
    sd = layer.state_dict()
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    for t in range(T):
        i, f, g_pre, o_of = _vanilla_gates(sd, x[t], hs[t], cs[t])
        close(cs[t + 1], f * cs[t] + i * torch.tanh(g_pre), f"c_{t}")
        close(hs[t + 1], o_of(cs[t + 1]) * cs[t + 1], f"h_{t} vs o⊙c")


def test_niaf_candidate_is_linear():
    """NIAF: g(x) = x, so the candidate is the linear pre-activation W_g x + R_g h + b_g."""
    layer = build("niaf")
    sd = layer.state_dict()
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    for t in range(T):
        i, f, g_pre, o_of = _vanilla_gates(sd, x[t], hs[t], cs[t])
        close(cs[t + 1], f * cs[t] + i * g_pre, f"c_{t} with linear candidate")
        close(hs[t + 1], o_of(cs[t + 1]) * torch.tanh(cs[t + 1]), f"h_{t}")


def test_nig_input_gate_is_one():
    """NIG: i = 1, so c_t = f_t ⊙ c_{t-1} + g_t; no input-gate rows and no input peephole."""
    layer = build("nig")
    sd = layer.state_dict()
    assert sd["weight_ih_l0"].shape[0] == 3 * H and sd["weight_peep_l0"].shape[0] == 2
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    W, R, b = blocks(sd, "fgo")
    p_f, p_o = sd["weight_peep_l0"]
    for t in range(T):
        f = torch.sigmoid(pre(W, R, b, "f", x[t], hs[t]) + p_f * cs[t])
        g = torch.tanh(pre(W, R, b, "g", x[t], hs[t]))
        close(cs[t + 1], f * cs[t] + g, f"c_{t}")
        o = torch.sigmoid(pre(W, R, b, "o", x[t], hs[t]) + p_o * cs[t + 1])
        close(hs[t + 1], o * torch.tanh(cs[t + 1]), f"h_{t}")


def test_nog_output_gate_is_one():
    """NOG: o = 1, so h_t = tanh(c_t); no output-gate rows and no output peephole."""
    layer = build("nog")
    sd = layer.state_dict()
    assert sd["weight_ih_l0"].shape[0] == 3 * H and sd["weight_peep_l0"].shape[0] == 2
    x, h0, c0 = data()
    hs, cs = stepwise(layer, x, h0, c0)
    W, R, b = blocks(sd, "ifg")
    p_i, p_f = sd["weight_peep_l0"]
    for t in range(T):
        i = torch.sigmoid(pre(W, R, b, "i", x[t], hs[t]) + p_i * cs[t])
        f = torch.sigmoid(pre(W, R, b, "f", x[t], hs[t]) + p_f * cs[t])
        g = torch.tanh(pre(W, R, b, "g", x[t], hs[t]))
        close(cs[t + 1], f * cs[t] + i * g, f"c_{t}")
        close(hs[t + 1], torch.tanh(cs[t + 1]), f"h_{t} vs tanh(c)")


# ------------------------------------------------------------------------------------------ full loops
def greff_sequence(x, h, c, sd, sfx="_l0", fgr=False):
    """Greff's vanilla cell (optionally with FGR) over one direction of one sequence.

    x (T, N, I), h/c (N, H) -> outputs (T, N, H), h_T, c_T. Written from the equations in the module
    docstring; nothing is shared with lstmkit."""
    W, R, b = blocks(sd, "ifgo", sfx)
    p_i, p_f, p_o = sd["weight_peep" + sfx]
    gates_prev = x.new_zeros(x.shape[1], 3 * H)  # i_{t-1}, f_{t-1}, o_{t-1}
    outs = []
    for x_t in x:
        extra = dict.fromkeys("ifo", 0)
        if fgr:  # rows of weight_fgr: target gate i, f, o; columns: source gate i_{t-1}, f_{t-1}, o_{t-1}
            extra = dict(zip("ifo", (gates_prev @ sd["weight_fgr" + sfx].T).split(H, -1)))
        i = torch.sigmoid(x_t @ W["i"].T + h @ R["i"].T + p_i * c + b["i"] + extra["i"])
        f = torch.sigmoid(x_t @ W["f"].T + h @ R["f"].T + p_f * c + b["f"] + extra["f"])
        z = torch.tanh(x_t @ W["g"].T + h @ R["g"].T + b["g"])
        c = z * i + c * f
        o = torch.sigmoid(x_t @ W["o"].T + h @ R["o"].T + p_o * c + b["o"] + extra["o"])
        h = torch.tanh(c) * o
        gates_prev = torch.cat([i, f, o], -1)
        outs.append(h)
    return torch.stack(outs), h, c


def greff_stack(x, h0, c0, sd, L, D, lengths, fgr=False):
    """Stacked, (bi)directional, variable-length oracle: every sequence is run alone over its own
    length (the reverse direction over its own steps flipped), then padded with zeros."""
    outs, h_n, c_n = [], torch.zeros_like(h0), torch.zeros_like(c0)
    for bidx in range(x.shape[1]):
        n = lengths[bidx]
        layer_in = x[:n, bidx : bidx + 1]  # (n, 1, I)
        for layer in range(L):
            dir_outs = []
            for d in range(D):
                k = layer * D + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                seq = layer_in.flip(0) if d else layer_in
                o, h, c = greff_sequence(seq, h0[k, bidx : bidx + 1], c0[k, bidx : bidx + 1], sd, sfx, fgr)
                dir_outs.append(o.flip(0) if d else o)
                h_n[k, bidx], c_n[k, bidx] = h[0], c[0]
            layer_in = torch.cat(dir_outs, -1)
        outs.append(torch.cat([layer_in, layer_in.new_zeros(x.shape[0] - n, 1, layer_in.shape[-1])]))
    return torch.cat(outs, 1), h_n, c_n


def test_peephole_matches_greff_vanilla():
    """"peephole" is Greff's vanilla cell: one layer, one direction, against the loop written here."""
    layer = build("peephole")
    x, h0, c0 = data()
    out, (h_n, c_n) = layer(x, (h0, c0))
    ref_out, ref_h, ref_c = greff_sequence(x, h0[0], c0[0], layer.state_dict())
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    close(out, ref_out, "output")
    close(h_n[0], ref_h, "h_n")
    close(c_n[0], ref_c, "c_n")


def test_output_peephole_reads_new_cell_state():
    """The same loop with p_o ⊙ c_{t-1} instead of p_o ⊙ c_t must NOT match (the test can tell them apart)."""
    layer = build("peephole")
    x, h0, c0 = data()
    out, _ = layer(x, (h0, c0))
    sd = layer.state_dict()
    W, R, b = blocks(sd, "ifgo")
    p_i, p_f, p_o = sd["weight_peep_l0"]
    h, c = h0[0], c0[0]
    wrong = []
    for x_t in x:
        i = torch.sigmoid(pre(W, R, b, "i", x_t, h) + p_i * c)
        f = torch.sigmoid(pre(W, R, b, "f", x_t, h) + p_f * c)
        o = torch.sigmoid(pre(W, R, b, "o", x_t, h) + p_o * c)  # old c: wrong on purpose
        c = f * c + i * torch.tanh(pre(W, R, b, "g", x_t, h))
        h = o * torch.tanh(c)
        wrong.append(h)
    assert (out - torch.stack(wrong)).abs().max() > 1e-3


@pytest.mark.parametrize("variant", ["peephole", "fgr"])
def test_stacked_bidirectional_lengths_match_oracle(variant):
    """Two bidirectional layers over a padded batch: each sequence's outputs and final states equal the
    oracle run on that sequence alone (reverse direction from its own last step)."""
    L, D = 2, 2
    layer = build(variant, num_layers=L, bidirectional=True)
    x, h0, c0 = data(D, L)
    lengths = [4, T, 1]
    out, (h_n, c_n) = layer(x, (h0, c0), lengths=torch.tensor(lengths))
    ref_out, ref_h, ref_c = greff_stack(x, h0, c0, layer.state_dict(), L, D, lengths, fgr=variant == "fgr")
    close(out, ref_out, "output")
    close(h_n, ref_h, "h_n")
    close(c_n, ref_c, "c_n")


def test_fgr_with_zero_recurrence_is_vanilla():
    """FGR with weight_fgr = 0 is exactly the peephole (vanilla) layer with the same other weights."""
    fgr = build("fgr")
    assert fgr.weight_fgr_l0.shape == (3 * H, 3 * H)
    vanilla = build("peephole")
    sd = fgr.state_dict()
    fgr_only = sd.pop("weight_fgr_l0")
    assert fgr_only.abs().max() > 0
    vanilla.load_state_dict(sd, strict=True)
    x, h0, c0 = data()
    out_f, (h_f, c_f) = fgr(x, (h0, c0))
    out_v, (h_v, c_v) = vanilla(x, (h0, c0))
    assert (out_f - out_v).abs().max() > 1e-3, "weight_fgr has no effect"
    with torch.no_grad():
        fgr.weight_fgr_l0.zero_()
    out_f, (h_f, c_f) = fgr(x, (h0, c0))
    close(out_f, out_v, "output")
    close(h_f, h_v, "h_n")
    close(c_f, c_v, "c_n")


def test_fgr_matches_greff_full_gate_recurrence():
    """Nonzero weight_fgr: pre-activations of i, f, o gain W_fgr [i_{t-1}; f_{t-1}; o_{t-1}] (block
    (target, source) = rows target·H…, columns source·H…, order i, f, o)."""
    layer = build("fgr")
    x, h0, c0 = data()
    out, (h_n, c_n) = layer(x, (h0, c0))
    ref_out, ref_h, ref_c = greff_sequence(x, h0[0], c0[0], layer.state_dict(), fgr=True)
    close(out, ref_out, "output")
    close(h_n[0], ref_h, "h_n")
    close(c_n[0], ref_c, "c_n")


# ------------------------------------------------------------------------------------------ layer norm
def _ln(v, gain, shift, eps=1e-5):
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    return (v - mu) / torch.sqrt(var + eps) * gain + shift


def test_layer_norm_matches_ba_et_al():
    layer = build("standard", layer_norm=True)
    sd = layer.state_dict()
    for part, size in (("ih", 4 * H), ("hh", 4 * H), ("cell", H)):
        assert sd[f"ln_{part}_weight_l0"].shape == (size,) and sd[f"ln_{part}_bias_l0"].shape == (size,)
    x, h0, c0 = data()
    out, (h_n, c_n) = layer(x, (h0, c0))
    h, c = h0[0], c0[0]
    b = sd["bias_ih_l0"] + sd["bias_hh_l0"]
    ref = []
    for x_t in x:
        a = (_ln(x_t @ sd["weight_ih_l0"].T, sd["ln_ih_weight_l0"], sd["ln_ih_bias_l0"])
             + _ln(h @ sd["weight_hh_l0"].T, sd["ln_hh_weight_l0"], sd["ln_hh_bias_l0"]) + b)  # fmt: skip
        i, f, g, o = a.split(H, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(_ln(c, sd["ln_cell_weight_l0"], sd["ln_cell_bias_l0"]))
        ref.append(h)
    close(out, torch.stack(ref), "output")
    close(h_n[0], h, "h_n")
    close(c_n[0], c, "c_n (un-normalised)")


def test_layer_norm_default_init_is_identity_gain():
    """LN gains start at 1 and shifts at 0 (Ba et al.'s initialisation)."""
    layer = lstmkit.LSTM(I, H, layer_norm=True, backend="reference")
    for name, p in layer.named_parameters():
        if name.startswith("ln_"):
            assert torch.all(p == (1.0 if "_weight" in name else 0.0)), name


# ------------------------------------------------------------------------------------------ consistency
def test_variants_differ():
    """Every variant computes a different function from every other (given the shared weights where
    shapes allow): guards against a variant silently falling back to another one."""
    x, h0, c0 = data()
    outs = {}
    vanilla = build("peephole")
    base = vanilla.state_dict()
    for v in VARIANTS:
        layer = build(v)
        if GATES[v] == "ifgo":  # same shapes as vanilla: share the weights so only the equations differ
            sd = {k: base[k] for k in layer.state_dict() if k in base}
            layer.load_state_dict(sd, strict=False)
        outs[v] = layer(x, (h0, c0))[0]
    names = list(outs)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            diff = (outs[names[a]] - outs[names[b]]).abs().max()
            assert diff > 1e-3, f"{names[a]} and {names[b]} give the same output"


@pytest.mark.parametrize("variant", VARIANTS)
def test_auto_backend_runs_variants_like_reference(variant):
    ref = build(variant)
    auto = lstmkit.LSTM(I, H, variant=variant, backend="auto", dtype=DT)
    auto.load_state_dict(ref.state_dict(), strict=True)
    x, h0, c0 = data()
    a, (ah, ac) = auto(x, (h0, c0))
    r, (rh, rc) = ref(x, (h0, c0))
    close(a, r, "output")
    close(ah, rh, "h_n")
    close(ac, rc, "c_n")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_cell_is_one_step_of_the_layer(variant, layer_norm):
    """LSTMCell(variant=…) holds the layer's parameters without the _l0 suffix and computes its step."""
    layer = build(variant, layer_norm=layer_norm)
    cell = lstmkit.LSTMCell(I, H, variant=variant, layer_norm=layer_norm, dtype=DT)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()}, strict=True)
    x, h0, c0 = data()
    out, (h1, c1) = layer(x[:1], (h0, c0))
    res = cell(x[0], (h0[0], c0[0])) if variant != "fgr" else cell(x[0])
    if variant == "fgr":  # the first step of FGR sees zero previous gates; compare from zero state
        out, (h1, c1) = layer(x[:1])
    close(res[0], h1[0], "h")
    close(res[1], c1[0], "c")
