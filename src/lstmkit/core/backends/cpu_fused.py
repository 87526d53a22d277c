"""The ``cpu_fused`` backend: every LSTM variant's time loop, the GRU's and the RNN's, in C++: no Python per step.

The reference loop costs tens of ATen calls (and as many autograd nodes) per time step, which dominates
at small batches and long sequences. Here one layer in one direction is:

* the input projection of all steps, one GEMM (what :func:`lstmkit.core.cells.input_projection`
  computes; by the extension's packed GEMM where the input is wide enough, layer norm by torch);
* the recurrence, one call into ``csrc/lstm_variants.cpp``: per step one GEMM ``h_{t-1} W_hh^T`` (a
  register-blocked kernel on W packed once per call — at batch 1 in panels that stream from L2; the
  BLAS when W_hh passes 16 MB), plus one for FGR's gate recurrence, and one vectorised pass over B×H
  that applies the variant (and layer norm, in phases over the rows so that the rows' reductions
  overlap), saving the gate activations and c for the backward pass. The rows of a batch never meet,
  so with several threads each takes its rows through every step: one parallel region per call.
  float32 sigmoid and tanh are the kernel's own (one exp or expm1 each, 1.5 ulp; libm is scalar); with
  AVX-512 the float32 pass is written out 16 units at a time (a row's last H % 16 units one masked
  vector, 1/y by rcp14 and a Newton step), elsewhere it is one loop the compiler vectorises;
* its backward, one call: per step one pass computing the pre-activation gradients (peephole and
  layer-norm gain gradients summed on the way) and one GEMM ``dA_t W_hh`` for dh_{t-1}; then the
  weight gradients are one product over all steps (``dAᵀ [h_{t-1} | x | 1 | [i;f;o]_{t-1}]``: W_hh's,
  W_ih's where that saves vectors, the biases' where their column fits the padding, FGR's; K-blocked so
  that each block of both operands is reused from L2).

Training a layer without layer norm is one autograd node written in C++ (``csrc``: ``LayerFunction``, the
input projection included; its backward one call for the time loop and every gradient): as a Python
``autograd.Function`` the same node cost 35–60 µs more per layer and pass at the seed's size (standard
cell forward+backward 1.27 → 1.21 ms); with layer norm the same node runs the input norm after the
projection (as three Python nodes it cost ~390 µs more per forward+backward of the seed's two layers).

Stacking, bidirectionality, lengths (reversal within lengths) and dropout between layers are
:func:`lstmkit.core.reference.run_stack`'s, with :func:`run_direction` below as its per-direction kernel.

The extension is compiled with ``torch.utils.cpp_extension.load`` the first time a CPU forward (or an
``unsupported`` check with a real device) needs it, once per Python environment and source version (torch caches the build under its
extensions directory, ``TORCH_EXTENSIONS_DIR``). Without a compiler, or when the build fails, the
backend reports why in :meth:`CPUFusedBackend.unsupported` (warned once, never retried in the process)
and ``auto`` falls back: the standard cell to torch's kernel (``native``), the variants to the reference
loop. ``LSTMKIT_NO_CPP=1`` turns it off. ``make setup`` builds it. ``auto`` runs the standard cell here in
float32 up to H = 384 (``NativeBackend.auto_declines``): forward+backward measured 0.29–0.83× torch's time.

Inference (no gradient, no layer norm, B ≥ 16) takes the input projection into the time loop
(``forward_input``), so the (T, B, G) pre-activations are never materialised.

The GRU (torch's form) and the Elman RNN (tanh, relu) run the same way (:func:`_state_direction`): for
training one C++ autograd node per layer and direction (``GruFunction``, ``RnnFunction``: the projection,
the time loop; its backward, then dx and the input weights' gradients), for inference ``gru_forward`` /
``rnn_forward`` after the projection. ``auto`` sends both here at every size, float32 and float64: torch's
GRU and RNN are slow on the CPU, the fused ones 0.007–0.68× and 0.01–0.37× their forward+backward time
(docs/kernels.md).

Supported: the LSTM cell in every variant of :data:`lstmkit.core.cells.VARIANTS` (standard included), the
GRU and the Elman RNN, uni/bidirectional, stacked, with bias or not, with lengths, with or without
``layer_norm`` (LSTM), float32 and float64, CPU. Not (yet): ``proj_size`` (it runs on the reference loop).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import threading
import time
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from lstmkit.core.backends.reference import StackBackend
from lstmkit.core.cells import LN_EPS, VARIANTS, CellWeights, Variant
from lstmkit.core.reference import RNNSpec, reverse_within_lengths

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "lstm_variants.cpp"
_DTYPES = (torch.float32, torch.float64)

# The C++ side's variant table (kVariants), as (gates, peepholes?, candidate_tanh, output_tanh, coupled, fgr).
_CPP_VARIANTS = [
    ("ifgo", False, True, True, False, False),  # standard
    ("ifgo", True, True, True, False, False),  # peephole
    ("fgo", True, True, True, False, False),  # nig
    ("igo", True, True, True, False, False),  # nfg
    ("ifg", True, True, True, False, False),  # nog
    ("ifgo", True, False, True, False, False),  # niaf
    ("ifgo", True, True, False, False, False),  # noaf
    ("igo", True, True, True, True, False),  # cifg
    ("ifgo", True, True, True, False, True),  # fgr
]


def variant_id(variant: Variant) -> int | None:
    """The C++ kernel's id for ``variant`` (``None`` if the kernel has no such cell)."""
    gates = "".join(variant.gates)
    peep = bool(variant.peepholes)
    if peep and variant.peepholes != tuple(
        g for g in variant.gates if g != "g" and not (g == "f" and variant.coupled)
    ):
        return None  # the kernel gives every gate of the variant a peephole, or none
    key = (
        gates,
        peep,
        variant.candidate_tanh,
        variant.output_tanh,
        variant.coupled,
        variant.full_recurrence,
    )
    return _CPP_VARIANTS.index(key) if key in _CPP_VARIANTS else None


