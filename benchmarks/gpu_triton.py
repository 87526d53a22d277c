"""GPU benchmark of the Triton backend against cuDNN (torch.nn.LSTM), side by side in one run.

Times forward and forward+backward (median of ``triton.testing.do_bench``; warm-up and compilation
excluded) of one layer with I = H over the issue's (B, T, H) grid, for cuDNN's standard cell (fp32 with
torch's default TF32 setting, bf16, fp16) and for ``lstmkit.LSTM(backend="triton")`` with every variant.
Before a variant is timed in split mode, its output and gradients are checked against single mode; a
disagreement or error is printed as FAIL and that row falls back to single mode.

    python benchmarks/gpu_triton.py                 # everything the time budget allows (rows in priority order)
    python benchmarks/gpu_triton.py --quick         # standard + peephole + cifg + fgr only
    python benchmarks/gpu_triton.py --precompile 12 # compile every kernel in 12 processes, then exit

Writes JSON to ``$OUT/gpu_triton.json`` when ``OUT`` is set (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import traceback

import torch

SHAPES = [(32, 50, 50), (16, 1024, 128), (16, 1024, 256), (8, 2048, 64), (64, 256, 256), (256, 100, 128), (16, 1024, 768)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ALL_VARIANTS = ["standard", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
QUICK_VARIANTS = ["standard", "peephole", "cifg", "fgr"]
ROW_LIMIT_S = 90.0  # a row running longer than this is taken for a hung kernel: print what we have and exit


def log(msg: str) -> None:
    print(msg, flush=True)


def bench(fn) -> float:
    """Median milliseconds of ``fn`` (already compiled by a first call)."""
    import triton.testing

    fn()
    torch.cuda.synchronize()
    return float(triton.testing.do_bench(fn, warmup=10, rep=60, return_mode="median"))


def set_mode(mode: str) -> None:
    os.environ["LSTMKIT_TRITON_MODE"] = mode


def make_inputs(B, T, H, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(T, B, H, device="cuda", dtype=dtype, generator=g).requires_grad_()
    dy = torch.randn(T, B, H, device="cuda", dtype=dtype, generator=g)
    return x, dy


def time_module(m, x, dy):
    params = [p for p in m.parameters()]

    def fwd():
        return m(x)[0]

    def fwd_bwd():
        out = m(x)[0]
        torch.autograd.grad(out, [x, *params], dy[..., : out.shape[-1]])

    return bench(fwd), bench(fwd_bwd)


def cudnn_row(B, T, H, dname):
    torch.manual_seed(0)
    m = torch.nn.LSTM(H, H).cuda().to(DTYPES[dname])
    x, dy = make_inputs(B, T, H, DTYPES[dname])
    return time_module(m, x, dy)


def triton_module(variant, H, dtype):
    """``variant`` may carry ``+ln`` (layer normalisation) and ``+proj`` (proj_size = 0.4 H)."""
    import lstmkit

    torch.manual_seed(0)
    name, *extras = variant.split("+")
    proj = int(0.4 * H) if "proj" in extras else 0
    return lstmkit.LSTM(H, H, variant=name, layer_norm="ln" in extras, proj_size=proj, backend="triton").cuda().to(dtype)


def split_agrees(variant, dname, B, H) -> tuple[bool, str]:
    """Split vs single on a short sequence of this shape: outputs and gradients."""
    dtype = DTYPES[dname]
    m = triton_module(variant, H, dtype)
    x, dy = make_inputs(B, 12, H, dtype)
    res = {}
    for mode in ("single", "split"):
        set_mode(mode)
        out, (h, c) = m(x)
        grads = torch.autograd.grad(out, [x, *m.parameters()], dy)
        res[mode] = [out, h, c, *grads]
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    worst = 0.0
    for a, b in zip(res["split"], res["single"]):
        err = ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6)).item()
        worst = max(worst, err)
    return worst <= tol, f"max rel diff {worst:.1e} (tol {tol:.0e})"


def smoke() -> None:
    """Single and split mode, forward and backward, standard fp32 and bf16, against the float64 reference."""
    from lstmkit.core.backends.triton_lstm import make_direction
    from lstmkit.core.cells import VARIANTS, CellWeights
    from lstmkit.core.reference import RNNSpec, run_direction

    torch.manual_seed(0)
    B, T, I, H = 5, 40, 8, 100
    spec = RNNSpec("lstm", I, H, variant=VARIANTS["standard"])
    w64 = CellWeights(*(torch.randn(*s, device="cuda", dtype=torch.float64) * 0.15
                        for s in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]))  # fmt: skip
    x = torch.randn(T, B, I, device="cuda", dtype=torch.float64)
    h0 = torch.randn(B, H, device="cuda", dtype=torch.float64) * 0.3
    c0 = torch.randn(B, H, device="cuda", dtype=torch.float64) * 0.3
    lengths = torch.tensor([40, 3, 17, 40, 1])

    def run(fn, dtype):
        weights = [t for t in w64 if t is not None]  # w_ih, w_hh, b_ih, b_hh (the other fields are None)
        leaves = [t.to(dtype).requires_grad_() for t in (x, h0, c0, *weights)]
        out, h, c = fn(*leaves[:3], CellWeights(*leaves[3:]), spec, lengths.cuda())
        grads = torch.autograd.grad(out.float().sum() + h.float().sum() + c.float().sum(), leaves)
        return [out, h, c, *grads]

    ref = run(run_direction, torch.float64)
    failed = False
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 4e-2)):
        same = run(run_direction, dtype)  # torch's unfused ops in this dtype: the accuracy to match
        bound = max(tol, 2 * max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(same, ref)))
        for mode in ("single", "split"):
            t0 = time.time()
            got = run(make_direction(mode), dtype)
            torch.cuda.synchronize()
            err = max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(got, ref))
            ok = err <= bound  # NaN fails too
            failed |= not ok
            log(f"{'PASS' if ok else 'FAIL'} smoke {mode} {dtype}: max rel err {err:.1e} (bound {bound:.1e}, "
                f"{time.time() - t0:.1f} s incl. compile)")  # fmt: skip
    sys.exit(1 if failed else 0)


def split_fits(B, H) -> bool:
    from lstmkit.core.backends.triton_lstm import (
        SPLIT_MIN_PROGRAMS,
        plan,
        split_disabled,
    )

    if split_disabled():
        return False
    n_sm = torch.cuda.get_device_properties(0).multi_processor_count
    p = plan(B, H, True, n_sm)
    return SPLIT_MIN_PROGRAMS <= p.n_prog <= n_sm


def precompile_worker(jobs: list[tuple[str, str, str, list[int]]]) -> None:
    """Compile the kernels of (variant, dtype, mode) for the tile sizes of hidden sizes ``Hs`` by running a
    tiny forward+backward (fills Triton's disk cache, which the tests and the benchmark then read).

    H = 100 and 128 give the tiles of every benchmark shape and of the larger tests (the kernels specialise on
    H ÷ 16); H = 6 and 20 the smaller tiles of the interpreter-sized tests.
    """
    for variant, dname, mode, sizes in jobs:
        for H in sizes:
            try:
                set_mode(mode)
                m = triton_module(variant, H, DTYPES[dname])
                x, dy = make_inputs(5, 3, H, DTYPES[dname])
                out = m(x)[0]
                torch.autograd.grad(out, [x, *m.parameters()], dy[..., : out.shape[-1]])  # P < H with +proj
                torch.cuda.synchronize()
            except Exception as err:  # noqa: BLE001 — reported again, with context, where the kernel is used
                log(f"precompile FAIL {variant} {dname} {mode} H{H}: {type(err).__name__}: {str(err)[:300]}")


def precompile(n_proc: int, variants: list[str], dnames: list[str]) -> None:
    from lstmkit.core.backends.triton_lstm import split_disabled

    modes = ("single",) if split_disabled() else ("single", "split")
    jobs = [(v, d, m, [100, 128] + ([6] if (d, m) == ("fp32", "single") else [])) for v in variants
            for d in dnames for m in modes]  # fmt: skip
    jobs += [(v, "fp32", "emulate", [20]) for v in variants]  # the split-partition tests
    jobs += [(f"{v}+ln", d, "single", [100, 128] + ([6] if d == "fp32" else [])) for d in dnames
             for v in ("standard", "peephole", "cifg", "noaf")]  # fmt: skip
    jobs += [(f"{v}+proj", d, "single", [100]) for d in ("fp32", "bf16") for v in ("standard", "peephole")]
    jobs += [(f"{v}+ln+proj", d, "single", [100]) for d in ("fp32", "bf16") for v in ("standard", "peephole")]
    jobs.sort(key=lambda j: -len(j[3]))  # biggest first, dealt round-robin
    t0 = time.time()
    procs = []
    for k in range(n_proc):
        chunk = jobs[k::n_proc]
        if chunk:
            procs.append(subprocess.Popen([sys.executable, __file__, "--precompile-jobs", json.dumps(chunk)]))
    for p in procs:
        p.wait()
    n_kernels = 2 * sum(len(j[3]) for j in jobs)
    log(f"precompiled up to {n_kernels} kernels ({len(jobs)} variant/dtype/mode sets) in {n_proc} processes: "
        f"{time.time() - t0:.0f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="standard, peephole, cifg, fgr only")
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop timing new rows after this long")
    ap.add_argument("--precompile", type=int, default=0, metavar="N", help="compile in N processes, then exit")
    ap.add_argument("--precompile-jobs", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help="single vs split vs reference, standard cell; exit 1 on FAIL")
    ap.add_argument("--json", default=None)
    ap.add_argument("--variants", default=None, help="comma-separated variants (default: all, or --quick's)")
    ap.add_argument("--dtypes", default=None, help="comma-separated among fp32,bf16,fp16 (default: all)")
    ap.add_argument("--skip-single", action="store_true", help="no forced single-mode or layer-norm rows")
    args = ap.parse_args()
    variants = QUICK_VARIANTS if args.quick else ALL_VARIANTS
    if args.variants:
        variants = [v for v in args.variants.split(",") if v]
        unknown = sorted(set(variants) - set(ALL_VARIANTS))
        if unknown:
            ap.error(f"--variants: unknown {unknown}; use some of {ALL_VARIANTS}")
    dnames = list(DTYPES)
    if args.dtypes:
        dnames = [d for d in args.dtypes.split(",") if d]
        if set(dnames) - set(DTYPES):
            ap.error(f"--dtypes: use some of {list(DTYPES)}")

    if args.smoke:
        smoke()
        return
    if args.precompile_jobs:
        precompile_worker([tuple(j) for j in json.loads(args.precompile_jobs)])
        return
    if args.precompile:
        precompile(args.precompile, variants, dnames)
        return

    t_start = time.time()
    dev = torch.cuda.get_device_name(0)
    log(f"device {dev}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
        f"TF32 for cuDNN: {torch.backends.cudnn.allow_tf32}")  # fmt: skip
    results = []
    base: dict[tuple, tuple[float, float]] = {}
    split_ok: dict[tuple, bool] = {}
    skipped = 0

    # Priority order: cuDNN baselines, then the standard cell, then the variants (fp32 → bf16 → fp16).
    plan_rows = [("cudnn", "standard", d, s) for d in dnames for s in SHAPES]
    plan_rows += [("triton", "standard", d, s) for d in dnames for s in SHAPES]
    if not args.skip_single:
        plan_rows += [("triton-single", "standard", d, s) for d in ("fp32", "bf16") if d in dnames
                      for s in SHAPES if s[2] <= 256]  # fmt: skip
    plan_rows += [("triton", v, d, s) for d in dnames for v in variants if v != "standard" for s in SHAPES]
    if not args.skip_single:
        plan_rows += [("triton", "standard+ln", d, s) for d in ("fp32", "bf16") if d in dnames
                      for s in SHAPES if s[2] <= 256]  # fmt: skip

    json_path = args.json or (os.path.join(os.environ["OUT"], "gpu_triton.json") if os.environ.get("OUT") else None)

    def finish(code: int) -> None:
        summarise(results, dev)
        if json_path:
            with open(json_path, "w") as f:
                json.dump({"device": dev, "torch": torch.__version__, "rows": results}, f, indent=1)
            log(f"wrote {json_path}")
        sys.stdout.flush()
        if code:
            os._exit(code)

    def watchdog_fired(desc: str) -> None:  # runs in a timer thread while the main thread is stuck
        log(f"WATCHDOG: {desc} ran over {ROW_LIMIT_S:.0f} s (a hung kernel?); partial results follow")
        finish(3)

    for kind, variant, dname, (B, T, H) in plan_rows:
        if time.time() - t_start > args.budget_s:
            skipped += 1
            continue
        watchdog = threading.Timer(ROW_LIMIT_S, watchdog_fired, args=(f"{kind} {variant} {dname} B{B} T{T} H{H}",))
        watchdog.daemon = True
        watchdog.start()
        row = {"backend": kind, "variant": variant, "dtype": dname, "B": B, "T": T, "H": H}
        try:
            if kind == "cudnn":
                fwd, fb = cudnn_row(B, T, H, dname)
                base[(dname, B, T, H)] = (fwd, fb)
                row["mode"] = "cudnn"
            else:
                mode = "single"
                if kind == "triton" and "+" not in variant and split_fits(B, H):
                    key = (variant, dname)
                    if key not in split_ok:
                        ok, why = split_agrees(variant, dname, 5, 100)
                        split_ok[key] = ok
                        log(f"{'PASS' if ok else 'FAIL'} split == single: {variant} {dname} ({why})")
                    mode = "split" if split_ok[key] else "single"
                set_mode(mode)
                m = triton_module(variant, H, DTYPES[dname])
                x, dy = make_inputs(B, T, H, DTYPES[dname])
                fwd, fb = time_module(m, x, dy)
                row["mode"] = mode
            row.update(fwd_ms=fwd, fwd_bwd_ms=fb, fwd_us_step=1e3 * fwd / T, fwd_bwd_us_step=1e3 * fb / T)
            ref = base.get((dname, B, T, H))
            if ref and kind != "cudnn":
                row.update(ratio_fwd=fwd / ref[0], ratio_fwd_bwd=fb / ref[1])
            log(
                f"{kind:13s} {variant:9s} {dname} B{B:<3d} T{T:<4d} H{H:<3d} {row['mode']:6s} fwd {fwd:8.3f} ms "
                f"({row['fwd_us_step']:6.2f} us/step)  fwd+bwd {fb:8.3f} ms ({row['fwd_bwd_us_step']:6.2f} us/step)"
                + (f"  ratio vs cuDNN {row['ratio_fwd']:.2f} / {row['ratio_fwd_bwd']:.2f}" if "ratio_fwd" in row else "")
            )
        except Exception as err:  # noqa: BLE001 — one failing row must not stop the others
            row["error"] = f"{type(err).__name__}: {err}"
            log(f"FAIL {kind} {variant} {dname} B{B} T{T} H{H}: {type(err).__name__}: {str(err)[:400]}")
            traceback.print_exc(limit=3)
        watchdog.cancel()
        results.append(row)
        torch.cuda.empty_cache()
    if skipped:
        log(f"TIME GUARD: {skipped} rows skipped after {args.budget_s:.0f} s (rerun with a larger --budget-s "
            "or --quick; compiled kernels are cached on disk)")  # fmt: skip

    finish(0)
    sys.exit(1 if any("error" in r for r in results) else 0)


def summarise(results: list[dict], dev: str) -> None:
    ok = [r for r in results if "error" not in r]
    log("\n## BENCHMARKS.md rows (GPU: " + dev + "; ms, ratio = triton / cuDNN same dtype)")
    log("| variant | dtype | B | T | H | mode | fwd ms | fwd+bwd ms | µs/step fwd+bwd | ratio fwd | ratio fwd+bwd |")
    log("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ok:
        rf = f"{r['ratio_fwd']:.2f}" if "ratio_fwd" in r else "—"
        rb = f"{r['ratio_fwd_bwd']:.2f}" if "ratio_fwd_bwd" in r else "—"
        name = "cuDNN standard" if r["backend"] == "cudnn" else f"{r['variant']} ({r['backend']})"
        log(f"| {name} | {r['dtype']} | {r['B']} | {r['T']} | {r['H']} | {r['mode']} | {r['fwd_ms']:.3f} | "
            f"{r['fwd_bwd_ms']:.3f} | {r['fwd_bwd_us_step']:.2f} | {rf} | {rb} |")  # fmt: skip
    # Short summary last (only the tail of the output may come back): fwd+bwd ratio per variant × dtype.
    log("\n## SUMMARY: fwd+bwd time / cuDNN's (same dtype), per shape B-T-H; 'x' = error, '.' = not run")
    shapes = [f"{b}-{t}-{h}" for b, t, h in SHAPES]
    log(f"{'variant':15s} {'dtype':4s} " + " ".join(f"{s:>11s}" for s in shapes) + "   (x/single: single mode forced)")
    keys = sorted({(r["backend"], r["variant"], r["dtype"]) for r in results if r["backend"] != "cudnn"},
                  key=lambda k: (k[0] != "triton", "+" in k[1], ALL_VARIANTS.index(k[1].split("+")[0]),
                                 list(DTYPES).index(k[2])))  # fmt: skip
    for backend, v, d in keys:
        cells = []
        for b, t, h in SHAPES:
            r = next((r for r in results if r["backend"] == backend and r["variant"] == v and r["dtype"] == d
                      and (r["B"], r["T"], r["H"]) == (b, t, h)), None)  # fmt: skip
            cells.append("." if r is None else "x" if "error" in r else f"{r.get('ratio_fwd_bwd', float('nan')):.2f}")
        name = v if backend == "triton" else f"{v}/single"
        log(f"{name:15s} {d:4s} " + " ".join(f"{c:>11s}" for c in cells))
    errors = [r for r in results if "error" in r]
    for r in errors[:8]:
        log(f"  error {r['backend']} {r['variant']} {r['dtype']} B{r['B']} T{r['T']} H{r['H']}: {r['error'][:160]}")
    n_err = sum("error" in r for r in results)
    log(f"benchmark rows: {len(ok)} ok, {n_err} errors -> {'PASS' if n_err == 0 else 'FAIL'}")


if __name__ == "__main__":
    main()
