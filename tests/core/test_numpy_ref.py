"""The NumPy reference LSTM against torch (forward, autograd, Adam) and against finite differences."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.core import numpy_ref as nr

SHAPES = [  # (T, B, I, H)
    (1, 1, 1, 5),
    (1, 3, 4, 5),
    (7, 1, 4, 5),
    (7, 3, 1, 5),
    (7, 3, 4, 5),
]


def assert_close(actual: np.ndarray, expected, tol: float) -> None:
    """max |actual - expected| <= tol * max(1, max |expected|): relative for large values, absolute near 0."""
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert actual.shape == expected.shape
    err = np.max(np.abs(actual - expected))
    assert err <= tol * max(1.0, np.max(np.abs(expected))), f"max abs error {err:.3e}"


def torch_lstm(layers: list[nr.LSTMParams]) -> torch.nn.LSTM:
    """A float64 torch.nn.LSTM holding copies of ``layers``' weights."""
    I, H = layers[0].w_ih.shape[1], layers[0].hidden_size
    m = torch.nn.LSTM(I, H, num_layers=len(layers), dtype=torch.float64)
    state = {}
    for n, p in enumerate(layers):
        state.update({k: torch.from_numpy(v.copy()) for k, v in p.to_state_dict(n).items()})
    m.load_state_dict(state)
    return m


def problem(T, B, I, H, L=1, seed=0):
    """Random parameters, input, initial state and upstream gradients (float64)."""
    rng = np.random.default_rng(seed)
    layers = [nr.init_params(I if k == 0 else H, H, rng) for k in range(L)]
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((L, B, H)), rng.standard_normal((L, B, H))
    dh_all = rng.standard_normal((T, B, H))
    dh_n, dc_n = rng.standard_normal((L, B, H)), rng.standard_normal((L, B, H))
    return layers, x, h0, c0, (dh_all, dh_n, dc_n)


