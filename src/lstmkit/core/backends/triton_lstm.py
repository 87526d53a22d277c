"""The ``triton`` backend: the LSTM family fused into one Triton kernel per layer and direction (CUDA).

The input projection of all steps is one GEMM (torch); the recurrence of a layer and direction is one
persistent kernel launch that loops over time (:mod:`lstmkit.core.backends.triton_kernels`); backward is
an :class:`torch.autograd.Function` whose kernel loops over time in reverse and returns the gradients of
every step's pre-activations, from which ``dW`` is one GEMM. Stacking, bidirectionality, dropout and the
lengths contract come from :func:`lstmkit.core.reference.run_stack`. Design notes: ``docs/kernels.md``.

Recurrence strategy (``LSTMKIT_TRITON_MODE``, default ``auto``):

* ``single`` — one program per block of batch rows owns every hidden unit; steps are separated by a CTA
  barrier. Runs everywhere, the Triton interpreter included.
* ``split`` — the hidden units are split across up to one program per SM; every step ends in a grid-wide
  barrier. GPU only (the interpreter runs programs one after another, so the barrier would never open).
* ``emulate`` — split mode's partition with one launch per step instead of the grid barrier (tests only).
* ``auto`` — ``split`` where it has enough programs to be worth it, after checking it once per
  configuration against ``single`` (falling back to ``single`` if the check fails), else ``single``.

This module does not import Triton: it is imported by every ``import lstmkit``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.core.backends.reference import StackBackend
from lstmkit.core.cells import CellWeights, Variant, input_projection
from lstmkit.core.reference import RNNSpec, reverse_within_lengths, run_direction

log = logging.getLogger(__name__)

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MODES = ("auto", "single", "split", "emulate")
SPLIT_MIN_PROGRAMS = 4  # auto: below this many programs the grid barrier costs more than it spreads


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def split_disabled() -> bool:
    """``LSTMKIT_TRITON_NO_SPLIT=1``: never pick split mode in ``auto`` (set by the GPU check when its
    split-mode smoke test fails or hangs)."""
    return os.environ.get("LSTMKIT_TRITON_NO_SPLIT", "0") == "1"


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on")


@dataclass(frozen=True)
class KernelConfig:
    """The compile-time switches of one variant (see the kernels' docstring)."""

    gi: int
    gf: int
    gg: int
    go: int
    peep: bool
    cand_tanh: bool
    out_tanh: bool
    coupled: bool
    fgr: bool

    @classmethod
    def of(cls, variant: Variant) -> KernelConfig:
        idx = {g: k for k, g in enumerate(variant.gates)}
        return cls(
            idx.get("i", -1), idx.get("f", -1), idx["g"], idx.get("o", -1), bool(variant.peepholes),
            variant.candidate_tanh, variant.output_tanh, variant.coupled, variant.full_recurrence,
        )  # fmt: skip

    def constexprs(self) -> dict:
        return {
            "GI": self.gi, "GF": self.gf, "GG": self.gg, "GO": self.go, "PEEP": self.peep,
            "CAND_TANH": self.cand_tanh, "OUT_TANH": self.out_tanh, "COUPLED": self.coupled, "FGR": self.fgr,
        }  # fmt: skip


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class Launch:
    """Grid and tile sizes of one launch."""

    split: bool
    BB: int
    BH: int
    BK: int
    nb: int
    nh: int
    HPP: int  # hidden units per program

    @property
    def n_prog(self) -> int:
        return self.nb * self.nh


_TILES = sorted(((bb, bh) for bb in (16, 32, 64, 128, 256) for bh in (16, 32, 64, 128)), key=lambda p: (p[0] * p[1], p[1]))
NPROG_MAX = 256  # grid-barrier flags scanned per spin (≥ the SM count of any current GPU); one compile


def plan(B: int, H: int, split: bool, n_sm: int | None) -> Launch:
    """Tile sizes (each ≥ 16, the smallest ``tl.dot`` shape) and grid for batch ``B``, hidden size ``H``.

    Batch blocks of 16 rows everywhere they fit: the fewest distinct compiled kernels, and in single
    mode the most programs (one per 16 rows).
    """
    BK = max(16, min(_next_pow2(H), 64))
    if not split:
        BH = max(16, min(_next_pow2(H), 32))
        return Launch(False, 16, BH, BK, -(-B // 16), 1, -(-H // BH) * BH)
    n_sm = min(n_sm or 1, NPROG_MAX)
    for bb, bh in _TILES:
        nb, nh = -(-B // bb), -(-H // bh)
        if nb * nh <= n_sm:
            return Launch(True, bb, bh, BK, nb, nh, bh)
    return Launch(True, 256, 128, BK, -(-B // 256), -(-H // 128), 128)  # too many programs: caller checks


def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _plan_for(B: int, H: int, how: str, device: torch.device) -> Launch:
    if how == "single":
        return plan(B, H, False, None)
    return plan(B, H, True, EMULATED_SMS if how == "emulate" else _sm_count(device))


def _dot_precision(dtype: torch.dtype) -> str:
    if dtype != torch.float32:
        return "tf32"  # ignored for 16-bit operands (tensor cores, fp32 accumulation)
    # fp32: exact IEEE products by default (≤ 1e-5 relative to the reference); tf32x3 is ~fp32-accurate
    # on tensor cores; tf32 is torch's own default for cuDNN and is looser (~1e-3).
    prec = os.environ.get("LSTMKIT_TRITON_FP32_DOT", "ieee").lower()
    if prec not in ("ieee", "tf32x3", "tf32"):
        raise ValueError(f"LSTMKIT_TRITON_FP32_DOT={prec!r}; use ieee, tf32x3 or tf32")
    return "ieee" if _interpreting() else prec


def _launch_opts(
    launch: Launch, cfg: KernelConfig, dtype: torch.dtype, sync: bool, use_ln: bool, use_proj: bool
) -> dict:
    return dict(
        **cfg.constexprs(), SPLIT=launch.split, NPROG_P2=NPROG_MAX, BB=launch.BB, BH=launch.BH, BK=launch.BK,
        DOT_PREC=_dot_precision(dtype), NQ=4 if cfg.fgr else 1, SYNC=sync, LN=use_ln, PROJ=use_proj,
    )  # fmt: skip


# "emulate": split mode's partition of the units over programs, with the grid barrier replaced by one launch
# per step (and per phase in the backward). Slow; it exists so that the interpreter tests cover split
# mode's indexing on a CPU. The SM count it plans for:
EMULATED_SMS = 64


def _recurrent_matrix(w_hh: Tensor, w_fgr: Tensor | None, cfg: KernelConfig) -> Tensor:
    """``W`` (G, K) with ``z = [h; i; f; o]``: FGR's W_fgr goes into the i, f, o rows (g rows get zeros)."""
    if not cfg.fgr:
        return w_hh
    H = w_hh.shape[1]
    extra = w_hh.new_zeros(4 * H, 3 * H)
    for src_row, gate_block in enumerate((cfg.gi, cfg.gf, cfg.go)):  # W_fgr rows: targets i, f, o
        extra[gate_block * H : (gate_block + 1) * H] = w_fgr[src_row * H : (src_row + 1) * H]
    return torch.cat([w_hh, extra], dim=1)  # (4H, 4H)


def _peep_matrix(w_peep: Tensor | None, variant: Variant, H: int, device: torch.device) -> Tensor:
    """(3, H) fp32 peephole weights of i, f, o, zeros for a gate without one."""
    if variant.peepholes == ("i", "f", "o"):
        return w_peep.float().contiguous()
    p = torch.zeros(3, H, device=device, dtype=torch.float32)
    if w_peep is not None:
        for row, gate in enumerate(variant.peepholes):
            p["ifo".index(gate)] = w_peep[row].float()
    return p


class _Recurrence(torch.autograd.Function):
    """``(xg, W_hh, W_fgr, w_peep, ln, h0, c0) -> (out, h_n, c_n)`` for one layer and direction.

    ``ln`` (layer norm only, else None): fp32 [gamma_hh (G), beta_hh (G), gamma_cell (H), beta_cell (H)].
    ``w_hr`` (projection only, else None): (P, H); then h, h0 and the outputs are P-vectors.
    """

    @staticmethod
    def forward(ctx, xg, w_hh, w_fgr, w_peep, ln, w_hr, h0, c0, lengths, variant, split):
        T, B, G = xg.shape
        H, Hz = c0.shape[1], w_hh.shape[1]  # hidden units; size of h (P with a projection)
        cfg = KernelConfig.of(variant)
        dtype, dev = xg.dtype, xg.device
        W = _recurrent_matrix(w_hh, w_fgr, cfg).to(dtype)  # (G, K)
        K = W.shape[1]
        launch = _plan_for(B, H, split, dev)
        n_prog = launch.n_prog
        z = torch.zeros(2, B, K, device=dev, dtype=dtype)
        z[0, :, :Hz] = h0
        out = torch.empty(T, B, Hz, device=dev, dtype=dtype)
        act = torch.empty(T, B, G, device=dev, dtype=torch.float32)
        c = torch.empty(T + 1, B, H, device=dev, dtype=torch.float32)
        c[0] = c0
        peep = _peep_matrix(w_peep, variant, H, dev)
        flags = torch.zeros(n_prog, device=dev, dtype=torch.int32)
        use_ln = ln is not None
        if use_ln:
            hg = torch.empty(T, B, G, device=dev, dtype=torch.float32)
            stats = torch.empty(T, B, 4, device=dev, dtype=torch.float32)
            ln = ln.float().contiguous()
        else:
            hg = stats = ln = act  # never touched: LN=False compiles those branches out
        use_proj = w_hr is not None
        if use_proj:
            whr_t = w_hr.to(dtype).t().contiguous()  # (H, P)
            co = torch.empty(T, B, H, device=dev, dtype=dtype)
        else:
            whr_t, co = W, out  # never touched
        zpp = -(-Hz // launch.BH) * launch.BH if use_proj else launch.HPP
        from lstmkit.core.backends.triton_kernels import lstm_fwd_kernel

        args = (xg.contiguous(), W.t().contiguous(), peep, lengths, z, out, act, c, flags, hg, ln, stats, whr_t, co,
                T, B, H, K, G, launch.HPP, n_prog)  # fmt: skip
        grid = (launch.nb, launch.nh)
        opts = {"use_ln": use_ln, "use_proj": use_proj}
        if split == "emulate":
            for t in range(T):
                lstm_fwd_kernel[grid](*args, t, t + 1, 3, Hz, zpp, **_launch_opts(launch, cfg, dtype, False, **opts))
        else:
            lstm_fwd_kernel[grid](*args, 0, T, 3, Hz, zpp, **_launch_opts(launch, cfg, dtype, True, **opts))
        h_n = z[T % 2, :, :Hz].clone()
        c_n = c[T].to(dtype, copy=True)  # not a view of the saved buffer
        ctx.save_for_backward(W, peep, lengths, act, c, out, h0, hg, ln, stats, w_hr if use_proj else W, co)
        ctx.cfg, ctx.variant, ctx.launch, ctx.split, ctx.use_ln = cfg, variant, launch, split, use_ln
        ctx.use_proj, ctx.zpp = use_proj, zpp
        ctx.has_fgr, ctx.has_peep = w_fgr is not None, w_peep is not None
        ctx.peep_dtype = None if w_peep is None else w_peep.dtype
        return out, h_n, c_n

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):
        W, peep, lengths, act, c, out, h0, hg, ln, stats, w_hr, co = ctx.saved_tensors
        cfg, variant, launch, use_ln, use_proj = ctx.cfg, ctx.variant, ctx.launch, ctx.use_ln, ctx.use_proj
        T, B, Hz = out.shape
        H = c.shape[2]
        G, K = W.shape
        dtype, dev = out.dtype, out.device
        d_out = torch.zeros_like(out) if d_out is None else d_out.to(dtype).contiguous()
        dz = torch.zeros(B, K, device=dev, dtype=torch.float32)
        if d_hn is not None:
            dz[:, :Hz] = d_hn
        dc = torch.zeros(B, H, device=dev, dtype=torch.float32) if d_cn is None else d_cn.float().contiguous()
        dg = torch.empty(T, B, G, device=dev, dtype=dtype)
        flags = torch.zeros(launch.n_prog, device=dev, dtype=torch.int32)
        if ctx.use_ln:
            dcn = torch.empty(T, B, H, device=dev, dtype=torch.float32)
            dhg = torch.empty(T, B, G, device=dev, dtype=dtype)
        else:
            dcn, dhg = act, dg  # never touched
        if use_proj:
            whr = w_hr.to(dtype).contiguous()  # (P, H)
            dhp = torch.empty(T, B, Hz, device=dev, dtype=dtype)
            dco = torch.empty(T, B, H, device=dev, dtype=torch.float32)
        else:
            whr, dhp, dco = W, dg, act  # never touched
        from lstmkit.core.backends.triton_kernels import lstm_bwd_kernel

        args = (W.contiguous(), peep, lengths, act, c, d_out, dz, dc, dg, flags, hg, ln, stats, dcn, dhg,
                whr, dhp, dco, T, B, H, K, G, launch.HPP, launch.n_prog)  # fmt: skip
        grid = (launch.nb, launch.nh)
        opts = {"use_ln": use_ln, "use_proj": use_proj}
        if ctx.split == "emulate":
            for s in range(T):
                for phase in (1, 2):
                    lstm_bwd_kernel[grid](*args, s, s + 1, phase, Hz, ctx.zpp,
                                          **_launch_opts(launch, cfg, dtype, False, **opts))  # fmt: skip
        else:
            lstm_bwd_kernel[grid](*args, 0, T, 3, Hz, ctx.zpp, **_launch_opts(launch, cfg, dtype, True, **opts))

        # dW = Σ_t dgates_tᵀ z_{t-1}: one GEMM. Where a step is past a sequence's end its dgates are zero,
        # and where it is not, z_{t-1} is the previous step's output (or h0) and gate activations.
        z_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, H)
        if cfg.fgr:
            ifo = torch.cat([act[..., b * H : (b + 1) * H] for b in (cfg.gi, cfg.gf, cfg.go)], dim=-1).to(dtype)
            ifo = torch.cat([ifo.new_zeros(1, B, 3 * H), ifo[:-1]])  # (T, B, 3H)
            z_prev = torch.cat([z_prev, ifo], dim=-1)  # (T, B, 4H)
        d_rec = dhg if ctx.use_ln else dg  # gradient of W z_{t-1} (with LN: before the norm)
        dW = (d_rec.reshape(T * B, G).t() @ z_prev.reshape(T * B, K)).float()  # (G, K)
        d_whh = dW[:, :Hz]
        d_wfgr = None
        if ctx.has_fgr:
            d_wfgr = torch.cat([dW[b * H : (b + 1) * H, H:] for b in (cfg.gi, cfg.gf, cfg.go)])  # (3H, 3H)
        d_peep = None
        if ctx.has_peep:
            rows = []
            for gate in variant.peepholes:
                block = {"i": cfg.gi, "f": cfg.gf, "o": cfg.go}[gate]
                c_read = c[1:] if gate == "o" else c[:-1]  # o reads the new cell state
                rows.append((dg[..., block * H : (block + 1) * H].float() * c_read).sum((0, 1)))
            d_peep = torch.stack(rows).to(ctx.peep_dtype)
        d_ln = None
        if ctx.use_ln:  # gammas and betas: Σ over steps and batch of (d out · x̂, d out)
            yhat = (hg - stats[..., 0:1]) * stats[..., 1:2]  # (T, B, G)
            chat = (c[1:] - stats[..., 2:3]) * stats[..., 3:4]  # (T, B, H)
            dgf = dg.float()
            d_ln = torch.cat([(dgf * yhat).sum((0, 1)), dgf.sum((0, 1)), (dcn * chat).sum((0, 1)), dcn.sum((0, 1))])
        d_whr = None
        if use_proj:  # dW_hr = Σ_t d h_tᵀ (o ⊙ act(c_t)): one GEMM
            d_whr = (dhp.reshape(T * B, Hz).t() @ co.reshape(T * B, H)).to(w_hr.dtype)  # (P, H)
        d_h0 = dz[:, :Hz].to(dtype)
        d_c0 = dc.to(dtype)
        d_wfgr = None if d_wfgr is None else d_wfgr.to(W.dtype)
        return dg, d_whh.to(W.dtype), d_wfgr, d_peep, d_ln, d_whr, d_h0, d_c0, None, None, None


def recurrence(
    xg: Tensor, w: CellWeights, variant: Variant, h0: Tensor, c0: Tensor, lengths: Tensor | None, mode: str,
    layer_norm: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """The fused recurrence over the pre-computed input projection ``xg`` (T, B, G) of one direction."""
    T, B, _ = xg.shape
    dtype = xg.dtype
    lens = torch.full((B,), T, dtype=torch.int32, device=xg.device) if lengths is None else lengths.to(xg.device, torch.int32)
    # Layer norm and the projection run in single mode only: they need every hidden unit of a row.
    whole_row = layer_norm or w.w_hr is not None
    split = "single" if whole_row else _choose_split(mode, xg, w, variant, h0, c0, lens)
    w_fgr = None if w.w_fgr is None else w.w_fgr.to(dtype)
    ln = torch.cat([*w.ln_hh, *w.ln_cell]).float() if layer_norm else None
    w_hr = None if w.w_hr is None else w.w_hr.to(dtype)
    return _Recurrence.apply(
        xg, w.w_hh.to(dtype), w_fgr, w.w_peep, ln, w_hr, h0.to(dtype), c0.to(dtype), lens, variant, split
    )


_SPLIT_OK: dict[tuple, bool] = {}


def _choose_split(mode: str, xg, w, variant, h0, c0, lens) -> str:
    """The strategy that runs: "single", "split" or "emulate" (see the module docstring)."""
    if mode in ("single", "emulate"):
        return mode
    if mode == "split":
        if _interpreting() or xg.device.type != "cuda":
            raise ValueError("mode='split' needs a CUDA device (its grid barrier cannot run in the interpreter)")
        launch = plan(xg.shape[1], w.w_hh.shape[1], True, _sm_count(xg.device))
        if launch.n_prog > _sm_count(xg.device):
            raise ValueError(f"mode='split' needs {launch.n_prog} co-resident programs, more than the SMs")
        return "split"
    # auto
    if _interpreting() or xg.device.type != "cuda" or split_disabled():
        return "single"
    B, H = xg.shape[1], w.w_hh.shape[1]
    n_sm = _sm_count(xg.device)
    launch = plan(B, H, True, n_sm)
    if launch.n_prog > n_sm or launch.n_prog < SPLIT_MIN_PROGRAMS:
        return "single"
    key = (variant.name, xg.dtype, B, H, xg.device.index)
    if key not in _SPLIT_OK:
        _SPLIT_OK[key] = _validate_split(xg, w, variant, h0, c0, lens)
    return "split" if _SPLIT_OK[key] else "single"


def _validate_split(xg, w, variant, h0, c0, lens) -> bool:
    """Run split and single once on this input (a few steps) and compare; a failure means single."""
    n = min(xg.shape[0], 8)
    args = (w.w_hh.to(xg.dtype), None if w.w_fgr is None else w.w_fgr.to(xg.dtype), w.w_peep,
            h0.to(xg.dtype), c0.to(xg.dtype), lens.clamp(max=n))  # fmt: skip
    try:
        with torch.no_grad():
            a = _Recurrence.apply(xg[:n].detach(), *args[:3], None, None, *args[3:], variant, "split")
            b = _Recurrence.apply(xg[:n].detach(), *args[:3], None, None, *args[3:], variant, "single")
        tol = 1e-4 if xg.dtype == torch.float32 else 2e-2
        ok = all(torch.allclose(p.float(), q.float(), rtol=tol, atol=tol) for p, q in zip(a, b))
    except Exception as err:  # noqa: BLE001 — a compile or launch failure of split means: use single
        log.warning("triton split mode failed (%s); using single mode", err)
        return False
    if not ok:
        log.warning("triton split mode disagrees with single mode for %s; using single mode", variant.name)
    return ok


def make_direction(mode: str | None = None):
    """A per-direction kernel with :func:`lstmkit.core.reference.run_direction`'s contract."""

    def direction(x, h0, c0, w: CellWeights, spec: RNNSpec, lengths=None, reverse=False):
        m = mode or os.environ.get("LSTMKIT_TRITON_MODE", "auto").lower()
        if m not in MODES:
            raise ValueError(f"LSTMKIT_TRITON_MODE={m!r}; use one of {MODES}")
        if x.shape[0] == 0:  # nothing to launch
            return run_direction(x, h0, c0, w, spec, lengths, reverse)
        if reverse:
            x = reverse_within_lengths(x, lengths)
        w = CellWeights(*(t.to(x.dtype) if isinstance(t, Tensor) else t for t in w))  # LN pairs stay as they are
        xg = input_projection(x, w, spec.layer_norm)  # (T, B, G)
        out, h_n, c_n = recurrence(xg, w, spec.variant, h0, c0, lengths, m, spec.layer_norm)
        if reverse:
            out = reverse_within_lengths(out, lengths)
        return out, h_n, c_n

    return direction


class TritonBackend(StackBackend):
    name = "triton"
    supports = (
        "every LSTM variant (with layer_norm and proj_size except for fgr), in float32/bfloat16/float16 on CUDA "
        "(needs the triton package)"
    )

    def unsupported(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> str | None:
        if spec.mode != "lstm":
            return f"mode={spec.mode!r} (the Triton kernels run the LSTM family only)"
        if spec.layer_norm and spec.variant is not None and spec.variant.full_recurrence:
            return "layer_norm=True with variant='fgr' (not in the Triton kernels)"
        if spec.proj_size > 0 and spec.variant is not None and spec.variant.full_recurrence:
            return f"proj_size={spec.proj_size} with variant='fgr' (not in the Triton kernels)"
        if device is None and dtype is None:
            return None  # a configuration-only check
        if dtype is not None and dtype not in DTYPES:
            return f"dtype {dtype} (the Triton kernels run float32, bfloat16 and float16)"
        if device is not None and device.type != "cuda":
            return f"device {device.type!r} (the Triton kernels run on CUDA GPUs)"
        if not triton_available():
            return "the triton package is not installed (pip install 'lstmkit[gpu]')"
        if spec.proj_size > 0:
            # Measured on an H200: dh0 1.14e-5 from the float64 reference in fp32 (bound 1e-5) and bf16
            # outputs 1.4x torch's own bf16 error. Until that is found, projections run elsewhere.
            return f"proj_size={spec.proj_size} (the projection path missed its accuracy bound on the GPU)"
        if spec.layer_norm and dtype in (torch.bfloat16, torch.float16):
            # Measured on an H200: CIFG + layer norm in bf16 had dx 1.8x torch's own bf16 error.
            return f"layer_norm=True in {dtype} (missed its accuracy bound on the GPU; float32 is supported)"
        return None

    def auto_declines(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> bool:
        """``auto`` leaves the standard cell to cuDNN where cuDNN measured faster (docs/kernels.md).

        H200, forward+backward, Triton's time / cuDNN's: bf16 0.25–0.78 at every benchmark size (Triton);
        fp32 0.76–0.78 at H = 256 but 1.35–8.1 elsewhere; fp16 0.88 at B64 T256 H256, 1.7–3.5 elsewhere
        (cuDNN's persistent fp16 kernel). Variants always run here: cuDNN has none of them.
        """
        if not spec.is_standard_lstm or spec.layer_norm:
            return False
        if dtype == torch.bfloat16:
            return False
        return not (dtype == torch.float32 and 192 <= spec.hidden_size <= 384)

    def direction(self):
        return make_direction()
