"""Argument types and flag conventions the ``classify``, ``generate`` and ``translate`` commands share:
range-checked number types (so a bad value is reported with its flag, e.g. ``--val-fraction``), the
``--quiet`` flag of every ``fit`` / ``predict`` / ``evaluate``, and the translation of an estimator's
:class:`ConfigError` (which names its parameters) into the command line's flags."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from lstmkit._argtypes import int_at_least
from lstmkit.errors import ConfigError
from lstmkit.text import _cli_common as common

# estimator parameter → command-line flag, for the messages of _check_params at the command line
FLAGS = {
    "val_fraction": "--val-fraction", "vocab_size": "--vocab-size", "hidden_size": "--hidden-size",
    "num_layers": "--num-layers", "embed_dim": "--embed-dim", "batch_size": "--batch-size", "max_length": "--max-length",
    "seq_len": "--seq-len", "ngram_orders": "--orders", "label_smoothing": "--label-smoothing", "beam_size": "--beam",
    "target_tokenizer": "--target-tokenizer", "class_weight": "--class-weight", "dropout": "--dropout",
    "epochs": "--epochs", "steps": "--steps", "lr": "--lr", "patience": "--patience", "seed": "--seed",
    "tokenizer": "--tokenizer", "pooling": "--pooling", "precision": "--precision", "vectors": "--vectors",
}  # fmt: skip


def positive_number(text: str) -> float:
    """A finite number > 0 (``--epochs``, ``--lr``)."""
    v = common.finite_number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def val_fraction(text: str) -> float:
    """A number in [0, 0.5) (``--val-fraction``)."""
    v = common.finite_number(text)
    if not 0 <= v < 0.5:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 0.5), got {text!r}")
    return v


def unit_fraction(text: str) -> float:
    """A number in [0, 1) (``--dropout``, ``--label-smoothing``)."""
    v = common.finite_number(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


# An integer ≥ 8 (4 ids are reserved for the special tokens).
vocab_size = int_at_least(8, "an integer of at least 8 (4 ids are reserved for special tokens)")
non_negative_int = common.non_negative_int


def add_schedule(g, *, epochs_help: str, val_help: str,
                 seed_help: str = "random seed (same seed + machine + CPU ⇒ same numbers)") -> None:
    """The training-schedule flags the three text ``fit`` commands share; the help texts that differ
    (what an epoch passes over, what is held out, what the seed also fixes) come from the caller."""
    g.add_argument("--epochs", type=positive_number, metavar="E", help=epochs_help)
    g.add_argument("--steps", type=common.positive_int, metavar="N", help="optimiser steps (overrides --epochs)")
    g.add_argument("--lr", type=positive_number, metavar="LR", help="peak learning rate of the one-cycle schedule (default: 0.003)")
    g.add_argument("--val-fraction", type=val_fraction, metavar="F", help=val_help)
    g.add_argument("--patience", type=non_negative_int, metavar="N",
                   help="validations without improvement before stopping (default: 0, never)")  # fmt: skip
    g.add_argument("--seed", type=int, metavar="S", help=seed_help)


def add_quiet(p) -> None:
    """``--quiet`` of a ``fit`` / ``predict`` / ``evaluate``: the same meaning in the three text commands."""
    p.add_argument("--quiet", dest="fit_quiet", action="store_true",
                   help="no progress bar and no INFO logs (warnings, errors and the result lines are still printed)")  # fmt: skip


def quiet(args) -> bool:
    """Whether ``--quiet`` was given; turns the ``lstmkit`` logs down to warnings when it was."""
    q = bool(getattr(args, "fit_quiet", False))
    if q:
        logging.getLogger("lstmkit").setLevel(logging.WARNING)
    return q


def to_flags(message: str, flags: dict[str, str] | None = None) -> str:
    """``message`` with the estimator's parameter names replaced by their command-line flags."""
    flags = FLAGS if flags is None else {**FLAGS, **flags}
    for name in sorted(flags, key=len, reverse=True):
        message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flags[name], message)
    return message


@contextmanager
def flag_names(flags: dict[str, str] | None = None) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` of the estimator's parameter checks with flags instead of parameter names."""
    try:
        yield
    except ConfigError as e:
        raise ConfigError(to_flags(str(e), flags)) from None
