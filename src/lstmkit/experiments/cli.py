"""``lstmkit experiment``: the papers' long-time-lag experiments from the command line.

    lstmkit experiment adding [--T 100|500|1000] [--model lstm|gru|rnn|all] [--variant V] [--steps N]
                              [--seed S] [--json FILE]
    lstmkit experiment temporal-order [--version a|b] …
    lstmkit experiment reber …
    lstmkit experiment continual-reber [--forget-gate | --no-forget-gate] …
    lstmkit experiment copy [--T 100] …
    lstmkit experiment greff [--task temporal-order|continual-reber] [--seeds N] [--lrs 3e-3,1e-2] [--out DIR]

Each run prints the paper's criterion and result next to ours, per model, with the training budget used.
``register(subparsers)`` adds the command to a parent parser; ``main(argv)`` runs it on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from lstmkit._argtypes import positive_int
from lstmkit.errors import ConfigError, UserError

EXPERIMENTS = ("adding", "temporal-order", "reber", "continual-reber", "copy")


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 3e-3,1e-2, got {text!r}") from None




def _common(p: argparse.ArgumentParser, models: bool = True) -> None:
    if models:
        p.add_argument("--model", default="all", choices=("lstm", "gru", "rnn", "all"),
                       help="which network(s) to train (default: all three)")  # fmt: skip
        p.add_argument("--variant", default=None, metavar="V",
                       help="LSTM variant: standard, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr (default: the paper's "
                            "cell: nfg for adding and temporal-order, standard otherwise)")  # fmt: skip
        p.add_argument("--forget-bias", type=float, default=None, metavar="B",
                       help="LSTM forget-gate bias initialisation (default: the task's choice)")  # fmt: skip
        p.add_argument("--input-bias", type=float, default=None, metavar="B",
                       help="LSTM input-gate bias initialisation (default: the task's choice; -3 for adding)")  # fmt: skip
    p.add_argument("--steps", type=positive_int, metavar="N", help="most optimiser steps per model (default: the task's budget)")
    p.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate (default: the task's)")
    p.add_argument("--hidden", type=positive_int, metavar="H", help="hidden units (default: the task's)")
    p.add_argument("--time-limit", type=float, metavar="SEC", help="stop each model's training after SEC seconds")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights and data (default: 0)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch threads (default: 1)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``experiment`` to an argparse ``subparsers`` object; returns its parser."""
    exp = subparsers.add_parser("experiment", help="reproduce the LSTM papers' long-time-lag experiments",
                                description=__doc__.split("\n\n")[0])  # fmt: skip
    sub = exp.add_subparsers(dest="experiment", metavar="NAME", required=True)

    p = sub.add_parser("adding", help="adding problem (Hochreiter & Schmidhuber 1997, Exp. 4)")
    p.add_argument("--T", type=int, default=100, choices=(100, 500, 1000), help="minimal sequence length (default: 100)")
    _common(p)
    p = sub.add_parser("temporal-order", help="temporal order 6a / 6b (1997, Exp. 6)")
    p.add_argument("--version", default="a", choices=("a", "b"), help="a: 2 relevant symbols, b: 3 (default: a)")
    _common(p)
    p = sub.add_parser("reber", help="embedded Reber grammar (1997, Exp. 1)")
    _common(p)
    p = sub.add_parser("continual-reber", help="continual embedded Reber grammar (Gers et al. 2000)")
    p.add_argument("--forget-gate", dest="forget_gate", action="store_true", default=True,
                   help="the LSTM has a forget gate (default)")  # fmt: skip
    p.add_argument("--no-forget-gate", dest="forget_gate", action="store_false",
                   help="the 1997 cell without forget gate (variant nfg)")  # fmt: skip
    p.add_argument("--test-symbols", type=positive_int, default=20000, metavar="N", help="length of each test stream (default: 20000)")
    _common(p)
    p = sub.add_parser("copy", help="copy task (Arjovsky et al. 2016)")
    p.add_argument("--T", type=positive_int, default=100, help="blanks to bridge (default: 100)")
    _common(p)
    for name in EXPERIMENTS:
        sub.choices[name].set_defaults(func=cmd_experiment)

    p = sub.add_parser("greff", help="LSTM variant study (Greff et al. 2017): variants × seeds × learning rates")
    p.add_argument("--task", default="temporal-order", choices=("temporal-order", "continual-reber"))
    p.add_argument("--variants", default=None, metavar="LIST", help="comma-separated (default: all nine)")
    p.add_argument("--seeds", type=positive_int, default=2, metavar="N", help="seeds per variant and lr (default: 2)")
    p.add_argument("--lrs", type=_float_list, default=[3e-3, 1e-2], metavar="LIST", help="learning rates (default: 3e-3,1e-2)")
    p.add_argument("--out", default="greff", metavar="DIR", help="folder for table.csv, boxplot.png, results.json (default: greff)")
    _common(p, models=False)
    p.set_defaults(func=cmd_greff)
    return exp


