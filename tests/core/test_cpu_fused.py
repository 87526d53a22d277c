"""The ``cpu_fused`` backend (C++ time loop) against the reference loop: values and every gradient.

Same algorithm, so the tolerances are those of rounding: float64 1e-10 and float32 1e-5, relative to each
tensor's largest entry. Skipped as a whole where the extension cannot be built (no compiler).
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.func import functional_call

import lstmkit
from lstmkit.core.backends import cpu_fused

VARIANTS = ["standard", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.fixture(scope="module", autouse=True)
def _extension():
    if cpu_fused.extension() is None:
        pytest.skip(f"cpu_fused unavailable: {cpu_fused.build_error()}")


def close(actual, expected, dtype, what):
    scale = expected.abs().max().item() if expected.numel() else 1.0
    tol = RTOL[dtype] * max(scale, 1e-3)
    torch.testing.assert_close(
        actual, expected, rtol=RTOL[dtype], atol=tol, msg=lambda m: f"{what}: {m}"
    )


@contextlib.contextmanager
def intra_op_threads(n):
    """torch's intra-op threads set to ``n`` inside the block (the suite runs with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pair(variant, dtype, I, H, L=1, **kwargs):
    """A reference layer and a cpu_fused layer with the same (randomised, larger than default) weights."""
    ref = lstmkit.LSTM(
        I, H, L, variant=variant, backend="reference", dtype=dtype, **kwargs
    )
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(
                -0.8, 0.8
            )  # gates away from 1/2, so a wrong peephole or sign shows
    fused = lstmkit.LSTM(
        I, H, L, variant=variant, backend="cpu_fused", dtype=dtype, **kwargs
    )
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def run_both(ref, fused, x, hx=None, lengths=None, dtype=torch.float64, seed=None):
    """Outputs and gradients (x, h0, c0, every parameter) of both layers under one random upstream gradient."""
    results = []
    weights = None
    for layer in (ref, fused):
        xi = x.detach().clone().requires_grad_(True)
        hxi = (
            None
            if hx is None
            else tuple(s.detach().clone().requires_grad_(True) for s in hx)
        )
        if seed is not None:
            torch.manual_seed(seed)
        out, (h_n, c_n) = layer(xi, hxi, lengths=lengths)
        if weights is None:
            g = torch.Generator().manual_seed(1)
            weights = [
                torch.randn(t.shape, generator=g, dtype=dtype) for t in (out, h_n, c_n)
            ]
        loss = sum((t * w).sum() for t, w in zip((out, h_n, c_n), weights))
        leaves = [xi, *(hxi or ()), *layer.parameters()]
        grads = torch.autograd.grad(loss, leaves)
        results.append([out, h_n, c_n, *grads])
    names = (
        ["output", "h_n", "c_n", "x"]
        + (["h0", "c0"] if hx is not None else [])
        + [n for n, _ in ref.named_parameters()]
    )
    for name, a, e in zip(names, results[1], results[0]):
        close(a, e, dtype, name)


