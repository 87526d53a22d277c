"""What the ``classify``, ``generate`` and ``translate`` commands share: argument types, the checks and
set-up of a ``fit`` (model folder, checkpoints, quiet / progress), the training plot and the evaluation
folder. The ``forecast`` commands in :mod:`lstmkit.cli` use the ``fit`` helpers too."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from lstmkit.errors import ConfigError

log = logging.getLogger("lstmkit.cli")


# ------------------------------------------------------------------------------------------ argument types
def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def finite_number(text: str) -> float:
    v = number(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


# ------------------------------------------------------------------------------------------ fit
def check_model_out(out: str | Path) -> Path:
    """``--out`` of a ``fit``: a folder (new or existing), not a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the model directory")
    return out


def checkpoints(out: Path, resume: bool) -> Path:
    """``MODEL_DIR/checkpoints``, with a warning where ``--resume`` finds none."""
    ckpt = out / "checkpoints"
    if resume and not ckpt.is_dir():
        log.warning("--resume: no checkpoints in %s; training from the start", ckpt)
    return ckpt


def fit_progress(args) -> bool:
    """Whether a ``fit`` shows its progress bar; its ``--quiet`` also turns logging down to warnings."""
    quiet = getattr(args, "fit_quiet", False)
    if quiet:
        logging.getLogger("lstmkit").setLevel(logging.WARNING)
    return not (args.no_progress or quiet)


def training_plot(history, folder: Path) -> list[str]:
    """``training.png`` in ``folder`` (its name in a list); none, with a warning, where matplotlib is missing."""
    from lstmkit.reports.plots import plot_training

    try:
        return [plot_training(history, folder / "training.png").name]
    except ConfigError as e:
        log.warning("no plots: %s", e)
        return []


# ------------------------------------------------------------------------------------------ evaluate
def evaluation_out(out: str | None, model_dir: Path) -> Path:
    """``--out`` of an ``evaluate`` (default ``MODEL_DIR/evaluation``): a folder, not a file."""
    path = Path(out) if out else model_dir / "evaluation"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a file; pass a folder for the evaluation outputs")
    return path


def publish_listed(stage, out: Path) -> None:
    """Publish a staging folder and print a ``wrote:`` line per file."""
    names = sorted(p.name for p in stage.dir.iterdir())
    stage.publish()
    for name in names:
        print(f"wrote:   {out / name}")


# ------------------------------------------------------------------------------------------ standalone
def run(argv: list[str] | None) -> int:
    """Run a command line through ``lstmkit.cli.main`` (same error handling); returns the exit code."""
    from lstmkit.cli import main as lstmkit_main

    return lstmkit_main(list(sys.argv[1:] if argv is None else argv))
