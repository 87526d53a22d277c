"""What the ``classify``, ``generate`` and ``translate`` commands share: argument types, the checks and
set-up of a ``fit`` (model folder, checkpoints, quiet / progress), the training plot and the evaluation
folder. The ``forecast`` commands in :mod:`lstmkit.cli` use the ``fit`` helpers too."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from lstmkit._argtypes import int_at_least, non_negative_int, positive_int  # noqa: F401 (re-exported)
from lstmkit.errors import ConfigError

log = logging.getLogger("lstmkit.cli")


# ------------------------------------------------------------------------------------------ argument types


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
# The ``fit`` commands by their top-level command name: the model format each writes.
FIT_FORMATS = {
    "forecast": "lstmkit.forecaster",
    "classify": "lstmkit.text_classifier",
    "generate": "lstmkit.text_generator",
    "translate": "lstmkit.translator",
}
FORCE_HELP = "replace the model of this task already in MODEL_DIR (never another task's model, nor other files)"


def add_force_flag(parser: argparse.ArgumentParser) -> None:
    """``--force`` of a ``fit`` (once per parser: adding it twice is a no-op)."""
    if "--force" not in parser._option_string_actions:
        parser.add_argument("--force", action="store_true", help=FORCE_HELP)


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` that a command could overwrite: hidden ones (``.gitkeep``, the temp files of
    an interrupted write) are never written over, so they do not count."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def check_model_out(out: str | Path, args=None) -> Path:
    """``--out`` of a ``fit``: a folder (new or existing), not a file; and, given the parsed ``args``
    (``command``, ``resume``, ``force``), a folder that is new, empty, this task's model resumed with
    ``--resume`` or replaced with ``--force``, or this task's interrupted checkpoints. Never another task's
    model, nor a folder with other files: those are refused before anything is read or written."""
    from lstmkit.training.checkpoint import an, model_format, model_words

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the model directory")
    if args is None or not out.is_dir():
        return out
    entries = _entries(out)
    if not entries:
        return out
    own = FIT_FORMATS.get(getattr(args, "command", None), "")
    words = model_words(own) if own else "model"
    resume, force = bool(getattr(args, "resume", False)), bool(getattr(args, "force", False))
    found = model_format(out)
    where = f"--out {str(out)!r}"
    if found is not None and found != own:
        raise ConfigError(
            f"{where} already holds an lstmkit {model_words(found)}; pass a new folder for the {words} "
            f"(--force replaces only {an(words)}, never another task's model)"
        )
    if found == own:
        if resume or force:
            return out
        raise ConfigError(
            f"{where} already holds an lstmkit {words}; pass a new folder, --resume to continue its "
            "training, or --force to replace it"
        )
    if (out / "config.json").exists():
        raise ConfigError(
            f"{where} holds a config.json that is not an lstmkit model's ({_listing(entries)}); pass a new or "
            "empty folder (--force replaces only an lstmkit model)"
        )
    if entries == ["checkpoints"] and (out / "checkpoints").is_dir():  # an interrupted training: no model yet
        if resume or force:
            return out
        raise ConfigError(
            f"{where} holds the checkpoints of an interrupted training; pass --resume to continue it, --force "
            "to start over, or a new folder"
        )
    raise ConfigError(
        f"{where} is not empty and holds no lstmkit model ({_listing(entries)}); pass a new or empty folder "
        "(--force replaces only an lstmkit model)"
    )


def guard_fit_out(args) -> None:
    """The ``--out`` check of a ``fit`` (see :func:`check_model_out`), run by ``lstmkit.cli.main`` before any
    ``fit`` command reads its data, so a refused folder is never touched."""
    if getattr(args, "action", None) == "fit" and getattr(args, "command", None) in FIT_FORMATS and getattr(args, "out", None):
        check_model_out(args.out, args)


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
# What an ``evaluate`` writes (``classify``, ``translate`` and ``forecast``): a folder holding only these
# names is an earlier evaluation, which a new one replaces.
EVALUATION_FILES = frozenset({
    "metrics.json", "metrics.csv", "confusion_matrix.png", "predictions.tsv", "backtest_forecasts.csv",
    "metrics.png", "forecasts.png", "report.html",
})


def check_evaluation_out(path: str | Path) -> Path:
    """An ``evaluate``'s output folder: new, empty or an earlier evaluation; never a file, a model
    directory or a folder with other files (refused before anything is written)."""
    from lstmkit.training.checkpoint import model_format, model_words

    path = Path(path)
    where = f"--out {str(path)!r}"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where} is a file; pass a folder for the evaluation outputs")
    if not path.is_dir():
        return path
    entries = _entries(path)
    found = model_format(path)
    if found is not None:
        raise ConfigError(f"{where} holds an lstmkit {model_words(found)}; pass a new folder for the evaluation outputs")
    others = [n for n in entries if n not in EVALUATION_FILES]
    if others or not _is_evaluation_json(path / "metrics.json"):
        raise ConfigError(
            f"{where} holds files that are not an lstmkit evaluation's ({_listing(others or ['metrics.json'])}); "
            "pass a new or empty folder for the evaluation outputs"
        )
    return path


def _is_evaluation_json(path: Path) -> bool:
    """No ``metrics.json``, or one written by an ``evaluate`` (a JSON object naming its ``data``)."""
    if not path.exists():
        return True
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and "data" in obj


def evaluation_out(out: str | None, model_dir: Path) -> Path:
    """``--out`` of an ``evaluate`` (default ``MODEL_DIR/evaluation``): see :func:`check_evaluation_out`."""
    return check_evaluation_out(Path(out) if out else Path(model_dir) / "evaluation")


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