def state(L, D, B, H, dtype):
    return torch.randn(L * D, B, H, dtype=dtype), torch.randn(L * D, B, H, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_one_layer_matches_reference(variant, dtype):
    ref, fused = pair(variant, dtype, I=3, H=7)
    x = torch.randn(6, 4, 3, dtype=dtype)
    run_both(ref, fused, x, state(1, 1, 4, 7, dtype), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_bidirectional_two_layers_with_lengths_matches_reference(variant, dtype):
    ref, fused = pair(variant, dtype, I=2, H=5, L=2, bidirectional=True)
    x = torch.randn(5, 3, 2, dtype=dtype)
    lengths = torch.tensor(
        [5, 1, 3]
    )  # a length-1 sequence and one shorter than the batch
    run_both(ref, fused, x, state(2, 2, 3, 5, dtype), lengths, dtype=dtype)


FROZEN = {
    "none": (),
    "w_hh": ("weight_hh_l0",),
    "w_ih": ("weight_ih_l0",),
    "biases": ("bias_ih_l0", "bias_hh_l0"),
    "w_fgr": ("weight_fgr_l0",),
    "w_hh+w_fgr": ("weight_hh_l0", "weight_fgr_l0"),
    "all but w_fgr": ("weight_hh_l0", "weight_ih_l0", "bias_ih_l0", "bias_hh_l0"),
}


@pytest.mark.parametrize("I", [3, 8, 20])
@pytest.mark.parametrize(
    ("variant", "frozen"),
    [("fgr", f) for f in FROZEN] + [("standard", f) for f in FROZEN if "fgr" not in f],
)
def test_weight_gradients_with_any_weights_frozen_match_reference(variant, frozen, I):
    """A layer's weight gradients come from one product over [h_{t-1} | x | 1 | [i;f;o]_{t-1}] whose
    columns are those of the wanted gradients (a frozen weight drops its own; x and the 1 only where they
    save vectors, else their own product and a column sum): every wanted gradient, and the input's,
    against the reference. float64, H = 20 (3 vectors of 8): I = 3 joins, with the 1; I = 8 does not; I =
    20 joins, without the 1. B = 40, T = 30: the sum over T·B = 1200 rows splits between two threads."""
    ref, fused = pair(variant, torch.float64, I=I, H=20)
    x = torch.randn(30, 40, I, dtype=torch.float64)
    grads = []
    for layer in (ref, fused):
        params = dict(layer.named_parameters())
        for name in FROZEN[frozen]:
            params.pop(name).requires_grad_(False)
        xi = x.clone().requires_grad_(True)
        with intra_op_threads(2):
            out, (h_n, _c_n) = layer(xi)
            g = torch.Generator().manual_seed(3)
            loss = (out * torch.randn(out.shape, generator=g, dtype=torch.float64)).sum() + h_n.sum()
            got = torch.autograd.grad(loss, [xi, *params.values()])
        grads.append(dict(zip(["x", *params], got)))
    assert set(grads[1]) == set(grads[0])
    for name, want in grads[0].items():
        close(grads[1][name], want, torch.float64, name)


def _fgr_call_args(T=5, B=3, H=4, I=2):
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    return {
        "xg": r(T, B, 4 * H), "h0": r(B, H), "c0": r(B, H), "w_hh": r(4 * H, H), "w_peep": r(3, H),
        "w_fgr": r(3 * H, 3 * H), "x": r(T, B, I), "w_ih": r(4 * H, I),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "change", "message"),
    [
        ("forward", {"w_peep": torch.empty(0)}, "the peephole weights must be"),
        ("forward", {"w_fgr": torch.empty(0)}, "W_fgr must be"),
        ("forward", {"h0": torch.zeros(2, 4)}, "h0 must be"),
        ("forward", {"c0": torch.zeros(3, 4, dtype=torch.float64)}, "c0 must be"),
        ("forward", {"xg": torch.zeros(5, 3, 15)}, "xg must be"),
        ("forward", {"w_hh": torch.zeros(12, 4)}, "W_hh must be"),
        ("forward_input", {"w_ih": torch.zeros(16, 3)}, "W_ih must be"),
        ("forward_input", {"w_fgr": torch.zeros(4, 4)}, "W_fgr must be"),
        ("backward", {"c_all": torch.zeros(5, 3, 4)}, "the saved cell states must be"),
        ("backward", {"gates": torch.zeros(5, 3, 12)}, "FGR's gate history"),
    ],
)
def test_the_kernels_refuse_tensors_of_the_wrong_shape(entry, change, message):
    """The extension reads raw pointers: a tensor of the wrong shape or dtype passed to any entry point
    is a RuntimeError naming it (a missing peephole matrix for FGR used to crash the process)."""
    ext = cpu_fused.extension()
    a = _fgr_call_args()
    vid = cpu_fused._VARIANT_IDS["fgr"]
    fwd = ext.forward(a["xg"], a["h0"], a["c0"], a["w_hh"], a["w_peep"], a["w_fgr"], None, vid, [], 1e-5, True)
    out, _h_n, _c_n, acts, c_all, gates = fwd[:6]
    saved = {"acts": acts, "c_all": c_all, "out": out, "gates": gates}
    a.update(saved)
    a.update(change)
    with pytest.raises(RuntimeError, match=message):
        if entry == "forward":
            ext.forward(a["xg"], a["h0"], a["c0"], a["w_hh"], a["w_peep"], a["w_fgr"], None, vid, [], 1e-5, True)
        elif entry == "forward_input":
            ext.forward_input(a["x"], a["w_ih"], None, a["h0"], a["c0"], a["w_hh"], a["w_peep"], a["w_fgr"], None, vid)
        else:
            z = torch.zeros_like(a["h0"])
            ext.backward(
                torch.ones_like(out), z, z, a["acts"], a["c_all"], a["w_hh"], a["w_peep"], a["w_fgr"], None, vid,
                [], [], a["h0"], a["out"], a["gates"], True, True, a["x"].reshape(15, 2), a["w_ih"], True, True, True,
            )  # fmt: skip


@pytest.mark.parametrize("kind", ["lstm", "lstm+layer_norm", "gru", "rnn"])
def test_double_backward_is_refused_with_a_clear_error(kind):
    """The backward is raw kernels, differentiable once: asking for a graph of the gradient (a gradient
    penalty, double backward) raises instead of returning second derivatives of zero."""
    kw = {"backend": "cpu_fused", "dtype": torch.float64}
    layer = (
        lstmkit.GRU(3, 4, 2, **kw) if kind == "gru" else lstmkit.RNN(3, 4, 2, **kw) if kind == "rnn"
        else lstmkit.LSTM(3, 4, 2, variant="peephole", layer_norm=kind.endswith("layer_norm"), **kw)
    )  # fmt: skip
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot be differentiated again"):
        torch.autograd.grad(layer(x)[0].sum(), x, create_graph=True)


@pytest.mark.parametrize("H", [16, 33, 50, 64, 100])
@pytest.mark.parametrize("variant", VARIANTS)
def test_float32_pointwise_vectors_and_tails_match_reference(variant, H):
    """float32 runs the pointwise passes in vectors of 16 units where the CPU has AVX-512 (1/y by rcp14
    and a Newton step; the forward 4 vectors at a time, then a row's last units as the fewest vectors that
    cover them, the last one masked; the backward one vector at a time): one whole vector (H = 16), three
    with a one-unit tail (33), four with a two-unit tail (the seed's 50), one whole group of four (64) and
    a group plus three with a four-unit tail (100), with a shorter sequence in the batch, against the
    reference's float32."""
    ref, fused = pair(variant, torch.float32, I=3, H=H)
    x = torch.randn(4, 3, 3)
    run_both(ref, fused, x, state(1, 1, 3, H, torch.float32), torch.tensor([4, 2, 3]), dtype=torch.float32)


@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_of_one_and_sizes_that_exercise_every_kernel_tile(variant):
    """B = 1 (the single-row GEMM path), then B = 29, H = 37 (12-row tiles, 8/4/2/1-row remainders,
    partial vector tiles; G = 4·37 is no multiple of the vector width) with I = 20 (the packed input
    projection and its gradient)."""
    for B, I, H in ((1, 4, 6), (29, 20, 37)):
        ref, fused = pair(variant, torch.float64, I=I, H=H)
        run_both(
            ref,
            fused,
            torch.randn(4, B, I, dtype=torch.float64),
            state(1, 1, B, H, torch.float64),
        )


@pytest.mark.parametrize(
    "variant, dtype, H", [("peephole", torch.float64, 730), ("fgr", torch.float64, 730), ("nig", torch.float32, 1190)]
)
def test_large_recurrent_weights_go_through_blas_and_match(variant, dtype, H):
    """Past 16 MB of W_hh (or W_fgr) the per-step product calls the BLAS instead of the packed kernel."""
    ref, fused = pair(variant, dtype, I=3, H=H)
    run_both(ref, fused, torch.randn(2, 2, 3, dtype=dtype), state(1, 1, 2, H, dtype), dtype=dtype)


def test_two_threads_split_rows_and_match():
    with intra_op_threads(2):
        ref, fused = pair("peephole", torch.float64, I=24, H=64)
        run_both(
            ref,
            fused,
            torch.randn(3, 300, 24, dtype=torch.float64),
            state(1, 1, 300, 64, torch.float64),
        )


def test_dropout_between_layers_in_train_mode_matches_with_the_same_seed():
    ref, fused = pair("cifg", torch.float64, I=3, H=6, L=3, dropout=0.5)
    ref.train(), fused.train()
    run_both(ref, fused, torch.randn(5, 4, 3, dtype=torch.float64), seed=123)


def test_batch_first_unbatched_and_no_grad():
    ref, fused = pair("nog", torch.float32, I=3, H=5, batch_first=True)
    x = torch.randn(2, 7, 3)
    run_both(ref, fused, x, dtype=torch.float32)
    with torch.no_grad():
        for a, e in zip(fused(x[0])[1], ref(x[0])[1]):  # unbatched (T, I)
            close(a, e, torch.float32, "unbatched state")
        close(fused(x)[0], ref(x)[0], torch.float32, "no_grad output")


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_float64(variant):
    """Finite differences against the kernel's hand-written backward (x, h0, c0, every parameter)."""
    dtype = torch.float64
    layer = lstmkit.LSTM(2, 3, variant=variant, backend="cpu_fused", dtype=dtype)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    x = torch.randn(3, 2, 2, dtype=dtype, requires_grad=True)
    h0, c0 = (torch.randn(1, 2, 3, dtype=dtype, requires_grad=True) for _ in range(2))
    lengths = torch.tensor([3, 2])

    def fn(x, h0, c0, *ps):
        out, (h, c) = functional_call(
            layer, dict(zip(names, ps)), (x, (h0, c0)), {"lengths": lengths}
        )
        return out, h, c

    assert torch.autograd.gradcheck(
        fn, (x, h0, c0, *params), eps=1e-6, atol=1e-7, rtol=1e-5
    )


# ------------------------------------------------------------------------------------------ selection
def test_auto_resolves_variants_on_cpu_to_cpu_fused_and_the_rest_elsewhere():
    assert lstmkit.LSTM(3, 4, variant="peephole").resolved_backend() == "cpu_fused"
    assert (
        lstmkit.LSTM(3, 4, variant="fgr", dtype=torch.float64).resolved_backend()
        == "cpu_fused"
    )
    # the standard cell in float32 too (measured faster than torch's for forward+backward), not in float64
    assert lstmkit.LSTM(3, 4).resolved_backend() == "cpu_fused"
    assert lstmkit.LSTM(3, 4, dtype=torch.float64).resolved_backend() == "native"
    assert lstmkit.GRU(3, 4).resolved_backend() == "cpu_fused"  # torch's GRU is 1.1-27x its LSTM's time on CPU
    assert lstmkit.GRU(3, 4, dtype=torch.float64).resolved_backend() == "cpu_fused"
    assert lstmkit.RNN(3, 4).resolved_backend() == "cpu_fused"
    assert lstmkit.LSTM(3, 4, variant="cifg", layer_norm=True).resolved_backend() == "cpu_fused"
    assert lstmkit.LSTM(3, 4, layer_norm=True).resolved_backend() == "cpu_fused"  # native has no layer norm
    assert (
        lstmkit.LSTM(3, 4, proj_size=2, variant="nig").resolved_backend() == "reference"
    )
    half = lstmkit.LSTM(3, 4, variant="peephole", dtype=torch.bfloat16)
    assert half.resolved_backend() == "reference"


def test_explicit_cpu_fused_refuses_proj_size_and_says_why():
    with pytest.raises(ValueError, match=r"backend='cpu_fused' cannot run.*proj_size=2"):
        lstmkit.LSTM(3, 4, proj_size=2, variant="peephole", backend="cpu_fused")


def test_a_failed_build_is_reported_once_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(cpu_fused, "_ext", None)
    monkeypatch.setattr(cpu_fused, "_error", None)
    calls = []

    def broken_build():
        calls.append(1)
        raise RuntimeError("Error building extension 'x'\nc++: error: no such compiler")

    monkeypatch.setattr(cpu_fused, "_build", broken_build)
    layer = lstmkit.LSTM(3, 4, variant="peephole")
    with pytest.warns(UserWarning, match="could not be built"):
        backend = layer.resolved_backend()
    assert backend == "reference"
    reason = cpu_fused.CPUFusedBackend().unsupported(
        layer.spec, torch.device("cpu"), torch.float32
    )
    assert (
        reason == "the C++ extension could not be built: c++: error: no such compiler"
    )
    assert lstmkit.LSTM(3, 4, variant="nig").resolved_backend() == "reference"
    assert calls == [1]  # never retried


def test_lstmkit_no_cpp_disables_it(monkeypatch):
    monkeypatch.setattr(cpu_fused, "_ext", None)
    monkeypatch.setattr(cpu_fused, "_error", None)
    monkeypatch.setenv("LSTMKIT_NO_CPP", "1")
    assert lstmkit.LSTM(3, 4, variant="peephole").resolved_backend() == "reference"
    assert "LSTMKIT_NO_CPP" in cpu_fused.build_error()


def test_configuration_only_check_does_not_build(monkeypatch):
    monkeypatch.setattr(cpu_fused, "_ext", None)
    monkeypatch.setattr(cpu_fused, "_error", None)
    monkeypatch.setattr(
        cpu_fused, "_build", lambda: pytest.fail("built for a configuration-only check")
    )
    lstmkit.LSTM(
        3, 4, variant="peephole", backend="cpu_fused"
    )  # construction checks with device None


# ------------------------------------------------------------------------------------------ layer norm
@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_norm_matches_reference_in_float64(variant):
    ref, fused = pair(variant, torch.float64, I=3, H=6, L=2, bidirectional=True, layer_norm=True)
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    run_both(ref, fused, x, state(2, 2, 3, 6, torch.float64), torch.tensor([5, 1, 4]))


@pytest.mark.parametrize("variant", ["peephole", "noaf", "fgr"])
def test_layer_norm_in_float32_is_as_accurate_as_the_reference(variant):
    """Normalising over a few units divides by small standard deviations, so float32 gradients carry
    errors of ~1e-5 in either implementation; each is measured against the float64 result instead: the
    kernel must be within 1e-5 of it, or, where the reference loop's own float32 error is larger, within
    twice that."""
    ref64, _ = pair(variant, torch.float64, I=3, H=6, L=2, layer_norm=True)
    runs = [("ref64", ref64, torch.float64)]
    for name, backend in (("ref32", "reference"), ("fused32", "cpu_fused")):
        layer = lstmkit.LSTM(3, 6, 2, variant=variant, layer_norm=True, backend=backend)
        layer.load_state_dict(ref64.state_dict())
        runs.append((name, layer, torch.float32))
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    results = {}
    for name, layer, dtype in runs:
        xi = x.to(dtype).requires_grad_(True)
        out, (h, c) = layer(xi)
        w = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)
        grads = torch.autograd.grad((out * w).sum() + (h * h).sum() + c.sum(), [xi, *layer.parameters()])
        results[name] = [out, h, c, *grads]
    for k, truth in enumerate(results["ref64"]):
        scale = truth.abs().max().item()
        err = {n: (results[n][k].double() - truth).abs().max().item() / scale for n in ("ref32", "fused32")}
        assert err["fused32"] <= max(RTOL[torch.float32], 2 * err["ref32"]), (k, err)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_input_projection_over_many_rows_matches_reference(bias):
    """The extension's input layer norm (with and without the bias, I >= 8 and I < 8): rows whose width
    leaves vector tails (G = 52), and more rows (T·B = 300) than one chunk of its backward's sums."""
    ref, fused = pair("standard", torch.float64, I=10, H=13, L=2, bias=bias, layer_norm=True)
    x = torch.randn(30, 10, 10, dtype=torch.float64)
    run_both(ref, fused, x, state(2, 1, 10, 13, torch.float64))
    ref, fused = pair("peephole", torch.float64, I=3, H=13, L=1, bias=bias, layer_norm=True)
    run_both(ref, fused, torch.randn(30, 10, 3, dtype=torch.float64))