_VARIANT_IDS = {name: variant_id(v) for name, v in VARIANTS.items()}

# ------------------------------------------------------------------------------------------ the build
_lock = threading.Lock()
_ext: ModuleType | None = None
_error: str | None = None


_FLAGS = ["-O3", "-fopenmp"]  # -fopenmp: at::parallel_for is inline OpenMP code, serial without it
if platform.machine().lower() in ("x86_64", "amd64"):
    _FLAGS.append("-march=native")  # AVX2 / AVX-512 for the vectorised loops; the name carries the CPU


def _extension_name(source: bytes) -> str:
    """The build's name: the CPU (-march=native code must not be reused on another CPU, e.g. with a shared
    home directory), the source with its flags, and the Python environment (its torch headers are in the
    compile command, and ninja rebuilds when that changes): each version builds once per environment, and
    checkouts of the same version share the build instead of rebuilding it in turn."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu += "".join(
                line for line in f if line.startswith(("model name", "flags"))
            )
    except OSError:
        cpu += platform.processor()
    env = f"{sys.prefix} {torch.__version__} {' '.join(_FLAGS)}".encode()
    code = hashlib.sha1(source + env).hexdigest()[:10]
    return f"lstmkit_lstm_variants_{hashlib.sha1(cpu.encode()).hexdigest()[:10]}_{code}"


def extension() -> ModuleType | None:
    """The compiled kernels (built on the first call, once per environment and version), or ``None`` with :func:`build_error` set."""
    global _ext, _error
    if _ext is not None or _error is not None:
        return _ext
    with _lock:
        if _ext is not None or _error is not None:
            return _ext
        if os.environ.get("LSTMKIT_NO_CPP", "") not in ("", "0"):
            _error = "the C++ extension is turned off (LSTMKIT_NO_CPP is set)"
            return None
        try:
            _ext = _build()
        except Exception as e:  # noqa: BLE001 — any build or load failure means: fall back
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            # torch's message starts "Error building extension"; the compiler's own "error:" line says why.
            detail = next(
                (ln for ln in lines if "error:" in ln.lower()),
                lines[0] if lines else type(e).__name__,
            )
            _error = f"the C++ extension could not be built: {detail[:300]}"
            warnings.warn(
                f"lstmkit: {_error}; the standard LSTM cell runs on torch's kernel and the variants on the "
                "(slower) reference loop",
                stacklevel=3,
            )
        return _ext


def build_error() -> str | None:
    """Why the extension is unavailable (``None`` while it is, or before the first attempt)."""
    return _error


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    source = _SOURCE.read_bytes()
    name = _extension_name(source)
    # torch's loader rebuilds when the source file's path or modification time changes (ninja), so it
    # builds from a copy kept in the build's own directory, written once: a fresh clone, a second
    # checkout or a `git stash` of the same source reuses the build.
    try:  # torch's own place for it (TORCH_EXTENSIONS_DIR, else under ~/.cache); a private helper
        build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    except Exception:  # noqa: BLE001 — its absence in some torch version must not stop the build
        root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
        build_dir = Path(root) / name
    build_dir.mkdir(parents=True, exist_ok=True)
    stable = build_dir / _SOURCE.name
    if not stable.exists() or stable.read_bytes() != source:
        tmp = stable.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(source)
        tmp.replace(stable)  # atomic: a concurrent process sees the old file or the whole new one
    if not any(build_dir.glob(f"{name}*.so")):
        # A warning, so that a library user without logging set up sees why the first run pauses.
        log.warning("compiling lstmkit's CPU kernels: once per Python environment and version, about a minute")
    start = time.perf_counter()
    ext = cpp_extension.load(
        name, [str(stable)], extra_cflags=_FLAGS, extra_ldflags=["-fopenmp"], build_directory=str(build_dir),
        verbose=False,
    )  # fmt: skip
    log.debug("lstmkit's CPU kernels ready in %.1f s", time.perf_counter() - start)
    return ext


# ------------------------------------------------------------------------------------------ one direction
def _or_empty(t: Tensor | None, like: Tensor) -> Tensor:
    """The extension takes an absent optional weight (peepholes, W_fgr, a bias) as an empty tensor."""
    return like.new_empty(0) if t is None else t


def run_direction(
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w: CellWeights,
    spec: RNNSpec,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`lstmkit.core.reference.run_direction`'s contract, with the time loop in C++."""
    if reverse:
        x = reverse_within_lengths(x, lengths)
    T = x.shape[0]
    mask = None
    if lengths is not None:
        lengths = lengths.to(x.device)
        if int(lengths.min()) < T:
            mask = (
                torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)
            ).to(torch.uint8)  # (T, B)
    if spec.mode != "lstm":
        out, h_n = _state_direction(x, h0, w, mask, spec.mode)
        return (reverse_within_lengths(out, lengths) if reverse else out), h_n, None
    ln = (*w.ln_hh, *w.ln_cell) if spec.layer_norm else (None,) * 4
    tensors = (x, h0, c0, w.w_ih, w.b_ih, w.b_hh, w.w_hh, w.w_peep, w.w_fgr, *ln, *(w.ln_ih or ()))
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    G = w.w_hh.shape[0]
    B = x.shape[1]
    ext, vid, x2 = extension(), _VARIANT_IDS[spec.variant.name], x.reshape(T * B, -1)
    # with layer norm: W_ih x, LN(·; γ_ih, β_ih) + b_ih + b_hh (csrc: input_ln), then the time loop with
    # LN(W_hh h) and LN(c); norms: the gain and shift of the input, recurrent and cell norms
    norms = [*w.ln_ih, *ln] if spec.layer_norm else []
    if save:  # one autograd node in C++ (csrc: LayerFunction): the projection, the time loop, and backward
        out, h_n, c_n = ext.layer(x2, w.w_ih, w.b_ih, w.b_hh, h0, c0, w.w_hh, w.w_peep, w.w_fgr, mask, norms, vid, T, LN_EPS)
    else:  # inference: no autograd node
        bias = None if w.b_ih is None else w.b_ih + w.b_hh
        wp, wf = _or_empty(w.w_peep, x), _or_empty(w.w_fgr, x)
        weights = G * (x.shape[2] + w.w_hh.shape[1]) * x.element_size()  # W_ih and W_hh, read every step
        if spec.layer_norm:
            xg, _stats = ext.input_ln(ext.matmul(x2, w.w_ih, True, None), norms[0], norms[1], _or_empty(bias, x), LN_EPS)
            out, h_n, c_n, *_ = ext.forward(
                xg.view(T, B, G), h0, c0, w.w_hh.contiguous(), wp, wf, mask, vid, norms[2:], LN_EPS, False
            )  # fmt: skip
        elif weights <= 4 << 20 and (B >= 16 or T * B * G * x.element_size() >= 32 << 20):
            # The input projection inside the time loop (csrc: InputStep), no (T, B, G) tensor (B256 T100
            # H128, 52 MB: forward 21 -> 17 ms, torch 21; B16 T1024 H256: 64 -> 48 ms, torch 62). Measured
            # no slower from B = 16 (each thread's step product has 8 rows or more); below, the per-step
            # products of one to a few rows are slower than one product over all steps (B1 T1000 H50: 0.66
            # vs 0.40 ms) unless that tensor would pass glibc's 32 MB mmap limit (fresh pages on every
            # call). Not when W_ih and W_hh stream from beyond L2 every step (B16 T256 H768, 19 MB: 236 vs
            # 118 ms).
            out, h_n, c_n, *_ = ext.forward_input(x, w.w_ih, bias, h0, c0, w.w_hh, wp, wf, mask, vid)
        else:
            xg = ext.matmul(x2, w.w_ih, True, bias).view(T, B, G)
            out, h_n, c_n, *_ = ext.forward(xg, h0, c0, w.w_hh.contiguous(), wp, wf, mask, vid, [], LN_EPS, False)
    if reverse:
        out = reverse_within_lengths(out, lengths)
    return out, h_n, c_n


