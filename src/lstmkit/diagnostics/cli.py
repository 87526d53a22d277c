"""``lstmkit inspect``: the diagnostics as commands that write PNGs and CSVs and print their paths.

    lstmkit inspect gradients [--T 100] [--steps 1000] [--hidden-size 32] [--forget-bias 1,5] [--seed 0] [--out runs/inspect]
    lstmkit inspect gates [--variant V] [--T 50] [--steps 1000] [--hidden-size 8] [--forget-bias 5] [--seed 0] [--out runs/inspect]

:func:`register` adds the ``inspect`` command to the main parser's sub-commands; :func:`main` runs it
on its own (``python -m lstmkit.diagnostics.cli gradients …``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lstmkit.errors import ConfigError

log = logging.getLogger("lstmkit.cli")

DEFAULT_OUT = "runs/inspect"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 1,5, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number, e.g. 1")
    return values


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``inspect gradients`` and ``inspect gates`` to ``subparsers`` (from ``add_subparsers``)."""
    from lstmkit.core.cells import VARIANTS

    p = subparsers.add_parser(
        "inspect", help="diagnostics: gradient flow through time, LSTM gate activations",
        description="Train small networks on the adding problem for a few seconds and look inside: how much "
        "gradient reaches each earlier step (gradients), what every gate does at every step (gates). "
        "Writes PNGs and CSVs to --out and prints their paths.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    g = sub.add_parser("gradients", help="‖∂L/∂h_t‖, ‖∂L/∂c_t‖ against t for RNN, GRU, LSTM, fresh and trained")
    g.add_argument("--T", type=_int, default=100, dest="T", metavar="T", help="sequence length (default: 100)")
    g.add_argument("--steps", type=_int, default=1000, metavar="N", help="training steps per model (default: 1000)")
    g.add_argument("--hidden-size", type=_int, default=32, metavar="H", help="units per model (default: 32)")
    g.add_argument("--forget-bias", type=_floats, default=(1.0, 5.0), metavar="B,B",
                   help="forget-gate bias at initialisation, one LSTM per value (default: 1,5)")  # fmt: skip
    g.add_argument("--seed", type=_int, default=0, metavar="S", help="random seed (default: 0)")
    g.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    g.set_defaults(func=cmd_gradients)

    g = sub.add_parser("gates", help="heatmaps of i, f, g, o, c, h over time for a trained LSTM variant")
    g.add_argument("--variant", default="standard", choices=sorted(VARIANTS), metavar="V",
                   help=f"LSTM variant: {', '.join(sorted(VARIANTS))} (default: standard)")  # fmt: skip
    g.add_argument("--T", type=_int, default=50, dest="T", metavar="T", help="sequence length (default: 50)")
    g.add_argument("--steps", type=_int, default=1000, metavar="N", help="training steps (default: 1000)")
    g.add_argument("--hidden-size", type=_int, default=8, metavar="H", help="units (default: 8)")
    g.add_argument("--forget-bias", type=float, default=5.0, metavar="B",
                   help="forget-gate bias at initialisation, where the variant has a forget gate (default: 5)")  # fmt: skip
    g.add_argument("--seed", type=_int, default=0, metavar="S", help="random seed (default: 0)")
    g.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    g.set_defaults(func=cmd_gates)
    return p


def _check(args) -> None:
    from lstmkit.diagnostics.gradients import MIN_T

    if args.T < MIN_T:
        raise ConfigError(f"--T {args.T} is too short: the adding problem needs T >= {MIN_T}; e.g. --T 100")
    if args.steps < 0:
        raise ConfigError(f"--steps must be >= 0 (0 = fresh only), got {args.steps}")
    if args.hidden_size < 1:
        raise ConfigError(f"--hidden-size must be >= 1, got {args.hidden_size}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {args.out!r} is a file; pass a folder for the PNGs and CSVs")


def _threads() -> None:
    from lstmkit.cli import _set_threads  # the main CLI's rule (LSTMKIT_THREADS, else half the cores)

    _set_threads()


def _write_csv(df, path: Path) -> Path:
    from lstmkit.training.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))
    return path


def cmd_gradients(args) -> int:
    """Train RNN, GRU, LSTM briefly on the adding problem; write gradient_flow.csv and .png."""
    _check(args)
    _threads()
    from lstmkit.diagnostics.gradients import gradient_flow_study, plot_gradient_flow

    log.info("gradient flow: RNN, GRU, LSTM at T=%d, %d training steps each", args.T, args.steps)
    df = gradient_flow_study(args.T, steps=args.steps, hidden_size=args.hidden_size, forget_biases=args.forget_bias,
                             seed=args.seed)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = _write_csv(df, out / "gradient_flow.csv")
    title = f"adding problem, T={args.T}, H={args.hidden_size}; trained = {args.steps} Adam steps of 32 sequences"
    png = plot_gradient_flow(df, out / "gradient_flow.png", title=title)
    print(f"{'model':<24} {'state':<8} {'test MSE':>9} {'|err|<.04':>9} {'‖∂L/∂h_0‖':>10} {'‖∂L/∂h_T-1‖':>11} {'‖∂L/∂c_0‖':>10}")
    for (model, fb, state), rows in df.groupby(["model", "forget_bias", "state"], sort=False, dropna=False):
        name = model if fb != fb else f"{model} (forget bias {fb:g})"
        c0 = rows["norm_c"].iloc[0]
        print(f"{name:<24} {state:<8} {rows['mse'].iloc[0]:>9.4f} {rows['accuracy'].iloc[0]:>9.1%} "
              f"{rows['norm_h'].iloc[0]:>10.1e} {rows['norm_h'].iloc[-1]:>11.1e} {'' if c0 != c0 else f'{c0:.1e}':>10}")  # fmt: skip
    print(csv)
    print(png)
    return 0


def cmd_gates(args) -> int:
    """Train one LSTM variant briefly on the adding problem; write gates_VARIANT.csv and .png."""
    _check(args)
    _threads()
    from lstmkit.diagnostics.gates import gate_study, gates_frame, plot_gates

    log.info("gates: LSTM variant %s on the adding problem at T=%d, %d training steps", args.variant, args.T, args.steps)
    study = gate_study(args.variant, args.T, steps=args.steps, hidden_size=args.hidden_size, seed=args.seed,
                       forget_bias=args.forget_bias)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = gates_frame(study.trace)
    x = study.inputs[:, 0]  # (T, 2)
    df["x_value"] = x[df["t"].to_numpy(), 0].numpy()
    df["x_marker"] = x[df["t"].to_numpy(), 1].numpy()
    csv = _write_csv(df, out / f"gates_{args.variant}.csv")
    title = (f"LSTM ({args.variant}) on the adding problem, T={args.T}: target {study.target:.3f}, "
             f"prediction {study.prediction:.3f}; test MSE {study.mse:.4f} (constant guess ≈ 0.042)")  # fmt: skip
    png = plot_gates(study.trace, out / f"gates_{args.variant}.png", inputs=x, input_names=["value", "marker"], title=title)
    print(f"variant {args.variant}: test MSE {study.mse:.4f} (constant guess ≈ 0.042)")
    print(csv)
    print(png)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``lstmkit inspect …`` on its own: ``main(["gradients", "--T", "50"])``; returns the exit code."""
    from lstmkit.cli import main as lstmkit_main

    return lstmkit_main(["inspect", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