# ------------------------------------------------------------------------------------------ float32 activations
@pytest.mark.parametrize("scale", [1e-4, 1.0, 30.0])
def test_float32_activations_hold_over_the_range(scale):
    """The kernel's own exp/expm1-based sigmoid and tanh (1.5 ulp) against torch's, through a whole
    layer: pre-activations near 0 (tanh's relative accuracy there), of order 1, and saturated (±30·…).
    The truth is the float64 reference; the kernel must be as close to it as float32 rounding allows."""
    torch.manual_seed(0)
    ref64, _ = pair("peephole", torch.float64, I=4, H=21)
    with torch.no_grad():  # no biases: at scale 1e-4 every pre-activation is then near 0
        for name, p in ref64.named_parameters():
            if "bias" in name:
                p.zero_()
    fused = lstmkit.LSTM(4, 21, variant="peephole", backend="cpu_fused")
    fused.load_state_dict(ref64.state_dict())
    x = torch.randn(7, 5, 4, dtype=torch.float64) * scale
    with torch.no_grad():
        out64, (h64, c64) = ref64(x)
        out32, (h32, c32) = fused(x.float())
    for name, a, e in (("output", out32, out64), ("h_n", h32, h64), ("c_n", c32, c64)):
        close(a.double(), e, torch.float32, f"{name} at scale {scale}")