# ------------------------------------------------------------------------------------------ commands
def _write_json(path: str, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def cmd_experiment(args) -> int:
    from lstmkit.experiments.runner import MODELS, run_experiment

    _threads(args.threads)
    name = args.experiment
    models = MODELS if args.model == "all" else (args.model,)
    variant = args.variant
    kw: dict = {}
    if name in ("adding", "copy"):
        kw["T"] = args.T
    if name == "temporal-order":
        kw["version"] = args.version
    if name == "continual-reber":
        kw["test_symbols"] = args.test_symbols
        if not args.forget_gate:
            if args.variant not in (None, "nfg"):
                raise ConfigError(f"--no-forget-gate is the variant nfg; drop --variant {args.variant}")
            variant = "nfg"
    try:
        report = run_experiment(
            name, models, variant=variant, steps=args.steps, seed=args.seed, lr=args.lr, hidden_size=args.hidden,
            forget_bias=args.forget_bias if args.forget_bias is not None else "default",
            input_bias=args.input_bias if args.input_bias is not None else "default",
            time_limit=args.time_limit, **kw,
        )  # fmt: skip
    except ValueError as e:  # the layers' argument errors (e.g. an unknown variant)
        if isinstance(e, UserError):
            raise
        raise ConfigError(str(e)) from None
    print(format_report(report.to_dict()))
    if args.json:
        _write_json(args.json, report.to_dict())
        print(f"results written to {args.json}")
    return 0


def format_report(d: dict) -> str:
    """The paper's criterion and result, then one line per model with the training budget."""
    lines = [f"{d['title']}  [{d['source']}]", f"criterion: {d['criterion']}", f"paper:     {d['paper']}", ""]
    rows = [("model", "passed", "measured", "sequences seen", "steps", "wall time")]
    for r in d["results"]:
        model = r["model"] if r["model"] != "lstm" else f"lstm ({r['variant']})"
        solved = f" (met at step {r['solved_at_step']})" if r["solved_at_step"] else ""
        seen = f"{r['sequences_seen']:,}"
        if "symbols_seen" in r["details"]:
            seen = f"{r['details']['symbols_seen']:,} symbols"
        rows.append((model, "yes" if r["passed"] else "no", r["measured"], seen,
                     f"{r['steps']:,}{solved}", f"{r['wall_time_s']:.0f} s"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_greff(args) -> int:
    from lstmkit.experiments.greff import PAPER_CONCLUSIONS, VARIANTS, greff_study

    _threads(args.threads)
    variants = tuple(v.strip() for v in args.variants.split(",")) if args.variants else VARIANTS
    seeds = tuple(args.seed + k for k in range(args.seeds))
    kw = {"n_test": 512} if args.task == "temporal-order" else {"test_symbols": 5000}
    report = greff_study(args.task, variants=variants, seeds=seeds, lrs=tuple(args.lrs), steps=args.steps,
                         hidden_size=args.hidden, **kw)  # fmt: skip
    table = report.table()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import csv

    with open(out / "table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    png = report.plot(out / "boxplot.png")
    _write_json(str(out / "results.json"), report.to_dict())
    if args.json:
        _write_json(args.json, report.to_dict())

    print(f"Greff et al. 2017 variant study on {report.task['title']}")
    print(f"{len(report.runs)} runs: {len(variants)} variants × {len(seeds)} seeds × lr {', '.join(f'{x:g}' for x in args.lrs)}; "
          f"metric: {report.metric} ({'higher' if report.higher_is_better else 'lower'} is better)\n")  # fmt: skip
    head = ("variant", "passed", "median", "best", "best lr", "median seqs", "time")
    rows = [head] + [(r["variant"], f"{r['passed']}/{r['runs']}", f"{r['median']:.3g}", f"{r['best']:.3g}",
                      f"{r['best_lr']:g}", f"{r['median_sequences']:,.0f}", f"{r['seconds']:.0f} s") for r in table]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print("\npaper's conclusions (TIMIT, IAM Online, JSB Chorales):")
    for c in PAPER_CONCLUSIONS:
        print(f"  - {c}")
    print("ours (this run):")
    for c in report.conclusions():
        print(f"  - {c}")
    print(f"\nwritten: {out / 'table.csv'}, {png}, {out / 'results.json'}")
    return 0


# ------------------------------------------------------------------------------------------ standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m lstmkit.experiments.cli experiment NAME …`` (or NAME … directly): ``lstmkit experiment``."""
    from lstmkit.cli import main as lstmkit_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "experiment" and not argv[0].startswith("-"):
        argv = ["experiment", *argv]
    return lstmkit_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