def test_module_does_not_import_torch():
    tree = ast.parse(Path(nr.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.split(".")[0] == "torch" for name in imported), imported


def test_init_params_shapes_and_range():
    p = nr.init_params(3, 5, np.random.default_rng(1))
    assert (p.w_ih.shape, p.w_hh.shape, p.b_ih.shape, p.b_hh.shape) == ((20, 3), (20, 5), (20,), (20,))
    bound = 1 / np.sqrt(5)
    for a in (p.w_ih, p.w_hh, p.b_ih, p.b_hh):
        assert a.dtype == np.float64 and np.all(np.abs(a) <= bound)
    assert nr.init_params(3, 5, 0, dtype=np.float32).w_ih.dtype == np.float32


def test_sigmoid_is_stable_and_exact():
    a = np.array([-1000.0, -30.0, -1.0, 0.0, 2.5, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = nr.sigmoid(a)
    np.testing.assert_allclose(s, torch.sigmoid(torch.from_numpy(a)).numpy(), rtol=1e-15, atol=0)


@pytest.mark.parametrize("T,B,I,H", SHAPES)
def test_forward_matches_torch(T, B, I, H):
    (p,), x, h0, c0, _ = problem(T, B, I, H)
    hs, (h_n, c_n), _ = nr.forward(p, x, h0[0], c0[0])
    with torch.no_grad():
        out, (th, tc) = torch_lstm([p])(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    assert_close(hs, out, 1e-13)
    assert_close(h_n, th[0], 1e-13)
    assert_close(c_n, tc[0], 1e-13)


def test_forward_zero_initial_state_is_the_default():
    (p,), x, h0, c0, _ = problem(4, 2, 3, 5)
    hs, (h_n, c_n), _ = nr.forward(p, x)
    with torch.no_grad():
        out, (th, tc) = torch_lstm([p])(torch.from_numpy(x))
    assert_close(hs, out, 1e-13)
    assert_close(c_n, tc[0], 1e-13)


def test_params_round_trip_through_a_torch_state_dict():
    m = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    p1 = nr.LSTMParams.from_state_dict(m.state_dict(), layer=1)
    np.testing.assert_array_equal(p1.w_hh, m.weight_hh_l1.detach().numpy())
    p1.w_hh += 1.0  # a copy: must not write into the module
    assert not np.array_equal(p1.w_hh, m.weight_hh_l1.detach().numpy())


def test_forward_rejects_batchless_input():
    with pytest.raises(ValueError, match=r"\(T, B, I\)"):
        nr.forward(nr.init_params(2, 3, 0), np.zeros((5, 2)))


def torch_grads(layers, x, h0, c0, ups):
    """Autograd gradients of sum(hs*dh_all) + sum(h_n*dh_n) + sum(c_n*dc_n)."""
    m = torch_lstm(layers)
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (h_n, c_n) = m(tx, (th0, tc0))
    dh_all, dh_n, dc_n = (torch.from_numpy(u) for u in ups)
    ((out * dh_all).sum() + (h_n * dh_n).sum() + (c_n * dc_n).sum()).backward()
    return m, tx.grad, th0.grad, tc0.grad


@pytest.mark.parametrize("T,B,I,H", SHAPES)
def test_backward_matches_torch_autograd(T, B, I, H):
    (p,), x, h0, c0, ups = problem(T, B, I, H, seed=T * 100 + B * 10 + I)
    _, _, cache = nr.forward(p, x, h0[0], c0[0])
    g = nr.backward(p, cache, ups[0], ups[1][0], ups[2][0])
    m, gx, gh0, gc0 = torch_grads([p], x, h0, c0, ups)
    assert_close(g.params.w_ih, m.weight_ih_l0.grad, 1e-10)
    assert_close(g.params.w_hh, m.weight_hh_l0.grad, 1e-10)
    assert_close(g.params.b_ih, m.bias_ih_l0.grad, 1e-10)
    assert_close(g.params.b_hh, m.bias_hh_l0.grad, 1e-10)
    assert_close(g.x, gx, 1e-10)
    assert_close(g.h0, gh0[0], 1e-10)
    assert_close(g.c0, gc0[0], 1e-10)


def test_backward_without_final_state_gradients():
    (p,), x, h0, c0, (dh_all, _, _) = problem(5, 2, 3, 5)
    _, _, cache = nr.forward(p, x, h0[0], c0[0])
    g = nr.backward(p, cache, dh_all)
    zeros = np.zeros_like(h0)
    m, gx, gh0, gc0 = torch_grads([p], x, h0, c0, (dh_all, zeros, zeros))
    assert_close(g.params.w_hh, m.weight_hh_l0.grad, 1e-10)
    assert_close(g.x, gx, 1e-10)
    assert_close(g.c0, gc0[0], 1e-10)


def test_backward_matches_finite_differences():
    """An oracle independent of torch: central differences of the same scalar loss."""
    (p,), x, h0, c0, (dh_all, dh_n, dc_n) = problem(6, 2, 3, 4, seed=7)
    h0, c0, dh_n, dc_n = h0[0], c0[0], dh_n[0], dc_n[0]

    def loss():
        hs, (h, c), _ = nr.forward(p, x, h0, c0)
        return np.sum(hs * dh_all) + np.sum(h * dh_n) + np.sum(c * dc_n)

    _, _, cache = nr.forward(p, x, h0, c0)
    g = nr.backward(p, cache, dh_all, dh_n, dc_n)
    targets = [(p.w_ih, g.params.w_ih), (p.w_hh, g.params.w_hh), (p.b_ih, g.params.b_ih),
               (p.b_hh, g.params.b_hh), (x, g.x), (h0, g.h0), (c0, g.c0)]  # fmt: skip
    rng, eps = np.random.default_rng(3), 1e-6
    for arr, grad in targets:
        for _ in range(4):
            idx = tuple(rng.integers(0, n) for n in arr.shape)
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - grad[idx]) <= 1e-7 * max(1.0, abs(numeric)), (idx, numeric, grad[idx])


def test_stacked_forward_and_backward_match_torch_two_layers():
    layers, x, h0, c0, ups = problem(6, 3, 4, 5, L=2, seed=11)
    hs, (h_n, c_n), caches = nr.stacked_forward(layers, x, h0, c0)
    grads = nr.stacked_backward(layers, caches, *ups)
    m, gx, gh0, gc0 = torch_grads(layers, x, h0, c0, ups)
    with torch.no_grad():
        out, (th, tc) = m(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    assert_close(hs, out, 1e-13)
    assert_close(h_n, th, 1e-13)
    assert_close(c_n, tc, 1e-13)
    for k, g in enumerate(grads):
        assert_close(g.params.w_ih, getattr(m, f"weight_ih_l{k}").grad, 1e-10)
        assert_close(g.params.w_hh, getattr(m, f"weight_hh_l{k}").grad, 1e-10)
        assert_close(g.params.b_ih, getattr(m, f"bias_ih_l{k}").grad, 1e-10)
        assert_close(g.params.b_hh, getattr(m, f"bias_hh_l{k}").grad, 1e-10)
    assert_close(grads[0].x, gx, 1e-10)
    assert_close(np.stack([g.h0 for g in grads]), gh0, 1e-10)
    assert_close(np.stack([g.c0 for g in grads]), gc0, 1e-10)


def test_linear_and_mse_match_torch():
    rng = np.random.default_rng(5)
    head = nr.Linear(rng.standard_normal((2, 4)), rng.standard_normal(2))
    h, target = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 2))
    loss, dy = nr.mse_loss_and_grad(head(h), target)
    dhead, dh = head.backward(h, dy)
    tw, tb, th = (torch.tensor(a, requires_grad=True) for a in (head.w, head.b, h))
    tloss = torch.nn.functional.mse_loss(torch.nn.functional.linear(th, tw, tb), torch.from_numpy(target))
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-14
    assert_close(dhead.w, tw.grad, 1e-12)
    assert_close(dhead.b, tb.grad, 1e-12)
    assert_close(dh, th.grad, 1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}])
def test_adam_matches_torch(kwargs):
    rng = np.random.default_rng(9)
    params = [nr.init_params(3, 4, rng), nr.Linear(rng.standard_normal((2, 4)), rng.standard_normal(2))]
    arrays = nr._arrays(params)
    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
    opt, topt = nr.Adam(**kwargs), torch.optim.Adam(tparams, **kwargs)
    for _ in range(6):
        grads = [rng.standard_normal(a.shape) * rng.choice([1e-3, 1.0, 1e3]) for a in arrays]
        opt.step(params, grads)
        for tp, gr in zip(tparams, grads):
            tp.grad = torch.from_numpy(gr.copy())
        topt.step()
    assert opt.t == 6
    for a, tp in zip(nr._arrays(params), tparams):
        assert_close(a, tp, 1e-12)


def test_sine_demo_learns():
    losses = nr.train_sine_demo(steps=150)
    assert len(losses) == 150 and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:10])