def test_layer_norm_without_grad_and_with_lengths_matches_reference():
    """Inference with layer norm runs on one step's scratch statistics (nothing saved): masked rows keep
    their state and every row's statistics are its own."""
    ref, fused = pair("cifg", torch.float32, I=3, H=11, L=2, layer_norm=True)
    x = torch.randn(6, 5, 3)
    lengths = torch.tensor([6, 1, 4, 6, 2])
    with torch.no_grad():
        got, (h, c) = fused(x, lengths=lengths)
        want, (h_r, c_r) = ref(x, lengths=lengths)
    for name, a, e in (("output", got, want), ("h_n", h, h_r), ("c_n", c, c_r)):
        close(a, e, torch.float32, name)


@pytest.mark.parametrize("variant", ["standard", "peephole", "cifg", "fgr"])
def test_batch_of_one_matches_reference(variant):
    """Batch 1 multiplies by W laid out in panels (panels_of); H = 37 leaves every block width
    (4, 2 and 1 vectors, partial) in 4H = 148 and FGR's 3H = 111, forward and backward."""
    ref, fused = pair(variant, torch.float64, I=5, H=37, L=2)
    x = torch.randn(9, 1, 5, dtype=torch.float64)
    run_both(ref, fused, x, state(2, 1, 1, 37, torch.float64))


