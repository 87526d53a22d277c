"""torch.autograd.gradcheck in float64 on the reference backend: analytic gradients (autograd through the
readable loop) against finite differences, with respect to the input, the initial state and every
parameter. Tiny sizes (B=2, T=3, I=2, H=3) keep each check well under a second."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

import lstmkit

DT = torch.float64
B, T, I, H = 2, 3, 2, 3

LSTM_VARIANTS = ["standard", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]


def check(module, x, state, lengths=None):
    """gradcheck of everything the module returns w.r.t. x, the state tensors and all parameters."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    x = x.detach().clone().requires_grad_(True)
    state = [s.detach().clone().requires_grad_(True) for s in state]
    is_lstm = isinstance(module, lstmkit.LSTM)

    def fn(x, *rest):
        st, ps = rest[: len(state)], rest[len(state) :]
        hx = (tuple(st) if is_lstm else st[0]) if st else None
        kwargs = {} if lengths is None else {"lengths": lengths}
        out, fin = functional_call(module, dict(zip(names, ps)), (x, hx), kwargs)
        return (out, *fin) if is_lstm else (out, fin)

    # Sanity: the functional call really uses the passed parameters (else gradcheck would be vacuous).
    outs = fn(x, *state, *params)
    grads = torch.autograd.grad(sum(o.sum() for o in outs), params, allow_unused=True)
    assert all(g is not None for g in grads), [n for n, g in zip(names, grads) if g is None]
    assert torch.autograd.gradcheck(fn, (x, *state, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def lstm_data(D=1, L=1, out_size=H):
    x = torch.randn(T, B, I, dtype=DT)
    return x, [torch.randn(L * D, B, out_size, dtype=DT), torch.randn(L * D, B, H, dtype=DT)]


@pytest.mark.parametrize("variant", LSTM_VARIANTS)
def test_gradcheck_variant(variant):
    layer = lstmkit.LSTM(I, H, variant=variant, backend="reference", dtype=DT)
    check(layer, *lstm_data())


@pytest.mark.parametrize("variant", ["standard", "peephole", "cifg"])
def test_gradcheck_layer_norm(variant):
    layer = lstmkit.LSTM(I, H, variant=variant, layer_norm=True, backend="reference", dtype=DT)
    with torch.no_grad():  # move LN gains/shifts off their 1/0 init so their gradients are exercised generically
        for n, p in layer.named_parameters():
            if n.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    check(layer, *lstm_data())


def test_gradcheck_projection():
    layer = lstmkit.LSTM(I, H, proj_size=2, backend="reference", dtype=DT)
    check(layer, *lstm_data(out_size=2))


def test_gradcheck_zero_initial_state():
    layer = lstmkit.LSTM(I, H, backend="reference", dtype=DT)
    check(layer, torch.randn(T, B, I, dtype=DT), [])


@pytest.mark.parametrize("variant", ["standard", "peephole"])
def test_gradcheck_bidirectional_lengths(variant):
    layer = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, variant=variant, backend="reference", dtype=DT)
    check(layer, *lstm_data(D=2, L=2), lengths=torch.tensor([2, 3]))


def test_gradcheck_bidirectional_lengths_projection_batch_first():
    layer = lstmkit.LSTM(I, H, bidirectional=True, proj_size=2, batch_first=True, backend="reference", dtype=DT)
    x, state = lstm_data(D=2, out_size=2)
    check(layer, x.transpose(0, 1), state, lengths=torch.tensor([3, 1]))


@pytest.mark.parametrize("kind", ["gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("lengths", [None, [3, 2]])
def test_gradcheck_gru_rnn(kind, lengths):
    if kind == "gru":
        layer = lstmkit.GRU(I, H, bidirectional=True, backend="reference", dtype=DT)
    else:
        layer = lstmkit.RNN(I, H, nonlinearity=kind[4:], bidirectional=True, backend="reference", dtype=DT)
    x = torch.randn(T, B, I, dtype=DT)
    h0 = torch.randn(2, B, H, dtype=DT)
    check(layer, x, [h0], lengths=None if lengths is None else torch.tensor(lengths))


@pytest.mark.parametrize("variant", ["standard", "fgr"])
def test_gradcheck_cell(variant):
    cell = lstmkit.LSTMCell(I, H, variant=variant, dtype=DT)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    x = torch.randn(B, I, dtype=DT, requires_grad=True)

    def fn(x, *ps):
        return functional_call(cell, dict(zip(names, ps)), (x,))[:2]  # (h, c)

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)