def _state_direction(
    x: Tensor, h0: Tensor, w: CellWeights, mask: Tensor | None, mode: str
) -> tuple[Tensor, Tensor]:
    """One GRU or Elman layer (``mode``: gru, rnn_tanh, rnn_relu) in one direction (time-major ``x``, already
    reversed where needed): outputs, h_n. Training: one C++ autograd node (csrc: ``GruFunction``,
    ``RnnFunction``: the projection, the time loop, its backward); inference: the projection by the
    extension's GEMM, then the loop."""
    T, B = x.shape[0], x.shape[1]
    ext, x2 = extension(), x.reshape(T * B, -1).contiguous()
    w_ih, w_hh, h0 = w.w_ih.contiguous(), w.w_hh.contiguous(), h0.contiguous()
    relu = mode == "rnn_relu"
    tensors = (x, h0, w.w_ih, w.b_ih, w.b_hh, w.w_hh)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        if mode == "gru":
            out, h_n = ext.gru_layer(x2, w_ih, w.b_ih, h0, w_hh, w.b_hh, mask, T)
        else:
            out, h_n = ext.rnn_layer(x2, w_ih, w.b_ih, h0, w_hh, w.b_hh, mask, T, relu)
    elif mode == "gru":  # b_hh stays in the step: r ⊙ (W_hn h + b_hn)
        xg = ext.matmul(x2, w_ih, True, w.b_ih).view(T, B, -1)  # (T, B, 3H)
        out, h_n, *_ = ext.gru_forward(xg, h0, w_hh, _or_empty(w.b_hh, x), mask, False)
    else:
        bias = None if w.b_ih is None else w.b_ih + w.b_hh
        xg = ext.matmul(x2, w_ih, True, bias).view(T, B, -1)  # (T, B, H)
        out, h_n = ext.rnn_forward(xg, h0, w_hh, relu, mask)
    return out, h_n


# ------------------------------------------------------------------------------------------ the backend
class CPUFusedBackend(StackBackend):
    name = "cpu_fused"
    supports = (
        "every LSTM variant (standard, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr), the GRU and the RNN on "
        "CPU in float32 and float64, stacked, bidirectional, with lengths and (LSTM) layer_norm, without proj_size"
    )

    def unsupported(
        self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None
    ) -> str | None:
        if spec.mode not in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
            return f"mode {spec.mode!r}"
        if spec.mode == "lstm" and _VARIANT_IDS.get(spec.variant.name) is None:
            return f"variant={spec.variant.name!r}"
        if spec.proj_size:
            return f"proj_size={spec.proj_size} (not in the C++ kernel yet)"
        if device is not None and torch.device(device).type != "cpu":
            return f"device {torch.device(device).type!r} (CPU only)"
        if dtype is not None and dtype not in _DTYPES:
            return f"dtype {dtype} (float32 and float64 only)"
        if device is not None and extension() is None:
            return build_error()
        return None

    def direction(self):
        return run_direction