@pytest.mark.parametrize("variant,layer_norm", [("peephole", False), ("fgr", False), ("cifg", True)])
def test_rows_split_between_threads_match_reference(variant, layer_norm):
    """With two threads each takes its rows of the batch through every step (B = 5: chunks of 3 and 2),
    forward and backward, with lengths; the result must not depend on the split."""
    ref, fused = pair(variant, torch.float64, I=4, H=40, L=1, layer_norm=layer_norm)
    x = torch.randn(60, 5, 4, dtype=torch.float64)  # B·T·G·H >= 2^20 for every variant here: it splits
    lengths = torch.tensor([60, 7, 33, 60, 1])
    with intra_op_threads(2):
        run_both(ref, fused, x, state(1, 1, 5, 40, torch.float64), lengths)


@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_product_matches_torch(threads):
    """``matmul_tn`` (a^T b summed over T·B) on a column slice of a wider matrix, as FGR's dW uses it;
    with two threads the sum over K is split between them (each packs its part of b) and added."""
    ext = cpu_fused.extension()
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(3000, 200, dtype=torch.float64, generator=g)
    b = torch.randn(3000, 150, dtype=torch.float64, generator=g)
    with intra_op_threads(threads):
        for a in (wide[:, :100], wide[:, 150:], wide):
            close(ext.matmul_tn(a, b), a.t() @ b, torch.float64, f"a {tuple(a.shape)}")


@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_product_on_column_ranges_matches_torch(threads):
    """``matmul_tn(a, b, cols)``: the column ranges of a (FGR's dA columns i, f and o, not g) stacked as
    the output's rows, from one packing of b; K = 3000 sums over 12 blocks of 256 rows (the last partial),
    split between two threads; ranges of 100 and 50 rows run in 10-row tiles, 37 in 12, 8, 4, 2 and 1;
    an empty range and K = 0 too."""
    ext = cpu_fused.extension()
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3000, 200, dtype=torch.float64, generator=g)
    b = torch.randn(3000, 150, dtype=torch.float64, generator=g)
    with intra_op_threads(threads):
        for cols in ([0, 100, 150, 200], [150, 200, 0, 37], [10, 10, 5, 60]):
            expected = torch.cat([a[:, s:e] for s, e in zip(cols[::2], cols[1::2])], 1).t() @ b
            close(ext.matmul_tn(a, b, cols), expected, torch.float64, f"cols {cols}")
        close(ext.matmul_tn(a[:0], b[:0], [0, 100]), torch.zeros(100, 150, dtype=torch.float64),
              torch.float64, "K = 0")  # fmt: skip
    with pytest.raises(RuntimeError, match="outside a's 200 columns"):
        ext.matmul_tn(a, b, [150, 201])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("K", [1, 3, 50])
