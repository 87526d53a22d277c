"""Wall time of every lstmkit recurrent layer × backend against ``torch.nn.LSTM``, timed in the same run.

For each size and each pass (``fwd``: inference under ``torch.no_grad()``; ``fwd+bwd``: forward, then
backward of the whole output sequence with a fixed upstream gradient) it times:

* every LSTM variant (``standard``, ``peephole``, ``nig``, ``nfg``, ``nog``, ``niaf``, ``noaf``, ``cifg``,
  ``fgr``) and the layer-normalised LSTM (``layer_norm``), with ``backend="auto"`` and every registered
  backend that can run the configuration on the device (``native``, ``cpu_fused``, ``triton``,
  ``reference``; ``--backends`` picks a subset);
* ``lstmkit.GRU`` and ``lstmkit.RNN`` (tanh) with the same backends, plus ``torch.nn.GRU``/``RNN``;
* the anchor ``torch.nn.LSTM`` of the same size (on CPU oneDNN / ATen; on ``--device cuda`` cuDNN, with
  ``flatten_parameters()``).

Sizes: ``seed``, ``large``, ``long`` (the default set, 2 layers) and the set ``issue6`` — issue 6's
(B, T, H) list with I = H and 1 layer. ``--sizes`` takes size names and set names.

Dtypes: ``--dtypes fp32,bf16,fp16`` (GPU: the modules converted with ``.to(dtype)``); the CPU runs
fp32 only and says so when asked for others.

Methodology: ``torch.set_num_threads(--threads)``; the anchor is warmed up for 1 s per size and
pass and each candidate for 0.3 s, then each
measurement times, one by one, enough back-to-back calls to last ``--min-time`` seconds; the anchor and
the candidate are measured alternately ``--repeat`` times (anchor, candidate, anchor, candidate, …) so
that background load hits both alike, and the table reports the **minimum** per-call time over all
repeats (the least disturbed call: on a shared machine other processes only ever add time; the median
is in ``--json``). The table's ratio is candidate-min / anchor-min, the
anchor's min taken over all its measurements at that size and pass (the anchor is measured once per
repeat of every row, so its min is the most reliable number in the run); the ratio to only the anchor
measurements interleaved with the row is printed while running and saved as ``ratio_paired``.
Before anything is timed, one 24 MB CPU tensor is allocated and freed (:func:`settle_allocator`):
glibc's malloc serves blocks above its mmap threshold (128 KB at start) with fresh ``mmap`` pages,
page-faulted on first touch, and raises that threshold to the size of the first large block freed.
``torch.nn.LSTM``'s CPU backward allocates many such blocks, so in a fresh process its forward+backward
at the seed's size took 5.5 ms on one thread and 2.5 ms once any large block had been freed — the
state of every real training process after its first batch, and the one both sides are timed in here.
Inputs are sequence-first (T, B, I). On CUDA every call is
bracketed by ``torch.cuda.synchronize()``. A row that fails prints its error and the run goes on.

Usage::

    python benchmarks/kernels.py                      # all sizes, all variants (≈ 12 min on 2 busy cores)
    python benchmarks/kernels.py --quick              # ≈ 1 min: 3 short repeats, seed size only
    python benchmarks/kernels.py --sizes seed --variants standard,gru --repeat 9 --json out.json
    python benchmarks/kernels.py --sizes seed,long --backends auto,cpu_fused --threads 1
    python benchmarks/kernels.py --device cuda --sizes issue6 --dtypes fp32,bf16 --backends auto,triton
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

import lstmkit


@dataclass(frozen=True)
class Size:
    name: str
    B: int
    T: int
    I: int
    H: int
    L: int

    def label(self) -> str:
        return f"B{self.B} T{self.T} I{self.I} H{self.H} L{self.L}"


SIZES = {
    "seed": Size("seed", 32, 50, 1, 50, 2),  # the seed article's example
    "large": Size("large", 32, 200, 32, 256, 2),
    "long": Size("long", 1, 1000, 1, 50, 2),  # one long sequence: per-step overhead dominates
}
# Issue 6's sizes: (B, T, H), I = H, one layer.
for _b, _t, _h in ((32, 50, 50), (16, 1024, 128), (16, 1024, 256), (8, 2048, 64), (64, 256, 256), (256, 100, 128),
                   (16, 1024, 768)):  # fmt: skip
    SIZES[f"b{_b}t{_t}h{_h}"] = Size(f"b{_b}t{_t}h{_h}", _b, _t, _h, _h, 1)
SIZE_SETS = {
    "default": ["seed", "large", "long"],
    "issue6": [n for n in SIZES if n.startswith("b")],
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LSTM_VARIANTS = ["standard", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
ALL_VARIANTS = [*LSTM_VARIANTS, "layer_norm", "gru", "rnn"]
BACKENDS = ["auto", "native", "triton", "cpu_fused", "reference"]  # the ones not registered are skipped


@dataclass
class Row:
    size: str
    shape: str
    device: str
    dtype: str
    variant: str
    backend: str  # requested backend ("auto→native" shows what auto chose), or "torch"
    pass_: str
    ms_min: float
    ms_median: float
    anchor_ms_min: float
    ratio: float  # ms_min / anchor_ms_min
    ratio_paired: float  # ms_min / min of the anchor measurements interleaved with this row only


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "torch": torch.__version__,
        "lstmkit": lstmkit.__version__,
        "python": platform.python_version(),
        "threads": str(torch.get_num_threads()),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
    }


def build(variant: str, backend: str, s: Size) -> nn.Module:
    """The lstmkit layer for ``variant`` (or ValueError when ``backend`` cannot run it)."""
    if variant == "gru":
        return lstmkit.GRU(s.I, s.H, s.L, backend=backend)
    if variant == "rnn":
        return lstmkit.RNN(s.I, s.H, s.L, backend=backend)
    if variant == "layer_norm":
        return lstmkit.LSTM(s.I, s.H, s.L, layer_norm=True, backend=backend)
    return lstmkit.LSTM(s.I, s.H, s.L, variant=variant, backend=backend)


def make_pass(module: nn.Module, x: torch.Tensor, pass_: str) -> Callable[[], None]:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    if pass_ == "fwd":

        def fwd() -> None:
            with torch.no_grad():
                module(x)
            sync()

        return fwd
    grad = torch.randn_like(module(x)[0])  # fixed upstream gradient of the output sequence

    def fwd_bwd() -> None:
        module.zero_grad(set_to_none=True)
        out = module(x)[0]
        out.backward(grad)
        sync()

    return fwd_bwd


def calls_per_measurement(fn: Callable[[], None], min_time: float) -> int:
    fn()
    warm_up(fn, 0.3)  # allocator, oneDNN primitive caches, lazy backend resolution
    one = min(measure(fn, 2))  # min: one call the scheduler interrupted must not set the count
    return max(1, int(min_time / max(one, 1e-9)))


def warm_up(fn: Callable[[], None], seconds: float) -> None:
    """Call ``fn`` for ``seconds``: a process's first oneDNN calls are slow (JIT, thread pool start-up)
    for much longer than one call (seconds on a loaded machine)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        fn()


