"""lstmkit's standard layers against torch.nn: the oracle is torch itself.

A ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` / ``LSTMCell`` is built, its state_dict is loaded into the
lstmkit layer with ``strict=True`` (so parameter names and shapes must be identical, no conversion), and
outputs, final states, every parameter gradient and the input / initial-state gradients are compared.

Tolerance: fp32, rtol 1e-5 / atol 1e-6 (the issue's bound). The reference backend sums in a different
order from torch's fused kernel, so bit equality is not expected, but a same-algorithm difference at these
sizes is ~1e-7.

Variable lengths are compared with what torch computes for a padded batch:
``pack_padded_sequence(enforce_sorted=False)`` -> module -> ``pad_packed_sequence(total_length=T)``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit

RTOL, ATOL = 1e-5, 1e-6
T, B, I, H, P = 5, 3, 4, 6, 3
# Unsorted on purpose; the first set has max == T, the second leaves trailing padding for everyone and
# includes a length-1 sequence.
LENGTHS = {"none": None, "full": [5, 2, 4], "short": [4, 1, 3]}
LSTM_BACKENDS = ["reference", "native", "auto"]
# torch's own notice that oneDNN has no projection kernel (it then uses its ATen kernel); not our concern.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def close(actual, expected, what):
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}: {m}")


def run_torch(mod, x, hx, lengths, batch_first):
    if lengths is None:
        return mod(x, hx)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    out, state = mod(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    return out, state


def make_inputs(batch_first, D, L, out_size, with_state, lstm=True):
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, requires_grad=True)
    if not with_state:
        return x, None, []
    h0 = torch.randn(L * D, B, out_size, requires_grad=True)
    if not lstm:
        return x, h0, [h0]
    c0 = torch.randn(L * D, B, H, requires_grad=True)
    return x, (h0, c0), [h0, c0]


def weighted_loss(tensors, weights):
    return sum((t * w).sum() for t, w in zip(tensors, weights))


def compare_module_run(ref_mod, lk_mod, x, hx, leaves, lengths, batch_first, lstm=True):
    """Forward + backward through both modules with the same random loss; compare everything."""
    ref_out, ref_state = run_torch(ref_mod, x, hx, lengths, batch_first)
    lk_out, lk_state = lk_mod(x, hx, lengths=lengths) if lengths is not None else lk_mod(x, hx)
    ref_parts = [ref_out, *ref_state] if lstm else [ref_out, ref_state]
    lk_parts = [lk_out, *lk_state] if lstm else [lk_out, lk_state]
    names = ["output", "h_n", "c_n"] if lstm else ["output", "h_n"]
    for name, a, e in zip(names, lk_parts, ref_parts):
        assert a.shape == e.shape, f"{name} shape {tuple(a.shape)} != torch {tuple(e.shape)}"
        close(a, e, name)
    if lengths is not None:
        # Outputs past each sequence's length are exactly zero.
        lk_bt = lk_out if batch_first else lk_out.transpose(0, 1)
        for b, n in enumerate(lengths):
            assert torch.all(lk_bt[b, n:] == 0), f"output past length {n} of sequence {b} is not zero"

    weights = [torch.randn_like(p) for p in ref_parts]
    inputs = [x, *leaves]
    ref_params = dict(ref_mod.named_parameters())
    lk_params = dict(lk_mod.named_parameters())
    assert set(ref_params) == set(lk_params)
    ref_grads = torch.autograd.grad(weighted_loss(ref_parts, weights), inputs + list(ref_params.values()))
    lk_grads = torch.autograd.grad(weighted_loss(lk_parts, weights), inputs + list(lk_params.values()))
    grad_names = ["input", "h_0", "c_0"][: len(inputs)] + list(ref_params)
    lk_by_name = dict(zip(["input", "h_0", "c_0"][: len(inputs)] + list(lk_params), lk_grads))
    for name, g in zip(grad_names, ref_grads):
        close(lk_by_name[name], g, f"grad of {name}")


# ---------------------------------------------------------------------------------------------- LSTM
# Every backend × structure (directions, layers, projection), each run with one of the 12 input
# configurations (batch_first × initial state × lengths) in turn, so that every input configuration
# meets every backend; then every input configuration on the richest structure for every backend.
_STRUCTURES = list(itertools.product([False, True], [1, 2, 3], [0, P]))  # bidirectional, layers, proj
_INPUTS = list(itertools.product([False, True], [False, True], list(LENGTHS)))  # batch_first, state, lengths
LSTM_CASES = [
    (backend, *structure, *_INPUTS[(k + 5 * j) % len(_INPUTS)])
    for j, backend in enumerate(LSTM_BACKENDS)
    for k, structure in enumerate(_STRUCTURES)
] + [(backend, True, 2, P, *inputs) for backend in LSTM_BACKENDS for inputs in _INPUTS]


@pytest.mark.parametrize(
    "backend,bidirectional,num_layers,proj_size,batch_first,with_state,lengths_key", LSTM_CASES
)
def test_lstm_matches_torch(backend, bidirectional, num_layers, proj_size, batch_first, with_state, lengths_key):
    lengths = LENGTHS[lengths_key]
    kw = dict(num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional, proj_size=proj_size)
    ref = nn.LSTM(I, H, **kw)
    lk = lstmkit.LSTM(I, H, backend=backend, **kw)
    lk.load_state_dict(ref.state_dict(), strict=True)
    D = 2 if bidirectional else 1
    x, hx, leaves = make_inputs(batch_first, D, num_layers, proj_size or H, with_state)
    compare_module_run(ref, lk, x, hx, leaves, lengths, batch_first)


@pytest.mark.parametrize("backend", LSTM_BACKENDS)
@pytest.mark.parametrize("bidirectional,num_layers,proj_size", [(False, 1, 0), (True, 2, P), (True, 3, 0)])
def test_lstm_state_dict_loads_into_torch(backend, bidirectional, num_layers, proj_size):
    """The other direction: lstmkit's (own-initialised) state_dict loads into torch.nn.LSTM strictly."""
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, proj_size=proj_size)
    lk = lstmkit.LSTM(I, H, backend=backend, **kw)
    ref = nn.LSTM(I, H, **kw)
    sd = lk.state_dict()
    ref_sd = ref.state_dict()
    assert list(sd) == list(ref_sd), "state_dict keys (and their order) differ from torch.nn.LSTM"
    for k in sd:
        assert sd[k].shape == ref_sd[k].shape, f"{k}: {tuple(sd[k].shape)} vs torch {tuple(ref_sd[k].shape)}"
    ref.load_state_dict(sd, strict=True)
    x = torch.randn(T, B, I)
    out, (h, c) = lk(x)
    ref_out, (ref_h, ref_c) = ref(x)
    close(out, ref_out, "output")
    close(h, ref_h, "h_n")
    close(c, ref_c, "c_n")