def test_projection_with_bias_matches_torch(threads, K):
    """``matmul(x, w, True, bias)``, the input projection: the bias is added as the kernel stores its tiles
    (full tiles, and the partial one of N = 200 = 6 x 32 + 8); K = 1 is a univariate series, split
    between threads by its output size."""
    ext = cpu_fused.extension()
    g = torch.Generator().manual_seed(K)
    x = torch.randn(1601, K, dtype=torch.float64, generator=g)
    w = torch.randn(200, K, dtype=torch.float64, generator=g)
    bias = torch.randn(200, dtype=torch.float64, generator=g)
    with intra_op_threads(threads):
        close(ext.matmul(x, w, True, bias), torch.addmm(bias, x, w.t()), torch.float64, "with bias")
        close(ext.matmul(x, w, True, None), x @ w.t(), torch.float64, "without bias")
        close(ext.matmul(x[:1], w, True, bias), torch.addmm(bias, x[:1], w.t()), torch.float64, "one row")
        for m in (50, 1600):  # ranges that 10-row tiles divide and 12-row ones do not
            close(ext.matmul(x[:m], w, True, bias), torch.addmm(bias, x[:m], w.t()), torch.float64, f"{m} rows")


@pytest.mark.parametrize("N", [1, 2, 8, 15, 16, 50])
def test_weight_gradient_of_narrow_inputs_matches_torch(N):
    """W_ih's gradient a^T b for inputs of N features: b narrower than 16 columns is multiplied the
    other way round, (b^T a)^T (one column by the BLAS); the result is a contiguous (M, N) matrix."""
    g = torch.Generator().manual_seed(N)
    a = torch.randn(3000, 200, dtype=torch.float64, generator=g)
    b = torch.randn(3000, N, dtype=torch.float64, generator=g)
    out = cpu_fused.extension().matmul_tn(a, b)
    assert out.shape == (200, N) and out.is_contiguous()
    close(out, a.t() @ b, torch.float64, f"N = {N}")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("threads", [1, 2])
def test_inference_with_the_projection_in_the_loop_matches_reference(variant, threads):
    """Without gradients, from B = 16, the input projection runs inside the time loop (forward_input):
    output, h_n and c_n against the reference for a bidirectional 2-layer stack with lengths (batch rows
    split between two threads: B·T·G·H ≥ 2^20), 20 input features and one, with and without biases; and
    the kernel's entry itself at batch 1 (a row product per step) against the two-pass path."""
    with intra_op_threads(threads):
        for I, B, bias in ((20, 17, True), (1, 16, False)):
            ref, fused = pair(variant, torch.float64, I=I, H=40, L=2, bidirectional=True, bias=bias)
            # T = 30: noaf's unbounded cell state amplifies rounding differences (either path: 1e-9 at
            # T = 50, 5e-5 at T = 70 with these weights)
            x = torch.randn(30, B, I, dtype=torch.float64)
            lengths = torch.randint(1, 31, (B,))
            lengths[0] = 30
            hx = state(2, 2, B, 40, torch.float64)
            with torch.no_grad():
                expected, (h_e, c_e) = ref(x, hx, lengths=lengths)
                out, (h_n, c_n) = fused(x, hx, lengths=lengths)
            for name, a, e in (("output", out, expected), ("h_n", h_n, h_e), ("c_n", c_n, c_e)):
                close(a, e, torch.float64, f"I={I} B={B} bias={bias} {name}")
        ext, vid = cpu_fused.extension(), cpu_fused.variant_id(lstmkit.core.cells.VARIANTS[variant])
        G = 37 * len(lstmkit.core.cells.VARIANTS[variant].gates)
        g = torch.Generator().manual_seed(3)
        x = torch.randn(25, 1, 3, dtype=torch.float64, generator=g)
        w_ih = torch.randn(G, 3, dtype=torch.float64, generator=g)
        b = torch.randn(G, dtype=torch.float64, generator=g)
        w_hh = torch.randn(G, 37, dtype=torch.float64, generator=g) * 0.3
        h0, c0 = torch.randn(1, 37, dtype=torch.float64), torch.randn(1, 37, dtype=torch.float64)
        v = lstmkit.core.cells.VARIANTS[variant]
        wp = torch.randn(len(v.peepholes), 37, dtype=torch.float64) * 0.3 if v.peepholes else x.new_empty(0)
        wf = torch.randn(111, 111, dtype=torch.float64) * 0.1 if v.full_recurrence else x.new_empty(0)
        xg = (x.view(25, 3) @ w_ih.t() + b).view(25, 1, G)
        two = ext.forward(xg, h0, c0, w_hh, wp, wf, None, vid, [], 1e-5, False)
        one = ext.forward_input(x, w_ih, b, h0, c0, w_hh, wp, wf, None, vid)
        for name, a, e in zip(("output", "h_n", "c_n"), one[:3], two[:3]):
            close(a, e, torch.float64, f"batch 1 {name}")


