"""What the estimators (Forecaster, TextClassifier, TextGenerator, Translator) share: parameter checks,
the glue to the training loop, and the head and tail of ``save`` / ``load``.

Only logic that is the same in meaning lives here; each estimator keeps its own data handling, networks
and file contents.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from lstmkit import __version__
from lstmkit.errors import ConfigError, DataError, ModelDirError
from lstmkit.training.checkpoint import atomic_write_json
from lstmkit.training.loop import TrainConfig, TrainResult, train


# ------------------------------------------------------------------------------------------ parameters
def check_int(est, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> None:
    """``est.<name>`` is a positive (``allow_zero``: non-negative) integer, or ``None`` where allowed."""
    v = getattr(est, name)
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {v!r}")


def check_dropout(est) -> None:
    if not 0.0 <= est.dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {est.dropout}")


def check_text_params(est, positive: tuple[str, ...]) -> None:
    """The checks the text estimators share: ``positive`` integers, the optional ``vocab_size``,
    ``min_freq`` and ``steps``, ``patience`` ≥ 0, room for the 4 special ids, and ``dropout``."""
    for name in positive:
        check_int(est, name)
    for name in ("vocab_size", "min_freq", "steps"):
        check_int(est, name, allow_none=True)
    check_int(est, "patience", allow_zero=True)
    if est.vocab_size is not None and est.vocab_size < 8:
        raise ConfigError(f"vocab_size must be at least 8 (4 ids are reserved), got {est.vocab_size}")
    check_dropout(est)


def check_val_fraction(est) -> None:
    if not 0.0 <= est.val_fraction < 0.5:
        raise ConfigError(f"val_fraction must be in [0, 0.5), got {est.val_fraction}")


def check_lr_epochs(est) -> None:
    if not (0 < est.lr < math.inf and 0 < est.epochs < math.inf):  # NaN and inf fail too
        raise ConfigError(f"lr and epochs must be positive finite numbers, got lr={est.lr}, epochs={est.epochs}")


def check_seed(est) -> None:
    """numpy's generators (the validation split) take no negative seed."""
    check_int(est, "seed", allow_zero=True)


# ------------------------------------------------------------------------------------------ input files
def check_input_file(path: str | Path, flag: str, expected: str) -> Path:
    """``path`` names an existing file; ``flag`` names it in the errors, ``expected`` is what to pass instead
    of a folder."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{flag} file {str(p)!r} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"{flag} {str(p)!r} is a directory; pass {expected}")
    return p


def check_encoding(encoding: str, flag: str = "--encoding") -> None:
    try:
        "".encode(encoding)
    except LookupError:
        raise ConfigError(f"{flag} {encoding!r} is not a known text encoding; use e.g. utf-8, latin-1, cp1252") from None


# ------------------------------------------------------------------------------------------ training
def epoch_schedule(steps: int | None, epochs: float, n: int, batch_size: int) -> tuple[int, int]:
    """Optimiser steps (``steps``, or ``epochs`` passes over ``n`` examples) and steps per validation:
    one pass, kept between 50 and 500 steps (and no more than all of them)."""
    steps = steps or max(1, math.ceil(epochs * n / batch_size))
    per_epoch = max(1, min(steps, max(50, min(500, math.ceil(n / batch_size)))))
    return steps, per_epoch


def fit_network(
    est, net: torch.nn.Module, batch_loss: Callable[[torch.Generator], torch.Tensor],
    validate: Callable[[], float] | None, *, steps: int, batch_size: int, steps_per_epoch: int,
    checkpoint_dir, resume: bool, progress: bool, seed: int | None = None, desc: str = "training",
    fingerprint: str | None = None, **config,
) -> TrainResult:  # fmt: skip
    """Train ``net`` with the shared loop, taking ``lr``, ``clip``, ``patience`` and ``seed`` from the
    estimator ``est``; ``config``: further :class:`TrainConfig` fields (``weight_decay``, ``warmup``);
    ``fingerprint``: see :func:`data_fingerprint`."""
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=est.lr, clip=est.clip, steps_per_epoch=steps_per_epoch,
                      patience=est.patience, seed=est.seed if seed is None else seed, **config)  # fmt: skip
    return train(net, batch_loss, cfg, validate=validate, checkpoint_dir=checkpoint_dir, resume=resume,
                 progress=progress, desc=desc, fingerprint=fingerprint)  # fmt: skip


def data_fingerprint(*parts) -> str:
    """A short hash of what must be the same for ``--resume`` to continue a checkpoint (the vocabulary, the
    classes, the network's configuration, the amount of data), all JSON-able."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ save / load
def save_dir(path: str | Path) -> Path:
    """The folder ``save`` writes into, created."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_header(fmt: str, version: int) -> dict:
    """The keys that open every ``config.json``: the format, its version and the lstmkit that wrote it."""
    return {"format": fmt, "format_version": version, "lstmkit_version": __version__}


def finish_save(path: Path, config: dict, metrics: dict | None) -> Path:
    """Write ``metrics.json`` (when given) and last ``config.json``, each atomically."""
    if metrics is not None:
        atomic_write_json(path / "metrics.json", metrics)
    atomic_write_json(path / "config.json", config)  # last: its presence marks a complete directory
    return path


def prefixed(net: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """``net``'s parameters and buffers named ``<prefix><name>``, for a shared safetensors file."""
    return {f"{prefix}{k}": v for k, v in net.state_dict().items()}


def load_prefixed(net: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> torch.nn.Module:
    """Load the ``<prefix>`` tensors of a safetensors file into ``net``, in eval mode."""
    net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    net.eval()
    return net


@contextmanager
def reading_model_dir(path: Path) -> Iterator[None]:
    """Turn what a damaged or foreign model directory makes ``load`` raise into one :class:`ModelDirError`
    (the user errors raised on the way, which already say what is wrong, pass through)."""
    try:
        yield
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        if isinstance(e, (ModelDirError, ConfigError)):
            raise
        raise ModelDirError(
            f"model directory {str(path)!r} is inconsistent ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}); "
            "it was edited or comes from another version — fit the model again"
        ) from None