def measure(fn: Callable[[], None], number: int) -> list[float]:
    """Seconds of each of ``number`` back-to-back calls (timed one by one: a call that the scheduler
    interrupted then spoils only itself, not the whole measurement)."""
    times = []
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()  # every pass ends synchronised (make_pass), so a call's time is its own
    for _ in range(number):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def interleaved(anchor, a_num, cand, c_num, repeat) -> tuple[list[float], list[float]]:
    """Per-call times of anchor and candidate, measured alternately ``repeat`` times."""
    a_times, c_times = [], []
    for _ in range(repeat):
        a_times += measure(anchor, a_num)
        c_times += measure(cand, c_num)
    return a_times, c_times


def candidates(variant: str, s: Size, x: torch.Tensor, backends: list[str]) -> list[tuple[str, nn.Module]]:
    """(label, layer) per backend that can run ``variant`` on ``x``'s device and dtype. ``auto`` runs the
    same code as the backend it resolves to, so that backend is timed once, labelled ``auto=native``,
    ``auto=cpu_fused``, …, and not again explicitly."""
    out, chosen = [], None
    for backend in backends:
        if backend == chosen:
            continue
        try:
            module = build(variant, backend, s).to(device=x.device, dtype=x.dtype)
            resolved = module._backend_for(x).name  # a backend that cannot run on this device says so here
        except ValueError:  # e.g. native with a variant, or a backend that is not registered
            continue
        label = backend
        if backend == "auto":
            chosen = resolved
            label = f"auto={chosen}"
        out.append((label, module))
    if variant in ("gru", "rnn"):  # torch's own, to compare lstmkit's native path like for like
        out.append(("torch", (nn.GRU if variant == "gru" else nn.RNN)(s.I, s.H, s.L).to(x.device, x.dtype)))
    return out