@pytest.mark.parametrize("I", [1, 3])
def test_gradients_of_a_narrow_input_split_between_threads_match_reference(I):
    """W_ih's and the biases' gradients for a few input features fill the padding of h's columns in the
    weight-gradient product (layer_grads), its rows split between two threads (here K = T·B = 1600)."""
    ref, fused = pair("standard", torch.float64, I=I, H=50)
    with intra_op_threads(2):
        run_both(ref, fused, torch.randn(50, 32, I, dtype=torch.float64), state(1, 1, 32, 50, torch.float64))


# ------------------------------------------------------------------------------------------ GRU
def gru_pair(dtype, I, H, L=1, **kwargs):
    ref = lstmkit.GRU(I, H, L, backend="reference", dtype=dtype, **kwargs)
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-0.8, 0.8)
    fused = lstmkit.GRU(I, H, L, backend="cpu_fused", dtype=dtype, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def gru_both(ref, fused, x, h0=None, lengths=None, dtype=torch.float64, frozen=()):
    """Outputs and the gradients of x, h0 and every trainable parameter of both GRUs, compared."""
    results = []
    for layer in (ref, fused):
        params = dict(layer.named_parameters())
        for name in frozen:
            params.pop(name).requires_grad_(False)
        xi = x.detach().clone().requires_grad_(True)
        hi = None if h0 is None else h0.detach().clone().requires_grad_(True)
        out, h_n = layer(xi, hi, lengths=lengths)
        g = torch.Generator().manual_seed(1)
        loss = (out * torch.randn(out.shape, generator=g, dtype=dtype)).sum() + (
            h_n * torch.randn(h_n.shape, generator=g, dtype=dtype)
        ).sum()
        leaves = [xi, *([] if hi is None else [hi]), *params.values()]
        names = ["x", *([] if hi is None else ["h0"]), *params]
        results.append(dict(zip(["output", "h_n", *names], [out, h_n, *torch.autograd.grad(loss, leaves)])))
    assert set(results[1]) == set(results[0])
    for name, want in results[0].items():
        close(results[1][name], want, dtype, name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_gru_matches_reference(dtype):
    """The GRU's C++ time loop (torch's form, gates r, z, n) against the reference loop, values and every
    gradient: one layer; two bidirectional layers with lengths and h0 at the seed's H = 50 (two threads,
    rows split between them; float32 runs the pointwise passes in vectors, four at a time forward); a
    batch of one (the one-row product); H = 37 (no multiple of the vector width)."""
    torch.manual_seed(0)
    ref, fused = gru_pair(dtype, I=3, H=5)
    gru_both(ref, fused, torch.randn(6, 4, 3, dtype=dtype), dtype=dtype)
    ref, fused = gru_pair(dtype, I=3, H=50, L=2, bidirectional=True)
    with intra_op_threads(2):
        gru_both(
            ref, fused, torch.randn(20, 32, 3, dtype=dtype), torch.randn(4, 32, 50, dtype=dtype),
            torch.randint(1, 21, (32,)), dtype=dtype,
        )  # fmt: skip
    for B, H in ((1, 37), (29, 37)):
        ref, fused = gru_pair(dtype, I=2, H=H)
        gru_both(ref, fused, torch.randn(9, B, 2, dtype=dtype), torch.randn(1, B, H, dtype=dtype), dtype=dtype)
    ref, fused = gru_pair(dtype, I=2, H=6, L=2, bias=False, batch_first=True)
    gru_both(ref, fused, torch.randn(3, 7, 2, dtype=dtype), dtype=dtype)


def test_gru_without_grad_matches_reference():
    """Inference (no autograd node, nothing saved) with lengths, bidirectional."""
    ref, fused = gru_pair(torch.float32, I=3, H=20, L=2, bidirectional=True)
    x, lengths = torch.randn(12, 5, 3), torch.tensor([12, 3, 7, 1, 12])
    with torch.no_grad():
        for a, e, what in zip(fused(x, lengths=lengths), ref(x, lengths=lengths), ("output", "h_n")):
            close(a, e, torch.float32, what)


@pytest.mark.parametrize(
    "frozen", [("weight_hh_l0",), ("bias_hh_l0",), ("weight_ih_l0", "bias_ih_l0"), ("weight_hh_l0", "bias_hh_l0")]
)
def test_gru_gradients_with_weights_frozen_match_reference(frozen):
    """dW_hh and db_hh come from one product over [h_{t-1} | 1] (the 1 where it fits W_hh's padding, else a
    column sum); with either frozen, the other still matches, as do the input's (H = 16 and 20: the 1
    takes a vector of its own, then fits)."""
    for H in (16, 20):
        ref, fused = gru_pair(torch.float64, I=3, H=H)
        with intra_op_threads(2):
            gru_both(ref, fused, torch.randn(30, 40, 3, dtype=torch.float64), frozen=frozen)


def test_gru_kernels_refuse_tensors_of_the_wrong_shape():
    ext = cpu_fused.extension()
    xg, h0 = torch.randn(5, 3, 12), torch.randn(3, 4)
    with pytest.raises(RuntimeError, match="the GRU's W_hh must be"):
        ext.gru_forward(xg, h0, torch.randn(12, 5), torch.empty(0), None, False)
    with pytest.raises(RuntimeError, match="h0 must be"):
        ext.gru_forward(xg, torch.randn(2, 4), torch.randn(12, 4), torch.empty(0), None, False)
    with pytest.raises(RuntimeError, match="the GRU's b_hh must be"):
        ext.gru_forward(xg, h0, torch.randn(12, 4), torch.randn(8), None, False)


# ------------------------------------------------------------------------------------------ Elman RNN
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_rnn_matches_reference(nonlinearity, dtype):
    """The Elman RNN's C++ time loop against the reference loop, values and every gradient: one layer; two
    bidirectional layers with lengths and h0 at H = 50 (two threads); a batch of one; I = 20, H = 16 (W_ih's
    gradient in the joint product); no bias, batch-first."""
    torch.manual_seed(0)

    def pair(I, H, L=1, **kwargs):
        ref = lstmkit.RNN(I, H, L, nonlinearity=nonlinearity, backend="reference", dtype=dtype, **kwargs)
        fused = lstmkit.RNN(I, H, L, nonlinearity=nonlinearity, backend="cpu_fused", dtype=dtype, **kwargs)
        fused.load_state_dict(ref.state_dict())
        return ref, fused

    gru_both(*pair(3, 5), torch.randn(6, 4, 3, dtype=dtype), dtype=dtype)
    with intra_op_threads(2):
        gru_both(
            *pair(3, 50, 2, bidirectional=True), torch.randn(20, 32, 3, dtype=dtype),
            torch.randn(4, 32, 50, dtype=dtype), torch.randint(1, 21, (32,)), dtype=dtype,
        )  # fmt: skip
    gru_both(*pair(2, 37), torch.randn(9, 1, 2, dtype=dtype), torch.randn(1, 1, 37, dtype=dtype), dtype=dtype)
    gru_both(*pair(20, 16), torch.randn(5, 3, 20, dtype=dtype), dtype=dtype)
    gru_both(*pair(2, 6, 2, bias=False, batch_first=True), torch.randn(3, 7, 2, dtype=dtype), dtype=dtype)
    ref, fused = pair(3, 20, 2, bidirectional=True)
    x, lengths = torch.randn(12, 5, 3, dtype=dtype), torch.tensor([12, 3, 7, 1, 12])
    with torch.no_grad():
        for a, e, what in zip(fused(x, lengths=lengths), ref(x, lengths=lengths), ("output", "h_n")):
            close(a, e, dtype, f"no grad {what}")


@pytest.mark.parametrize("frozen", [("weight_hh_l0",), ("weight_ih_l0",), ("bias_ih_l0", "bias_hh_l0"), ("bias_hh_l0",)])
def test_rnn_gradients_with_weights_frozen_match_reference(frozen):
    """Its weight gradients from one product over [h_{t-1} | x | 1] (float64, H = 16: I = 3 joins h's
    vectors and the 1 with it; I = 8 keeps its own product and the biases a column sum), with any frozen."""
    for I in (3, 8):
        ref = lstmkit.RNN(I, 16, backend="reference", dtype=torch.float64)
        fused = lstmkit.RNN(I, 16, backend="cpu_fused", dtype=torch.float64)
        fused.load_state_dict(ref.state_dict())
        with intra_op_threads(2):
            gru_both(ref, fused, torch.randn(30, 40, I, dtype=torch.float64), frozen=frozen)


@pytest.mark.parametrize("mode", ["gru", "rnn_tanh", "rnn_relu"])
def test_gru_and_rnn_gradcheck_float64(mode):
    """Finite differences against the GRU's and the RNN's hand-written backward (x, h0, every parameter),
    with lengths."""
    dtype = torch.float64
    kw = {"backend": "cpu_fused", "dtype": dtype}
    layer = lstmkit.GRU(2, 3, **kw) if mode == "gru" else lstmkit.RNN(2, 3, nonlinearity=mode[4:], **kw)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    x = torch.randn(4, 2, 2, dtype=dtype, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=dtype, requires_grad=True)

    def fn(x, h0, *ps):
        return functional_call(layer, dict(zip(names, ps)), (x, h0), {"lengths": torch.tensor([4, 2])})

    assert torch.autograd.gradcheck(fn, (x, h0, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_rnn_kernels_refuse_tensors_of_the_wrong_shape():
    ext = cpu_fused.extension()
    with pytest.raises(RuntimeError, match="the RNN's W_hh must be"):
        ext.rnn_forward(torch.randn(5, 3, 4), torch.randn(3, 4), torch.randn(4, 5), False, None)
    with pytest.raises(RuntimeError, match="the RNN's W_ih must be"):
        ext.rnn_layer(torch.randn(15, 2), torch.randn(4, 3), None, torch.randn(3, 4), torch.randn(4, 4), None, None, 5,
                      False)  # fmt: skip