@pytest.mark.parametrize("backend", LSTM_BACKENDS)
def test_lstm_default_init_follows_torch(backend):
    """Initialisation is torch-compatible: the same seed gives the same weights as torch.nn.LSTM."""
    kw = dict(num_layers=2, bidirectional=True, proj_size=P)
    torch.manual_seed(123)
    ref = nn.LSTM(I, H, **kw)
    torch.manual_seed(123)
    lk = lstmkit.LSTM(I, H, backend=backend, **kw)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(lk.state_dict()[k], v, rtol=0, atol=0, msg=f"init of {k} differs from torch")


@pytest.mark.parametrize("backend", LSTM_BACKENDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("bidirectional,num_layers,proj_size", [(False, 1, 0), (True, 2, P)])
def test_lstm_unbatched_input(backend, batch_first, with_state, bidirectional, num_layers, proj_size):
    """2-D input (T, I) is one sequence, whatever batch_first says; states are (L·D, H)."""
    kw = dict(num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional, proj_size=proj_size)
    ref = nn.LSTM(I, H, **kw)
    lk = lstmkit.LSTM(I, H, backend=backend, **kw)
    lk.load_state_dict(ref.state_dict(), strict=True)
    D = 2 if bidirectional else 1
    x = torch.randn(T, I, requires_grad=True)
    hx = None
    leaves = []
    if with_state:
        hx = (torch.randn(num_layers * D, proj_size or H, requires_grad=True),
              torch.randn(num_layers * D, H, requires_grad=True))  # fmt: skip
        leaves = list(hx)
    ref_out, (rh, rc) = ref(x, hx)
    out, (h, c) = lk(x, hx)
    assert out.shape == ref_out.shape and h.shape == rh.shape and c.shape == rc.shape
    close(out, ref_out, "output")
    close(h, rh, "h_n")
    close(c, rc, "c_n")
    w = [torch.randn_like(t) for t in (ref_out, rh, rc)]
    params = list(ref.parameters())
    g_ref = torch.autograd.grad(weighted_loss([ref_out, rh, rc], w), [x, *leaves, *params])
    lk_params = [dict(lk.named_parameters())[n] for n, _ in ref.named_parameters()]
    g_lk = torch.autograd.grad(weighted_loss([out, h, c], w), [x, *leaves, *lk_params])
    for k, (a, e) in enumerate(zip(g_lk, g_ref)):
        close(a, e, f"gradient #{k}")


@pytest.mark.parametrize("backend", LSTM_BACKENDS)
def test_lstm_dropout_between_layers(backend):
    """dropout acts only in training mode: in eval mode it is the same function as dropout=0."""
    kw = dict(num_layers=3, bidirectional=True)
    plain = lstmkit.LSTM(I, H, backend=backend, **kw)
    dropped = lstmkit.LSTM(I, H, dropout=0.5, backend=backend, **kw)
    dropped.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(T, B, I)
    plain.eval()
    dropped.eval()
    out0, (h0, c0) = plain(x)
    out1, (h1, c1) = dropped(x)
    close(out1, out0, "eval output")
    close(h1, h0, "eval h_n")
    close(c1, c0, "eval c_n")
    dropped.train()
    out2, (h2, _) = dropped(x)
    assert not torch.allclose(out2, out0, rtol=1e-3, atol=1e-4), "dropout has no effect in train mode"
    # The first layer's final state is computed before any dropout; the last layer's is after it.
    close(h2[:2], h0[:2], "first-layer h_n in train mode")
    assert not torch.allclose(h2[-2:], h0[-2:], rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------------------------- GRU, RNN
RNN_KINDS = [("gru", None), ("rnn", "tanh"), ("rnn", "relu")]


def build_pair(kind, nonlinearity, backend, **kw):
    if kind == "gru":
        return nn.GRU(I, H, **kw), lstmkit.GRU(I, H, backend=backend, **kw)
    return (nn.RNN(I, H, nonlinearity=nonlinearity, **kw),
            lstmkit.RNN(I, H, nonlinearity=nonlinearity, backend=backend, **kw))  # fmt: skip


GRU_RNN_CASES = [
    (kind, nl, backend, *structure, *_INPUTS[(3 * a + 2 * b + c) % len(_INPUTS)])
    for a, (kind, nl) in enumerate(RNN_KINDS)
    for b, backend in enumerate(["reference", "auto"])
    for c, structure in enumerate([(False, 1), (True, 2), (False, 3), (True, 1)])
] + [(kind, nl, "reference", True, 2, *inputs) for kind, nl in RNN_KINDS for inputs in _INPUTS if inputs[2] != "none"]


@pytest.mark.parametrize(
    "kind,nonlinearity,backend,bidirectional,num_layers,batch_first,with_state,lengths_key", GRU_RNN_CASES
)
def test_gru_rnn_match_torch(
    kind, nonlinearity, backend, bidirectional, num_layers, batch_first, with_state, lengths_key
):
    lengths = LENGTHS[lengths_key]
    kw = dict(num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional)
    ref, lk = build_pair(kind, nonlinearity, backend, **kw)
    lk.load_state_dict(ref.state_dict(), strict=True)
    D = 2 if bidirectional else 1
    x, hx, leaves = make_inputs(batch_first, D, num_layers, H, with_state, lstm=False)
    compare_module_run(ref, lk, x, hx, leaves, lengths, batch_first, lstm=False)


@pytest.mark.parametrize("kind,nonlinearity", RNN_KINDS)
def test_gru_rnn_state_dict_loads_into_torch(kind, nonlinearity):
    ref, lk = build_pair(kind, nonlinearity, "reference", num_layers=2, bidirectional=True)
    assert list(lk.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(lk.state_dict(), strict=True)
    x = torch.randn(T, B, I)
    out, h = lk(x)
    ref_out, ref_h = ref(x)
    close(out, ref_out, "output")
    close(h, ref_h, "h_n")


@pytest.mark.parametrize("kind,nonlinearity", RNN_KINDS)
def test_gru_rnn_unbatched(kind, nonlinearity):
    ref, lk = build_pair(kind, nonlinearity, "reference", num_layers=2)
    lk.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(T, I)
    h0 = torch.randn(2, H)
    out, h = lk(x, h0)
    ref_out, ref_h = ref(x, h0)
    assert out.shape == ref_out.shape and h.shape == ref_h.shape
    close(out, ref_out, "output")
    close(h, ref_h, "h_n")


# ---------------------------------------------------------------------------------------------- LSTMCell
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_torch(batched, with_state, bias):
    ref = nn.LSTMCell(I, H, bias=bias)
    lk = lstmkit.LSTMCell(I, H, bias=bias)
    lk.load_state_dict(ref.state_dict(), strict=True)
    assert list(lk.state_dict()) == list(ref.state_dict())
    lead = (B,) if batched else ()
    x = torch.randn(*lead, I, requires_grad=True)
    hx, leaves = None, []
    if with_state:
        hx = (torch.randn(*lead, H, requires_grad=True), torch.randn(*lead, H, requires_grad=True))
        leaves = list(hx)
    rh, rc = ref(x, hx)
    h, c = lk(x, hx)
    assert h.shape == rh.shape and c.shape == rc.shape
    close(h, rh, "h")
    close(c, rc, "c")
    w = [torch.randn_like(rh), torch.randn_like(rc)]
    names = [n for n, _ in ref.named_parameters()]
    g_ref = torch.autograd.grad(weighted_loss([rh, rc], w), [x, *leaves, *ref.parameters()])
    lk_params = dict(lk.named_parameters())
    g_lk = torch.autograd.grad(weighted_loss([h, c], w), [x, *leaves, *(lk_params[n] for n in names)])
    for name, a, e in zip(["input", "h", "c"][: 1 + len(leaves)] + names, g_lk, g_ref):
        close(a, e, f"grad of {name}")
    # And the state_dict loads back into torch.
    ref2 = nn.LSTMCell(I, H, bias=bias)
    ref2.load_state_dict(lk.state_dict(), strict=True)


# ---------------------------------------------------------------------------------------------- forget_bias
@pytest.mark.parametrize("backend", LSTM_BACKENDS)
@pytest.mark.parametrize("proj_size", [0, P])
def test_forget_bias_sets_forget_slice(backend, proj_size):
    """forget_bias=1.0: forget-gate slice (rows H:2H in the order i, f, g, o) of bias_ih is 1, of
    bias_hh is 0; the other slices keep torch's U(-1/sqrt(H), 1/sqrt(H)) initialisation."""
    lk = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=proj_size, forget_bias=1.0, backend=backend)
    sd = lk.state_dict()
    names = [k for k in sd if k.startswith("bias_ih")]
    assert len(names) == 4
    bound = 1 / H**0.5
    for name in names:
        b_ih, b_hh = sd[name], sd[name.replace("bias_ih", "bias_hh")]
        assert b_ih.shape == (4 * H,)
        assert torch.all(b_ih[H : 2 * H] == 1.0), f"{name} forget slice is not 1"
        assert torch.all(b_hh[H : 2 * H] == 0.0), f"bias_hh forget slice of {name} is not 0"
        for other in (b_ih, b_hh):
            rest = torch.cat([other[:H], other[2 * H :]])
            assert rest.abs().max() <= bound and rest.abs().max() > 0, "other gate biases must keep torch's init"


def test_forget_bias_cell():
    cell = lstmkit.LSTMCell(I, H, forget_bias=1.0)
    assert torch.all(cell.bias_ih[H : 2 * H] == 1.0)
    assert torch.all(cell.bias_hh[H : 2 * H] == 0.0)


def test_forget_bias_none_keeps_torch_init():
    torch.manual_seed(7)
    ref = nn.LSTM(I, H)
    torch.manual_seed(7)
    lk = lstmkit.LSTM(I, H, forget_bias=None)
    close(lk.bias_ih_l0, ref.bias_ih_l0, "bias_ih_l0")
    close(lk.bias_hh_l0, ref.bias_hh_l0, "bias_hh_l0")
