"""Triton kernels of the fused LSTM recurrence (forward and backward), one launch per layer and direction.

Imported only by :mod:`lstmkit.core.backends.triton_lstm` when a Triton kernel is first needed (it imports
Triton). The design is described in ``docs/kernels.md``; in short:

* The input part of the pre-activations ``xg`` (T, B, G) is one GEMM done by torch before the launch.
* A program owns ``BB`` batch rows and a range of hidden units (all of them in "single" mode, ``HPP``
  of them in "split" mode) and loops over every time step inside the kernel. The recurrent input of a step
  is ``z_{t-1}`` (B, K): ``h_{t-1}``, followed for FGR by the previous i, f, o (so FGR is just a wider
  recurrent matrix ``W = [W_hh | W_fgr]`` with K = 4H); it lives in a double buffer in global memory.
* Between steps the programs synchronise: a CTA barrier in single mode (one program per batch block
  owns every unit), a grid barrier in split mode (the programs share ``z`` and must all be resident).

Variant switches are ``tl.constexpr``: ``GI, GF, GG, GO`` are the row block of gate i, f, g, o in the
weight matrices (-1 where the variant removes the gate), and ``PEEP``, ``CAND_TANH``, ``OUT_TANH``,
``COUPLED``, ``FGR`` follow :class:`lstmkit.core.cells.Variant`; ``LN`` adds layer normalisation (single
mode only: each step gains passes over the units for the row statistics). The cell state is fp32 in
registers and in the saved ``c`` buffer; dot operands are in the storage dtype with fp32 accumulation.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # tanh from one exp of a non-positive argument: no overflow, absolute error ~1e-7 in fp32.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _grid_sync(flags_ptr, pid, n_prog, step, NPROG_P2: tl.constexpr):
    """Grid-wide barrier number ``step`` (1, 2, …) for ``n_prog`` co-resident programs.

    Every program publishes ``step`` in its own flag (release), then spins until every flag has reached
    ``step`` (acquire). A per-program flag rather than one shared counter: the store is idempotent, so it
    does not matter how many threads of the program execute it.
    """
    tl.debug_barrier()
    tl.atomic_xchg(flags_ptr + pid, step, sem="release", scope="gpu")
    slowest = _slowest_flag(flags_ptr, n_prog, step, NPROG_P2)
    while slowest < step:  # only a scalar is carried: a carried tensor trips a layout pass
        slowest = _slowest_flag(flags_ptr, n_prog, step, NPROG_P2)
    tl.debug_barrier()


@triton.jit
def _slowest_flag(flags_ptr, n_prog, step, NPROG_P2: tl.constexpr):
    offs = tl.arange(0, NPROG_P2)
    live = offs < n_prog
    seen = tl.atomic_add(flags_ptr + offs, 0, mask=live, sem="acquire", scope="gpu")
    return tl.min(tl.where(live, seen, step), axis=0)


@triton.jit
def _load_shared(ptr, mask, SPLIT: tl.constexpr):
    # Data written by other programs in split mode: read through L2 (skip the possibly stale L1).
    if SPLIT:
        return tl.load(ptr, mask=mask, other=0.0, cache_modifier=".cg")
    else:
        return tl.load(ptr, mask=mask, other=0.0)


@triton.jit
def _row_stats(base, rows, rmask, N, ROW_STRIDE, BB: tl.constexpr, BH: tl.constexpr):
    """Mean and 1/std (eps = 1e-5, biased variance, as F.layer_norm) of rows ``rows`` of a (·, ROW_STRIDE)
    fp32 buffer over its first N columns; two passes (exact enough in fp32, unlike E[x²] − E[x]²)."""
    s1 = tl.zeros((BB,), dtype=tl.float32)
    for j0 in range(0, N, BH):
        cols = j0 + tl.arange(0, BH)
        m2 = rmask[:, None] & (cols < N)[None, :]
        s1 += tl.sum(tl.load(base + rows[:, None] * ROW_STRIDE + cols[None, :], mask=m2, other=0.0), axis=1)
    mean = s1 / N
    s2 = tl.zeros((BB,), dtype=tl.float32)
    for j0 in range(0, N, BH):
        cols = j0 + tl.arange(0, BH)
        m2 = rmask[:, None] & (cols < N)[None, :]
        d = tl.where(m2, tl.load(base + rows[:, None] * ROW_STRIDE + cols[None, :], mask=m2, other=0.0) - mean[:, None], 0.0)
        s2 += tl.sum(d * d, axis=1)
    return mean, 1.0 / tl.sqrt(s2 / N + 1e-5)


@triton.jit
def _ln_apply(x_ptrs, ln_ptr, feat, m2, fmask, mean, rstd, N):
    """gamma * (x - mean) * rstd + beta for the (BB, BH) block ``x_ptrs`` whose features are ``feat``;
    gamma at ln_ptr, beta at ln_ptr + N."""
    x = tl.load(x_ptrs, mask=m2, other=0.0)
    gamma = tl.load(ln_ptr + feat, mask=fmask, other=0.0)
    beta = tl.load(ln_ptr + N + feat, mask=fmask, other=0.0)
    return (x - mean[:, None]) * rstd[:, None] * gamma[None, :] + beta[None, :]


@triton.jit
def _ln_bwd_sums(r3, r4, da, live, hrow, ln_ptr, feat, fmask, mean, rstd):
    """Add Σ dŷ and Σ dŷ·ŷ of one gate block (dŷ = gamma * dgates, ŷ the normalised W_hh h) to r3, r4."""
    dy = tl.where(live, da, 0.0) * tl.load(ln_ptr + feat, mask=fmask, other=0.0)[None, :]
    yhat = (tl.load(hrow, mask=live, other=0.0) - mean[:, None]) * rstd[:, None]
    return r3 + tl.sum(dy, axis=1), r4 + tl.sum(tl.where(live, dy * yhat, 0.0), axis=1)


@triton.jit
def _gate_dots(acc_i, acc_f, acc_g, acc_o, z_rows, rmask, w_ptr, cols, cmask, K, G, H,
               GI: tl.constexpr, GF: tl.constexpr, GG: tl.constexpr, GO: tl.constexpr,
               BK: tl.constexpr, DOT_PREC: tl.constexpr, SPLIT: tl.constexpr):  # fmt: skip
    """The recurrent product of one (BB, BH) column block: add z W[:, gate block + cols] to each gate's
    accumulator, z the rows ``z_rows`` (row pointers into the (B, K) recurrent input) over all K."""
    for k0 in range(0, K, BK):
        ks = k0 + tl.arange(0, BK)
        kmask = ks < K
        zp = _load_shared(z_rows + ks[None, :], rmask[:, None] & kmask[None, :], SPLIT)
        wrow = w_ptr + ks[:, None] * G + cols[None, :]
        wm = kmask[:, None] & cmask[None, :]
        if GI >= 0:
            acc_i += tl.dot(zp, tl.load(wrow + GI * H, mask=wm, other=0.0), input_precision=DOT_PREC)
        if GF >= 0:
            acc_f += tl.dot(zp, tl.load(wrow + GF * H, mask=wm, other=0.0), input_precision=DOT_PREC)
        acc_g += tl.dot(zp, tl.load(wrow + GG * H, mask=wm, other=0.0), input_precision=DOT_PREC)
        if GO >= 0:
            acc_o += tl.dot(zp, tl.load(wrow + GO * H, mask=wm, other=0.0), input_precision=DOT_PREC)
    return acc_i, acc_f, acc_g, acc_o


@triton.jit
def _ln_fwd_hidden(z_cur, w_ptr, hg_t, rows, rmask, B, H, K, G,
                   GI: tl.constexpr, GF: tl.constexpr, GG: tl.constexpr, GO: tl.constexpr,
                   BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, DOT_PREC: tl.constexpr):  # fmt: skip
    """LN: W_hh h_{t-1} for every gate row into ``hg_t`` (B, G), and its mean and 1/std per batch row."""
    for j0 in range(0, H, BH):
        cols = j0 + tl.arange(0, BH)
        cmask = cols < H
        m2 = rmask[:, None] & cmask[None, :]
        acc_i = tl.zeros((BB, BH), dtype=tl.float32)
        acc_f = tl.zeros((BB, BH), dtype=tl.float32)
        acc_g = tl.zeros((BB, BH), dtype=tl.float32)
        acc_o = tl.zeros((BB, BH), dtype=tl.float32)
        acc_i, acc_f, acc_g, acc_o = _gate_dots(acc_i, acc_f, acc_g, acc_o, z_cur + rows[:, None] * K, rmask, w_ptr,
                                                cols, cmask, K, G, H, GI, GF, GG, GO, BK, DOT_PREC, False)  # fmt: skip
        hrow = hg_t + rows[:, None] * G + cols[None, :]
        if GI >= 0:
            tl.store(hrow + GI * H, acc_i, mask=m2)
        if GF >= 0:
            tl.store(hrow + GF * H, acc_f, mask=m2)
        tl.store(hrow + GG * H, acc_g, mask=m2)
        if GO >= 0:
            tl.store(hrow + GO * H, acc_o, mask=m2)
    tl.debug_barrier()
    return _row_stats(hg_t, rows, rmask, G, G, BB, BH)


# T, B and the program count are not specialised on (÷16 / ==1): they change with every shape and do not
# enter the alignment of any row. H, K, G are (÷16 lets loads vectorise), so a variant × dtype × mode (× LN)
# compiles once per tile size and H ÷ 16 class — ~300 kernels for the whole GPU check, not a set per shape.
_SIZES = ["T", "B", "n_prog", "step_lo", "step_hi", "phases"]


@triton.jit(do_not_specialize=_SIZES)
def lstm_fwd_kernel(
    xg_ptr,  # (T, B, G) dtype: W_ih x + biases for every step
    w_ptr,  # (K, G) dtype: the recurrent matrix, transposed ([W_hh | W_fgr]^T)
    peep_ptr,  # (3, H) fp32: peephole weights of i, f, o (zeros where absent)
    len_ptr,  # (B,) int32
    z_ptr,  # (2, B, K) dtype: recurrent input double buffer; slot 0 holds the initial state
    out_ptr,  # (T, B, H) dtype
    act_ptr,  # (T, B, G) fp32: gate activations, saved for backward
    c_ptr,  # (T + 1, B, H) fp32: c_ptr[0] = c0, c_ptr[t + 1] = cell state after step t
    flags_ptr,  # (n_prog,) int32 grid-barrier flags (split mode)
    hg_ptr,  # LN: (T, B, G) fp32: W_hh h_{t-1} before its layer norm (saved for backward)
    ln_ptr,  # LN: fp32 [gamma_hh (G), beta_hh (G), gamma_cell (H), beta_cell (H)]
    stats_ptr,  # LN: (T, B, 4) fp32: mean and 1/std of W_hh h_{t-1} and of c_t
    whr_ptr,  # PROJ: (H, P) dtype: the projection W_hr, transposed
    co_ptr,  # PROJ: (T, B, H) dtype: o ⊙ act(c_t) before the projection (saved for backward)
    T, B, H, K, G, HPP, n_prog,
    step_lo, step_hi, phases,  # steps [step_lo, step_hi) of the loop; phases: unused here (see backward)
    P, ZPP,  # PROJ: h's size P (= K); unused otherwise
    GI: tl.constexpr, GF: tl.constexpr, GG: tl.constexpr, GO: tl.constexpr,
    PEEP: tl.constexpr, CAND_TANH: tl.constexpr, OUT_TANH: tl.constexpr, COUPLED: tl.constexpr,
    FGR: tl.constexpr, SPLIT: tl.constexpr, NPROG_P2: tl.constexpr,
    BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, DOT_PREC: tl.constexpr,
    NQ: tl.constexpr,  # unused here (the backward's column blocks); one option set for both kernels
    SYNC: tl.constexpr,  # False: the host launches one step (phase) at a time — split mode's logic, testable
    LN: tl.constexpr,  # layer norm (single mode, no FGR): three more passes over the units per step
    PROJ: tl.constexpr,  # projection h = W_hr (o ⊙ act(c)) (single mode, no FGR): one more pass per step
):  # fmt: skip
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BB + tl.arange(0, BB)
    rmask = rows < B
    n = tl.load(len_ptr + rows, mask=rmask, other=0)
    h_lo = pid_h * HPP
    for t in range(step_lo, step_hi):
        z_cur = z_ptr + (t % 2) * B * K
        z_nxt = z_ptr + ((t + 1) % 2) * B * K
        alive = (t < n)[:, None]
        if LN:
            mean_h, rstd_h = _ln_fwd_hidden(z_cur, w_ptr, hg_ptr + t * B * G, rows, rmask, B, H, K, G,
                                            GI, GF, GG, GO, BB, BH, BK, DOT_PREC)  # fmt: skip
            tl.store(stats_ptr + (t * B + rows) * 4, mean_h, mask=rmask)
            tl.store(stats_ptr + (t * B + rows) * 4 + 1, rstd_h, mask=rmask)
        for jj in range(0, HPP, BH):
            cols = h_lo + jj + tl.arange(0, BH)
            cmask = cols < H
            m2 = rmask[:, None] & cmask[None, :]
            xrow = xg_ptr + t * B * G + rows[:, None] * G + cols[None, :]
            acc_i = tl.zeros((BB, BH), dtype=tl.float32)
            acc_f = tl.zeros((BB, BH), dtype=tl.float32)
            acc_g = tl.zeros((BB, BH), dtype=tl.float32)
            acc_o = tl.zeros((BB, BH), dtype=tl.float32)
            if GI >= 0:
                acc_i = tl.load(xrow + GI * H, mask=m2, other=0.0).to(tl.float32)
            if GF >= 0:
                acc_f = tl.load(xrow + GF * H, mask=m2, other=0.0).to(tl.float32)
            acc_g = tl.load(xrow + GG * H, mask=m2, other=0.0).to(tl.float32)
            if GO >= 0:
                acc_o = tl.load(xrow + GO * H, mask=m2, other=0.0).to(tl.float32)
            if LN:
                hrow = hg_ptr + t * B * G + rows[:, None] * G + cols[None, :]
                if GI >= 0:
                    acc_i += _ln_apply(hrow + GI * H, ln_ptr, GI * H + cols, m2, cmask, mean_h, rstd_h, G)
                if GF >= 0:
                    acc_f += _ln_apply(hrow + GF * H, ln_ptr, GF * H + cols, m2, cmask, mean_h, rstd_h, G)
                acc_g += _ln_apply(hrow + GG * H, ln_ptr, GG * H + cols, m2, cmask, mean_h, rstd_h, G)
                if GO >= 0:
                    acc_o += _ln_apply(hrow + GO * H, ln_ptr, GO * H + cols, m2, cmask, mean_h, rstd_h, G)
            else:
                acc_i, acc_f, acc_g, acc_o = _gate_dots(acc_i, acc_f, acc_g, acc_o, z_cur + rows[:, None] * K, rmask,
                                                        w_ptr, cols, cmask, K, G, H, GI, GF, GG, GO, BK, DOT_PREC,
                                                        SPLIT)  # fmt: skip

            cp = tl.load(c_ptr + t * B * H + rows[:, None] * H + cols[None, :], mask=m2, other=0.0)
            one = tl.full((BB, BH), 1.0, tl.float32)
            ig = one
            fg = one
            og = one
            if GI >= 0:
                if PEEP:
                    acc_i += tl.load(peep_ptr + cols, mask=cmask, other=0.0)[None, :] * cp
                ig = _sigmoid(acc_i)
            if COUPLED:
                fg = 1.0 - ig
            elif GF >= 0:
                if PEEP:
                    acc_f += tl.load(peep_ptr + H + cols, mask=cmask, other=0.0)[None, :] * cp
                fg = _sigmoid(acc_f)
            if CAND_TANH:
                gg = _tanh(acc_g)
            else:
                gg = acc_g
            c_new = fg * cp + ig * gg
            if GO >= 0:
                if PEEP:  # the output peephole reads the new cell state
                    acc_o += tl.load(peep_ptr + 2 * H + cols, mask=cmask, other=0.0)[None, :] * c_new
                og = _sigmoid(acc_o)
            if not LN:  # with LN, h needs the statistics of the whole c_t row: after this loop
                if OUT_TANH:
                    h_new = og * _tanh(c_new)
                else:
                    h_new = og * c_new
            if PROJ and not LN:  # h is made from every unit's output: after this loop
                tl.store(co_ptr + t * B * H + rows[:, None] * H + cols[None, :], h_new.to(co_ptr.dtype.element_ty), mask=m2)
            elif not LN:
                h_old = tl.load(z_cur + rows[:, None] * K + cols[None, :], mask=m2, other=0.0)
                h_state = tl.where(alive, h_new.to(h_old.dtype), h_old)
                tl.store(z_nxt + rows[:, None] * K + cols[None, :], h_state, mask=m2)
                tl.store(out_ptr + t * B * H + rows[:, None] * H + cols[None, :], tl.where(alive, h_state, 0.0), mask=m2)
            tl.store(c_ptr + (t + 1) * B * H + rows[:, None] * H + cols[None, :], tl.where(alive, c_new, cp), mask=m2)
            arow = act_ptr + t * B * G + rows[:, None] * G + cols[None, :]
            if GI >= 0:
                tl.store(arow + GI * H, ig, mask=m2)
            if GF >= 0:
                tl.store(arow + GF * H, fg, mask=m2)
            tl.store(arow + GG * H, gg, mask=m2)
            if GO >= 0:
                tl.store(arow + GO * H, og, mask=m2)
            if FGR:  # the gate part of the recurrent state, frozen like h and c past a sequence's end
                zrow = rows[:, None] * K + H + cols[None, :]
                i_old = tl.load(z_cur + zrow, mask=m2, other=0.0)
                f_old = tl.load(z_cur + zrow + H, mask=m2, other=0.0)
                o_old = tl.load(z_cur + zrow + 2 * H, mask=m2, other=0.0)
                tl.store(z_nxt + zrow, tl.where(alive, ig.to(i_old.dtype), i_old), mask=m2)
                tl.store(z_nxt + zrow + H, tl.where(alive, fg.to(f_old.dtype), f_old), mask=m2)
                tl.store(z_nxt + zrow + 2 * H, tl.where(alive, og.to(o_old.dtype), o_old), mask=m2)
        if LN:
            tl.debug_barrier()
            c_row = c_ptr + (t + 1) * B * H
            mean_c, rstd_c = _row_stats(c_row, rows, rmask, H, H, BB, BH)
            tl.store(stats_ptr + (t * B + rows) * 4 + 2, mean_c, mask=rmask)
            tl.store(stats_ptr + (t * B + rows) * 4 + 3, rstd_c, mask=rmask)
            for jj in range(0, HPP, BH):
                cols = jj + tl.arange(0, BH)
                cmask = cols < H
                m2 = rmask[:, None] & cmask[None, :]
                cn = _ln_apply(c_row + rows[:, None] * H + cols[None, :], ln_ptr + 2 * G, cols, m2, cmask,
                               mean_c, rstd_c, H)  # fmt: skip
                og = tl.full((BB, BH), 1.0, tl.float32)
                if GO >= 0:
                    og = tl.load(act_ptr + t * B * G + rows[:, None] * G + GO * H + cols[None, :], mask=m2, other=0.0)
                if OUT_TANH:
                    h_new = og * _tanh(cn)
                else:
                    h_new = og * cn
                if PROJ:
                    tl.store(co_ptr + t * B * H + rows[:, None] * H + cols[None, :], h_new.to(co_ptr.dtype.element_ty),
                             mask=m2)  # fmt: skip
                else:
                    h_old = tl.load(z_cur + rows[:, None] * K + cols[None, :], mask=m2, other=0.0)
                    h_state = tl.where(alive, h_new.to(h_old.dtype), h_old)
                    tl.store(z_nxt + rows[:, None] * K + cols[None, :], h_state, mask=m2)
                    tl.store(out_ptr + t * B * H + rows[:, None] * H + cols[None, :], tl.where(alive, h_state, 0.0),
                             mask=m2)  # fmt: skip
        if PROJ:  # h_t = W_hr (o ⊙ act(c_t)): a P-vector, the recurrent input and the output
            tl.debug_barrier()
            for p0 in range(0, ZPP, BH):
                pc = p0 + tl.arange(0, BH)
                pmask = pc < P
                m2 = rmask[:, None] & pmask[None, :]
                acc = tl.zeros((BB, BH), dtype=tl.float32)
                for k0 in range(0, H, BK):
                    ks = k0 + tl.arange(0, BK)
                    kmask = ks < H
                    co = tl.load(co_ptr + t * B * H + rows[:, None] * H + ks[None, :], mask=rmask[:, None] & kmask[None, :],
                                 other=0.0)  # fmt: skip
                    wt = tl.load(whr_ptr + ks[:, None] * P + pc[None, :], mask=kmask[:, None] & pmask[None, :], other=0.0)
                    acc += tl.dot(co, wt, input_precision=DOT_PREC)
                h_old = tl.load(z_cur + rows[:, None] * K + pc[None, :], mask=m2, other=0.0)
                h_state = tl.where(alive, acc.to(h_old.dtype), h_old)
                tl.store(z_nxt + rows[:, None] * K + pc[None, :], h_state, mask=m2)
                tl.store(out_ptr + t * B * P + rows[:, None] * P + pc[None, :], tl.where(alive, h_state, 0.0), mask=m2)
        if SPLIT and SYNC:
            _grid_sync(flags_ptr, pid_b * tl.num_programs(1) + pid_h, n_prog, t + 1, NPROG_P2)
        else:
            tl.debug_barrier()


@triton.jit(do_not_specialize=_SIZES)
def lstm_bwd_kernel(
    w_ptr,  # (G, K) dtype: the recurrent matrix [W_hh | W_fgr]
    peep_ptr,  # (3, H) fp32
    len_ptr,  # (B,) int32
    act_ptr,  # (T, B, G) fp32 from the forward
    c_ptr,  # (T + 1, B, H) fp32 from the forward
    dout_ptr,  # (T, B, H) dtype: gradient of the outputs
    dz_ptr,  # (B, K) fp32: in: [dh_n, 0]; carried; out: gradient of z_0 ([dh0, ·])
    dc_ptr,  # (B, H) fp32: in: dc_n; out: dc0
    dg_ptr,  # (T, B, G) dtype: out: gradient of the pre-activations of every step
    flags_ptr,
    hg_ptr,  # LN: (T, B, G) fp32 from the forward: W_hh h_{t-1} before its layer norm
    ln_ptr,  # LN: fp32 [gamma_hh, beta_hh, gamma_cell, beta_cell]
    stats_ptr,  # LN: (T, B, 4) fp32 from the forward
    dcn_ptr,  # LN: (T, B, H) fp32 out: gradient of LN(c_t) (for the cell norm's gamma and beta)
    dhg_ptr,  # LN: (T, B, G) dtype out: gradient of W_hh h_{t-1} (what dz and dW_hh are made from)
    whr_ptr,  # PROJ: (P, H) dtype: W_hr
    dhp_ptr,  # PROJ: (T, B, P) dtype out: gradient of h_t (zero past a sequence's end), for dW_hr
    dco_ptr,  # PROJ: (T, B, H) fp32 scratch: gradient of o ⊙ act(c_t)
    T, B, H, K, G, HPP, n_prog,
    step_lo, step_hi, phases,  # backward steps s = T-1-t in [step_lo, step_hi); phases: 1 cell, 2 dz, 3 both
    P, ZPP,  # PROJ: h's size P; z columns per program (= HPP without a projection)
    GI: tl.constexpr, GF: tl.constexpr, GG: tl.constexpr, GO: tl.constexpr,
    PEEP: tl.constexpr, CAND_TANH: tl.constexpr, OUT_TANH: tl.constexpr, COUPLED: tl.constexpr,
    FGR: tl.constexpr, SPLIT: tl.constexpr, NPROG_P2: tl.constexpr,
    BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, DOT_PREC: tl.constexpr, NQ: tl.constexpr,
    SYNC: tl.constexpr, LN: tl.constexpr, PROJ: tl.constexpr,
):  # fmt: skip
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BB + tl.arange(0, BB)
    rmask = rows < B
    n = tl.load(len_ptr + rows, mask=rmask, other=0)
    h_lo = pid_h * HPP
    if LN:  # what phase 2 multiplies by W: the gradient of W_hh h (after the norm's backward) or of the gates
        dsrc = dhg_ptr
    else:
        dsrc = dg_ptr
    for s in range(step_lo, step_hi):
        t = T - 1 - s
        alive = (t < n)[:, None]
        if (phases & 1) != 0:
            if PROJ:  # d h_t (P) -> d(o ⊙ act(c_t)) (H) = d h_t W_hr, before the cell's backward
                for p0 in range(0, ZPP, BH):
                    pc = p0 + tl.arange(0, BH)
                    m2 = rmask[:, None] & (pc < P)[None, :]
                    dh = tl.load(dz_ptr + rows[:, None] * K + pc[None, :], mask=m2, other=0.0)
                    dh += tl.load(dout_ptr + t * B * P + rows[:, None] * P + pc[None, :], mask=m2, other=0.0).to(tl.float32)
                    dh = tl.where(alive, dh, 0.0)
                    tl.store(dhp_ptr + t * B * P + rows[:, None] * P + pc[None, :], dh.to(dhp_ptr.dtype.element_ty), mask=m2)
                tl.debug_barrier()
                for jj in range(0, HPP, BH):
                    cols = jj + tl.arange(0, BH)
                    cmask = cols < H
                    acc = tl.zeros((BB, BH), dtype=tl.float32)
                    for k0 in range(0, P, BK):
                        ks = k0 + tl.arange(0, BK)
                        kmask = ks < P
                        dhp = tl.load(dhp_ptr + t * B * P + rows[:, None] * P + ks[None, :],
                                      mask=rmask[:, None] & kmask[None, :], other=0.0)  # fmt: skip
                        w = tl.load(whr_ptr + ks[:, None] * H + cols[None, :], mask=kmask[:, None] & cmask[None, :],
                                    other=0.0)  # fmt: skip
                        acc += tl.dot(dhp, w, input_precision=DOT_PREC)
                    tl.store(dco_ptr + t * B * H + rows[:, None] * H + cols[None, :], acc,
                             mask=rmask[:, None] & cmask[None, :])  # fmt: skip
                tl.debug_barrier()
            if LN:  # the cell norm's backward needs two sums over the whole row first
                mean_c = tl.load(stats_ptr + (t * B + rows) * 4 + 2, mask=rmask, other=0.0)
                rstd_c = tl.load(stats_ptr + (t * B + rows) * 4 + 3, mask=rmask, other=0.0)
                r1 = tl.zeros((BB,), dtype=tl.float32)
                r2 = tl.zeros((BB,), dtype=tl.float32)
                for jj in range(0, HPP, BH):
                    cols = jj + tl.arange(0, BH)
                    cmask = cols < H
                    m2 = rmask[:, None] & cmask[None, :]
                    hh = rows[:, None] * H + cols[None, :]
                    if PROJ:
                        dh = tl.load(dco_ptr + t * B * H + hh, mask=m2, other=0.0)
                    else:
                        dh = tl.load(dz_ptr + rows[:, None] * K + cols[None, :], mask=m2, other=0.0)
                        dh += tl.where(alive, tl.load(dout_ptr + t * B * H + hh, mask=m2, other=0.0).to(tl.float32), 0.0)
                    og = tl.full((BB, BH), 1.0, tl.float32)
                    if GO >= 0:
                        og = tl.load(act_ptr + t * B * G + rows[:, None] * G + GO * H + cols[None, :], mask=m2,
                                     other=0.0)  # fmt: skip
                    chat = (tl.load(c_ptr + (t + 1) * B * H + hh, mask=m2, other=0.0) - mean_c[:, None]) * rstd_c[:, None]
                    gam = tl.load(ln_ptr + 2 * G + cols, mask=cmask, other=0.0)[None, :]
                    cn = chat * gam + tl.load(ln_ptr + 2 * G + H + cols, mask=cmask, other=0.0)[None, :]
                    if OUT_TANH:
                        a = _tanh(cn)
                        dcn = dh * og * (1.0 - a * a)
                    else:
                        dcn = dh * og
                    dcn = tl.where(alive & m2, dcn, 0.0)
                    tl.store(dcn_ptr + t * B * H + hh, dcn, mask=m2)
                    r1 += tl.sum(dcn * gam, axis=1)
                    r2 += tl.sum(dcn * gam * chat, axis=1)
                r1 = r1 / H
                r2 = r2 / H
                mean_h = tl.load(stats_ptr + (t * B + rows) * 4, mask=rmask, other=0.0)
                rstd_h = tl.load(stats_ptr + (t * B + rows) * 4 + 1, mask=rmask, other=0.0)
                r3 = tl.zeros((BB,), dtype=tl.float32)
                r4 = tl.zeros((BB,), dtype=tl.float32)
                tl.debug_barrier()
            # Phase 1: the cell's backward for this program's units -> dgates_t.
            for jj in range(0, HPP, BH):
                cols = h_lo + jj + tl.arange(0, BH)
                cmask = cols < H
                m2 = rmask[:, None] & cmask[None, :]
                hh = rows[:, None] * H + cols[None, :]
                if PROJ:
                    dh = tl.load(dco_ptr + t * B * H + hh, mask=m2, other=0.0)
                else:
                    dh = _load_shared(dz_ptr + rows[:, None] * K + cols[None, :], m2, SPLIT)
                    dh += tl.where(alive, tl.load(dout_ptr + t * B * H + hh, mask=m2, other=0.0).to(tl.float32), 0.0)
                dc_in = tl.load(dc_ptr + hh, mask=m2, other=0.0)
                cp = tl.load(c_ptr + t * B * H + hh, mask=m2, other=0.0)
                ct = tl.load(c_ptr + (t + 1) * B * H + hh, mask=m2, other=0.0)
                arow = act_ptr + t * B * G + rows[:, None] * G + cols[None, :]
                one = tl.full((BB, BH), 1.0, tl.float32)
                ig = one
                fg = one
                og = one
                if GI >= 0:
                    ig = tl.load(arow + GI * H, mask=m2, other=0.0)
                if COUPLED:
                    fg = 1.0 - ig
                elif GF >= 0:
                    fg = tl.load(arow + GF * H, mask=m2, other=0.0)
                gg = tl.load(arow + GG * H, mask=m2, other=0.0)
                if GO >= 0:
                    og = tl.load(arow + GO * H, mask=m2, other=0.0)

                if LN:  # h = o * act(LN(c)): the norm's backward, with the row sums from above
                    chat = (ct - mean_c[:, None]) * rstd_c[:, None]
                    gam = tl.load(ln_ptr + 2 * G + cols, mask=cmask, other=0.0)[None, :]
                    cn = chat * gam + tl.load(ln_ptr + 2 * G + H + cols, mask=cmask, other=0.0)[None, :]
                    if OUT_TANH:
                        cn = _tanh(cn)
                    dchat = tl.load(dcn_ptr + t * B * H + hh, mask=m2, other=0.0) * gam
                    dc = dc_in + rstd_c[:, None] * (dchat - r1[:, None] - chat * r2[:, None])
                elif OUT_TANH:
                    cn = _tanh(ct)
                    dc = dc_in + dh * og * (1.0 - cn * cn)
                else:
                    cn = ct
                    dc = dc_in + dh * og
                d_i = tl.zeros((BB, BH), dtype=tl.float32)
                d_f = tl.zeros((BB, BH), dtype=tl.float32)
                d_o = dh * cn
                if FGR:  # i, f, o of step t also fed step t + 1 through W_fgr
                    zrow = rows[:, None] * K + H + cols[None, :]
                    d_i = _load_shared(dz_ptr + zrow, m2, SPLIT)
                    d_f = _load_shared(dz_ptr + zrow + H, m2, SPLIT)
                    d_o += _load_shared(dz_ptr + zrow + 2 * H, m2, SPLIT)
                da_o = d_o * og * (1.0 - og)
                if PEEP and GO >= 0:  # o read the new cell state
                    dc += da_o * tl.load(peep_ptr + 2 * H + cols, mask=cmask, other=0.0)[None, :]
                d_i += dc * gg
                d_f += dc * cp
                if COUPLED:
                    d_i -= d_f  # f = 1 - i
                dcp = dc * fg
                if CAND_TANH:
                    da_g = dc * ig * (1.0 - gg * gg)
                else:
                    da_g = dc * ig
                da_i = d_i * ig * (1.0 - ig)
                da_f = d_f * fg * (1.0 - fg)
                if PEEP:
                    if GI >= 0:
                        dcp += da_i * tl.load(peep_ptr + cols, mask=cmask, other=0.0)[None, :]
                    if GF >= 0:
                        dcp += da_f * tl.load(peep_ptr + H + cols, mask=cmask, other=0.0)[None, :]
                drow = dg_ptr + t * B * G + rows[:, None] * G + cols[None, :]
                if GI >= 0:
                    tl.store(drow + GI * H, tl.where(alive, da_i, 0.0).to(dg_ptr.dtype.element_ty), mask=m2)
                if GF >= 0:
                    tl.store(drow + GF * H, tl.where(alive, da_f, 0.0).to(dg_ptr.dtype.element_ty), mask=m2)
                tl.store(drow + GG * H, tl.where(alive, da_g, 0.0).to(dg_ptr.dtype.element_ty), mask=m2)
                if GO >= 0:
                    tl.store(drow + GO * H, tl.where(alive, da_o, 0.0).to(dg_ptr.dtype.element_ty), mask=m2)
                tl.store(dc_ptr + hh, tl.where(alive, dcp, dc_in), mask=m2)
                if LN:  # sums for the backward of the recurrent norm (over all G rows)
                    hrow = hg_ptr + t * B * G + rows[:, None] * G + cols[None, :]
                    if GI >= 0:
                        r3, r4 = _ln_bwd_sums(r3, r4, da_i, alive & m2, hrow + GI * H, ln_ptr, GI * H + cols, cmask,
                                              mean_h, rstd_h)  # fmt: skip
                    if GF >= 0:
                        r3, r4 = _ln_bwd_sums(r3, r4, da_f, alive & m2, hrow + GF * H, ln_ptr, GF * H + cols, cmask,
                                              mean_h, rstd_h)  # fmt: skip
                    r3, r4 = _ln_bwd_sums(r3, r4, da_g, alive & m2, hrow + GG * H, ln_ptr, GG * H + cols, cmask,
                                          mean_h, rstd_h)  # fmt: skip
                    if GO >= 0:
                        r3, r4 = _ln_bwd_sums(r3, r4, da_o, alive & m2, hrow + GO * H, ln_ptr, GO * H + cols, cmask,
                                              mean_h, rstd_h)  # fmt: skip
            if LN:  # d(W_hh h) = rstd * (dŷ - mean(dŷ) - ŷ mean(dŷ ŷ)), dŷ = gamma * dgates
                tl.debug_barrier()
                r3 = r3 / G
                r4 = r4 / G
                for g0 in range(0, G, BH):
                    feat = g0 + tl.arange(0, BH)
                    fmask = feat < G
                    m2 = rmask[:, None] & fmask[None, :]
                    off = t * B * G + rows[:, None] * G + feat[None, :]
                    yhat = (tl.load(hg_ptr + off, mask=m2, other=0.0) - mean_h[:, None]) * rstd_h[:, None]
                    dy = tl.load(dg_ptr + off, mask=m2, other=0.0).to(tl.float32)
                    dy = dy * tl.load(ln_ptr + feat, mask=fmask, other=0.0)[None, :]
                    dhg = rstd_h[:, None] * (dy - r3[:, None] - yhat * r4[:, None])
                    tl.store(dhg_ptr + off, dhg.to(dhg_ptr.dtype.element_ty), mask=m2)
        # Phase 2 reads every program's dgates_t.
        if SPLIT and SYNC:
            _grid_sync(flags_ptr, pid_b * tl.num_programs(1) + pid_h, n_prog, s + 1, NPROG_P2)
        else:
            tl.debug_barrier()
        if (phases & 2) != 0:
            # Phase 2: dz_{t-1} = dgates_t @ W for this program's columns (all NQ blocks of them).
            for q in range(NQ):  # z = [h; i; f; o] blocks of width H (FGR), or h alone (width H, or P)
                for jj in range(0, ZPP, BH):
                    cols = pid_h * ZPP + jj + tl.arange(0, BH)
                    cmask = cols < K // NQ
                    m2 = rmask[:, None] & cmask[None, :]
                    acc = tl.zeros((BB, BH), dtype=tl.float32)
                    for g0 in range(0, G, BK):
                        gs = g0 + tl.arange(0, BK)
                        gmask = gs < G
                        dgt = _load_shared(
                            dsrc + t * B * G + rows[:, None] * G + gs[None, :], rmask[:, None] & gmask[None, :], SPLIT
                        )
                        w = tl.load(w_ptr + gs[:, None] * K + q * (K // NQ) + cols[None, :], mask=gmask[:, None] & cmask[None, :],
                                    other=0.0)  # fmt: skip
                        acc += tl.dot(dgt, w, input_precision=DOT_PREC)
                    zaddr = dz_ptr + rows[:, None] * K + q * (K // NQ) + cols[None, :]
                    # Past a sequence's end the state was copied through: so is its gradient.
                    tl.store(zaddr, tl.where(alive, acc, tl.load(zaddr, mask=m2, other=0.0)), mask=m2)
        # Each program reads back only its own columns of dz and dc: a CTA barrier suffices.
        tl.debug_barrier()


def _patch_interpreter_for_numpy2() -> None:
    """Let the Triton interpreter use a runtime int as a loop bound under NumPy ≥ 2.4.

    The interpreter stores scalars as one-element arrays and converts them with ``int(array)``, which
    NumPy 2.4 refuses for arrays with a dimension; ``.item()`` works for both. Interpreter only.
    """
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_lstmkit_patched", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._lstmkit_patched = True
    interpreter._patch_lang_tensor = patched


if triton.knobs.runtime.interpret:
    _patch_interpreter_for_numpy2()
