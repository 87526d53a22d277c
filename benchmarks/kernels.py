"""Wall time of every lstmkit recurrent layer × backend against ``torch.nn.LSTM``, timed in the same run.

For each size and each pass (``fwd``: inference under ``torch.no_grad()``; ``fwd+bwd``: forward, then
backward of the whole output sequence with a fixed upstream gradient) it times:

* every LSTM variant (``standard``, ``peephole``, ``nig``, ``nfg``, ``nog``, ``niaf``, ``noaf``, ``cifg``,
  ``fgr``) and the layer-normalised LSTM (``layer_norm``), with ``backend="auto"``, ``"native"`` (where it
  can run the configuration) and ``"reference"``;
* ``lstmkit.GRU`` and ``lstmkit.RNN`` (tanh) with the same backends, plus ``torch.nn.GRU``/``RNN``;
* the anchor ``torch.nn.LSTM`` of the same size.

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
Inputs are sequence-first (T, B, I), float32, CPU.

Usage::

    python benchmarks/kernels.py                      # all sizes, all variants (≈ 12 min on 2 busy cores)
    python benchmarks/kernels.py --quick              # ≈ 1 min: 3 short repeats, seed size only
    python benchmarks/kernels.py --sizes seed --variants standard,gru --repeat 9 --json out.json
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
import torch.nn as nn

import lstmkit


@dataclass(frozen=True)
class Size:
    name: str
    B: int
    T: int
    I: int  # noqa: E741 (the package's symbol legend)
    H: int
    L: int

    def label(self) -> str:
        return f"B{self.B} T{self.T} I{self.I} H{self.H} L{self.L}"


SIZES = {
    "seed": Size("seed", 32, 50, 1, 50, 2),  # the seed article's example
    "large": Size("large", 32, 200, 32, 256, 2),
    "long": Size("long", 1, 1000, 1, 50, 2),  # one long sequence: per-step overhead dominates
}
LSTM_VARIANTS = ["standard", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
ALL_VARIANTS = [*LSTM_VARIANTS, "layer_norm", "gru", "rnn"]
BACKENDS = ["auto", "native", "reference"]


@dataclass
class Row:
    size: str
    shape: str
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
    if pass_ == "fwd":

        def fwd() -> None:
            with torch.no_grad():
                module(x)

        return fwd
    grad = torch.randn_like(module(x)[0])  # fixed upstream gradient of the output sequence

    def fwd_bwd() -> None:
        module.zero_grad(set_to_none=True)
        out = module(x)[0]
        out.backward(grad)

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


def candidates(variant: str, s: Size) -> list[tuple[str, nn.Module]]:
    """(label, layer) per backend. ``auto`` runs the same code as the backend it resolves to, so that
    backend is timed once, labelled ``auto=native`` or ``auto=reference``, and not again explicitly."""
    out, chosen = [], None
    for backend in BACKENDS:
        if backend == chosen:
            continue
        try:
            module = build(variant, backend, s)
        except ValueError:  # e.g. native with a variant: torch's fused kernel has only the standard cell
            continue
        label = backend
        if backend == "auto":
            chosen = module._backend_for(torch.zeros(1)).name
            label = f"auto={chosen}"
        out.append((label, module))
    if variant in ("gru", "rnn"):  # torch's own, to compare lstmkit's native path like for like
        out.append(("torch", (nn.GRU if variant == "gru" else nn.RNN)(s.I, s.H, s.L)))
    return out


def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for size_name in args.sizes:
        s = SIZES[size_name]
        torch.manual_seed(0)
        x = torch.randn(s.T, s.B, s.I)  # (T, B, I)
        anchor_module = nn.LSTM(s.I, s.H, s.L)
        print(f"\n{size_name}: {s.label()}", flush=True)
        for pass_ in ("fwd", "fwd+bwd"):
            anchor = make_pass(anchor_module, x, pass_)
            warm_up(anchor, 1.0)
            a_num = calls_per_measurement(anchor, args.min_time)
            all_anchor: list[float] = []
            size_rows: list[Row] = []
            for variant in args.variants:
                for label, module in candidates(variant, s):
                    cand = make_pass(module, x, pass_)
                    c_num = calls_per_measurement(cand, args.min_time)
                    a_times, c_times = interleaved(anchor, a_num, cand, c_num, args.repeat)
                    all_anchor += a_times
                    c_min, a_min = min(c_times) * 1e3, min(a_times) * 1e3
                    row = Row(size_name, s.label(), variant, label, pass_, c_min, statistics.median(c_times) * 1e3,
                              a_min, c_min / a_min, c_min / a_min)  # fmt: skip
                    size_rows.append(row)
                    print(f"  {pass_:<8} {variant:<11} {label:<16} {c_min:10.3f} ms  {row.ratio_paired:7.2f}× (paired)",
                          flush=True)  # fmt: skip
            # The anchor's best time over all its interleaved measurements is the least load-disturbed
            # estimate of its cost; every ratio in the table divides by it.
            a_min = min(all_anchor) * 1e3
            for row in size_rows:
                row.anchor_ms_min, row.ratio = a_min, row.ms_min / a_min
            rows.append(Row(size_name, s.label(), "torch.nn.LSTM", "torch", pass_, a_min,
                            statistics.median(all_anchor) * 1e3, a_min, 1.0, 1.0))  # fmt: skip
            rows += size_rows
    return rows


def table(rows: list[Row]) -> str:
    """Markdown table: one line per size × variant × backend, fwd and fwd+bwd side by side."""
    keyed: dict[tuple[str, str, str], dict[str, Row]] = {}
    for r in rows:
        keyed.setdefault((r.shape, r.variant, r.backend), {})[r.pass_] = r
    lines = [
        "| size | variant | backend | fwd ms | fwd × torch | fwd+bwd ms | fwd+bwd × torch |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for (shape, variant, backend), by_pass in keyed.items():
        cells = []
        for p in ("fwd", "fwd+bwd"):
            r = by_pass.get(p)
            cells += [f"{r.ms_min:.3f}", f"{r.ratio:.2f}"] if r else ["", ""]
        lines.append(f"| {shape} | {variant} | {backend} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", dest="sizes_given", metavar="SIZES", default=None,
                   help=f"comma-separated, from {list(SIZES)} (default all; seed only with --quick)")  # fmt: skip
    p.add_argument("--variants", default=",".join(ALL_VARIANTS), help=f"comma-separated, from {ALL_VARIANTS}")
    p.add_argument("--repeat", type=int, default=None, help="interleaved measurements per row (default 5; 3 with --quick)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds each measurement lasts at least (default 0.05; 0.01 with --quick)")  # fmt: skip
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write machine info and every row (min and median) here")
    p.add_argument("--quick", action="store_true",
                   help="a ≈ 1-minute run: 3 shorter repeats, and only the seed size unless --sizes")  # fmt: skip
    args = p.parse_args(argv)
    args.sizes = [n.strip() for n in (args.sizes_given or ",".join(SIZES)).split(",") if n.strip()]
    args.variants = [n.strip() for n in args.variants.split(",") if n.strip()]
    for name, given, known in (("--sizes", args.sizes, SIZES), ("--variants", args.variants, ALL_VARIANTS)):
        bad = [n for n in given if n not in known]
        if bad or not given:
            p.error(f"{name}: unknown {bad or 'empty list'}; choose from {list(known)}")
    if args.sizes_given is None:
        args.sizes = ["seed"] if args.quick else list(SIZES)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.min_time is None:
        args.min_time = 0.01 if args.quick else 0.05
    if args.repeat < 1 or args.threads < 1 or args.min_time < 0:
        p.error("--repeat and --threads must be >= 1 and --min-time >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    info = machine()
    print(" · ".join(f"{k} {v}" for k, v in info.items()))
    print(f"repeat {args.repeat} (interleaved with torch.nn.LSTM), min over repeats, ≥ {args.min_time}s per measurement")
    start = time.perf_counter()
    rows = run(args)
    print(f"\n{table(rows)}\n\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "rows": [asdict(r) for r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
