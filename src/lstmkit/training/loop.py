"""The training loop every estimator shares.

Step-based: an *epoch* is ``steps_per_epoch`` optimiser steps on freshly sampled batches (windows are
sampled, not enumerated). After each epoch the loop can score a validation set (early stopping keeps the
best weights) and write a checkpoint; ``resume=True`` continues from the last checkpoint and, on the
CPU with the same seed, ends with the same weights as an uninterrupted run because the samplers' and
torch's random states are part of the checkpoint. The learning rate is a pure function of the step
(one-cycle by default), so it needs no state of its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from lstmkit.errors import UserError
from lstmkit.training.checkpoint import (
    atomic_save_tensors,
    checkpoint_mismatch,
    load_checkpoint,
    read_tensors,
    save_checkpoint,
)

log = logging.getLogger(__name__)


class TrainingError(UserError, RuntimeError):
    """Training could not go on (the loss became NaN or infinite and stayed so)."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # "onecycle" | "cosine" | "constant"
    warmup: float = 0.3  # fraction of the steps spent rising to lr (one-cycle)
    clip: float = 1.0  # gradient-norm clip; 0 disables
    steps_per_epoch: int = 100
    patience: int = 0  # epochs without validation improvement before stopping; 0: never stop early
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def lr_at(self, step: int) -> float:
        if self.schedule == "constant":
            return self.lr
        frac = step / max(1, self.steps)
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * frac))
        if frac < self.warmup:  # one-cycle: linear rise from lr/25, then cosine to lr/1e4
            return self.lr * (0.04 + 0.96 * frac / self.warmup)
        rest = (frac - self.warmup) / max(1e-9, 1 - self.warmup)
        return self.lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * rest)))


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch: step, train_loss, val_loss, lr, seconds
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0


def train(
    model: torch.nn.Module,
    loss_on_batch: Callable[[torch.Generator], Tensor],
    cfg: TrainConfig,
    *,
    validate: Callable[[], float] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    desc: str = "training",
    fingerprint: str | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps of ``loss_on_batch(generator)``.

    ``validate`` returns a validation loss (lower is better); with it the best epoch's weights are
    restored at the end, and ``cfg.patience > 0`` stops training early. ``fingerprint`` (e.g. a hash of
    the vocabulary) is stored in the checkpoints; ``resume`` refuses a checkpoint with another one, since
    data that give the same parameter shapes can still mean other things (another vocabulary of the same size).
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = TrainResult()
    step, best, best_state, bad_epochs, nonfinite = 0, math.inf, None, 0, 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt is not None:
        counters = load_checkpoint(ckpt, model, opt, gen)
        if counters is not None:
            if fingerprint is not None and counters.get("fingerprint") not in (None, fingerprint):
                raise checkpoint_mismatch(ckpt, "another vocabulary or data fingerprint")
            step, best, bad_epochs = counters["step"], counters["best"], counters["bad_epochs"]
            result.history = counters["history"]
            result.best_epoch = counters["best_epoch"]
            if counters.get("has_best"):
                best_state = read_tensors(ckpt / "best.safetensors", "best weights")
            log.info("resumed from %s at step %d", ckpt, step)

    bar = _progress_bar(cfg.steps, step, desc) if progress else None
    t0 = time.perf_counter()
    model.train()
    running, count = 0.0, 0
    while step < cfg.steps:
        lr = cfg.lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_on_batch(gen)
        if not torch.isfinite(loss):
            nonfinite += 1
            if nonfinite > 20:
                raise TrainingError(
                    "the training loss stayed NaN/infinite for 20 steps; lower --lr, check the data for "
                    "extreme values, or scale the target"
                )
            opt.zero_grad(set_to_none=True)
            step += 1
            continue
        nonfinite = 0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        step += 1
        running += float(loss.detach())
        count += 1
        if bar is not None:
            bar.update(1)
        if step % cfg.steps_per_epoch == 0 or step == cfg.steps:
            row = {"step": step, "train_loss": running / max(1, count), "lr": lr}
            running, count = 0.0, 0
            if validate is not None:
                model.eval()
                with torch.no_grad():
                    val = float(validate())
                model.train()
                row["val_loss"] = val
                if val < best:
                    best, bad_epochs = val, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    result.best_epoch = len(result.history)
                else:
                    bad_epochs += 1
            row["seconds"] = time.perf_counter() - t0
            result.history.append(row)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith("loss")})
            stop = validate is not None and cfg.patience > 0 and bad_epochs >= cfg.patience
            if ckpt is not None:
                if best_state is not None and result.best_epoch == len(result.history) - 1:
                    atomic_save_tensors(ckpt / "best.safetensors", best_state)
                save_checkpoint(
                    ckpt, model, opt, gen,
                    {"step": step, "best": best, "bad_epochs": bad_epochs, "history": result.history,
                     "best_epoch": result.best_epoch, "has_best": best_state is not None, "fingerprint": fingerprint},
                )  # fmt: skip
            if stop:
                result.stopped_early = True
                break
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result


def _progress_bar(total: int, initial: int, desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is a nicety; training goes on without it
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=None)  # off when stderr is not a terminal