def anchor_lstm(s: Size, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """``torch.nn.LSTM`` of size ``s``: oneDNN / ATen on CPU, cuDNN (weights flattened) on CUDA."""
    module = nn.LSTM(s.I, s.H, s.L).to(device=device, dtype=dtype)
    if device.type == "cuda":
        module.flatten_parameters()
    return module


def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    device = torch.device(args.device)
    for size_name in args.sizes:
        s = SIZES[size_name]
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            print(f"\n{size_name}: {s.label()} · {device.type} {dtype_name}", flush=True)
            try:
                rows += run_size(args, s, device, dtype_name, dtype)
            except Exception as e:  # noqa: BLE001 — one size that cannot run (memory, dtype) must not end the run
                print(f"  {size_name} {dtype_name}: failed: {type(e).__name__}: {e}", flush=True)
    return rows


def run_size(args: argparse.Namespace, s: Size, device: torch.device, dtype_name: str, dtype: torch.dtype) -> list[Row]:
    rows: list[Row] = []
    torch.manual_seed(0)
    x = torch.randn(s.T, s.B, s.I, device=device, dtype=dtype)  # (T, B, I)
    anchor_module = anchor_lstm(s, device, dtype)
    where = (s.name, s.label(), device.type, dtype_name)
    for pass_ in ("fwd", "fwd+bwd"):
        anchor = make_pass(anchor_module, x, pass_)
        warm_up(anchor, 1.0)
        a_num = calls_per_measurement(anchor, args.min_time)
        all_anchor: list[float] = []
        size_rows: list[Row] = []
        for variant in args.variants:
            try:
                cands = candidates(variant, s, x, args.backends)
            except Exception as e:  # noqa: BLE001
                print(f"  {pass_:<8} {variant:<11} failed to build: {type(e).__name__}: {e}", flush=True)
                continue
            for label, module in cands:
                try:
                    cand = make_pass(module, x, pass_)
                    c_num = calls_per_measurement(cand, args.min_time)
                    a_times, c_times = interleaved(anchor, a_num, cand, c_num, args.repeat)
                except Exception as e:  # noqa: BLE001 — e.g. out of memory, a kernel that fails to compile
                    print(f"  {pass_:<8} {variant:<11} {label:<16} failed: {type(e).__name__}: {e}", flush=True)
                    continue
                all_anchor += a_times
                c_min, a_min = min(c_times) * 1e3, min(a_times) * 1e3
                row = Row(*where, variant, label, pass_, c_min, statistics.median(c_times) * 1e3, a_min,
                          c_min / a_min, c_min / a_min)  # fmt: skip
                size_rows.append(row)
                print(f"  {pass_:<8} {variant:<11} {label:<16} {c_min:10.3f} ms  {row.ratio_paired:7.2f}× (paired)",
                      flush=True)  # fmt: skip
        if not all_anchor:
            all_anchor = measure(anchor, a_num)
        # The anchor's best time over all its interleaved measurements is the least load-disturbed
        # estimate of its cost; every ratio in the table divides by it.
        a_min = min(all_anchor) * 1e3
        for row in size_rows:
            row.anchor_ms_min, row.ratio = a_min, row.ms_min / a_min
        rows.append(Row(*where, "torch.nn.LSTM", "torch", pass_, a_min, statistics.median(all_anchor) * 1e3, a_min,
                        1.0, 1.0))  # fmt: skip
        rows += size_rows
    return rows


def anchor_drift(rows: list[Row], limit: float = 1.2) -> list[str]:
    """One warning per size and pass whose anchor, timed alongside each candidate, was more than ``limit``
    times slower next to one candidate than next to another: the machine's speed changed during the
    run (a VM sharing its cores, say), and ratios against the anchor's overall minimum mix fast and slow
    periods. The paired ratios (each candidate against the anchor measured with it) hold up better."""
    paired: dict[tuple[str, str, str, str], list[float]] = {}
    for r in rows:
        if r.backend != "torch" and r.ratio_paired > 0:
            paired.setdefault((r.shape, r.device, r.dtype, r.pass_), []).append(r.ms_min / r.ratio_paired)
    out = []
    for (shape, device, dtype, pass_), times in paired.items():
        lo, hi = min(times), max(times)
        if hi > limit * lo:
            out.append(f"warning: {shape} {device} {dtype} {pass_}: torch.nn.LSTM took {lo:.3f} to {hi:.3f} ms "
                       "next to different candidates; the machine's speed changed during the run, so its "
                       "ratios are unreliable: rerun it (or compare the paired ratios)")  # fmt: skip
    return out


def table(rows: list[Row]) -> str:
    """Markdown table: one line per size × variant × backend, fwd and fwd+bwd side by side."""
    keyed: dict[tuple[str, str, str, str, str], dict[str, Row]] = {}
    for r in rows:
        keyed.setdefault((r.shape, r.device, r.dtype, r.variant, r.backend), {})[r.pass_] = r
    lines = [
        "| size | device | dtype | variant | backend | fwd ms | fwd × torch | fwd+bwd ms | fwd+bwd × torch |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for key, by_pass in keyed.items():
        cells = []
        for p in ("fwd", "fwd+bwd"):
            r = by_pass.get(p)
            cells += [f"{r.ms_min:.3f}", f"{r.ratio:.2f}"] if r else ["", ""]
        lines.append("| " + " | ".join(key) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", dest="sizes_given", metavar="SIZES", default=None,
                   help=f"comma-separated size names {list(SIZES)} or set names {list(SIZE_SETS)} "
                        "(default: the default set; seed only with --quick)")  # fmt: skip
    p.add_argument("--variants", default=",".join(ALL_VARIANTS), help=f"comma-separated, from {ALL_VARIANTS}")
    p.add_argument("--repeat", type=int, default=None, help="interleaved measurements per row (default 5; 3 with --quick)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds each measurement lasts at least (default 0.05; 0.01 with --quick)")  # fmt: skip
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help=f"comma-separated, from {BACKENDS} (unregistered ones are skipped)")  # fmt: skip
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)")
    p.add_argument("--dtypes", default="fp32", help=f"comma-separated, from {list(DTYPES)}; CPU: fp32 only")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write machine info and every row (min and median) here")
    p.add_argument("--quick", action="store_true",
                   help="a ≈ 1-minute run: 3 shorter repeats, and only the seed size unless --sizes")  # fmt: skip
    args = p.parse_args(argv)
    def split(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    args.sizes = [n for name in split(args.sizes_given or "default") for n in SIZE_SETS.get(name, [name])]
    args.variants = split(args.variants)
    args.backends = split(args.backends)
    args.dtypes = split(args.dtypes)
    for name, given, known in (
        ("--sizes", args.sizes, [*SIZES, *SIZE_SETS]), ("--variants", args.variants, ALL_VARIANTS),
        ("--backends", args.backends, BACKENDS), ("--dtypes", args.dtypes, list(DTYPES)),
    ):  # fmt: skip
        bad = [n for n in given if n not in known]
        if bad or not given:
            p.error(f"{name}: unknown {bad or 'empty list'}; choose from {list(known)}")
    if args.sizes_given is None:
        args.sizes = ["seed"] if args.quick else SIZE_SETS["default"]
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device here")
    if args.device == "cpu" and args.dtypes != ["fp32"]:
        print(f"note: the CPU benchmark runs fp32 only; ignoring {[d for d in args.dtypes if d != 'fp32']}")
        args.dtypes = ["fp32"]
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.min_time is None:
        args.min_time = 0.01 if args.quick else 0.05
    if args.repeat < 1 or args.threads < 1 or args.min_time < 0:
        p.error("--repeat and --threads must be >= 1 and --min-time >= 0")
    return args


def settle_allocator() -> None:
    """Put glibc's malloc in the state a process reaches after freeing its first large block (module
    docstring): its mmap threshold raised to 24 MB, so that the anchor and every candidate allocate from
    the heap and neither pays page faults for its work buffers depending on what ran before it."""
    block = torch.empty(24 << 20, dtype=torch.uint8)  # ≤ 32 MB, glibc's cap for the dynamic threshold
    block.fill_(0)
    del block


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settle_allocator()
    info = machine()
    print(" · ".join(f"{k} {v}" for k, v in info.items()))
    print(f"repeat {args.repeat} (interleaved with torch.nn.LSTM), min over repeats, ≥ {args.min_time}s per measurement"
          f" · device {args.device} · dtypes {','.join(args.dtypes)}")  # fmt: skip
    start = time.perf_counter()
    rows = run(args)
    print(f"\n{table(rows)}\n\ntotal {time.perf_counter() - start:.0f} s")
    for line in anchor_drift(rows):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "rows": [asdict(r) for r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
