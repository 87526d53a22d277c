"""A small LSTM variant study in the manner of Greff et al. 2017, "LSTM: A search space odyssey".

Every variant × a few seeds × a small learning-rate sweep is trained on one task with the same budget
and scored on fresh test data; the result is a table (per variant: runs that passed, median and best
test value, the best learning rate) and a box plot. Greff et al. trained 5400 networks on TIMIT, IAM
Online and JSB Chorales with random hyper-parameter search; this is a laptop-sized look at the same
question on a synthetic long-time-lag task, so it can agree or disagree with them only coarsely.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from lstmkit.errors import ConfigError
from lstmkit.experiments.runner import ModelResult, make_task, run_model

log = logging.getLogger(__name__)

# Greff's vanilla LSTM has peepholes ("peephole" here); "standard" is their NP variant.
VARIANTS = ("peephole", "standard", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr")
LABELS = {"peephole": "V (vanilla)", "standard": "NP", "nig": "NIG", "nfg": "NFG", "nog": "NOG",
          "niaf": "NIAF", "noaf": "NOAF", "cifg": "CIFG", "fgr": "FGR"}  # fmt: skip
GREFF_TASKS = ("temporal-order", "continual-reber")

PAPER_CONCLUSIONS = (
    "No variant improves significantly on the vanilla LSTM (peepholes + forget gate).",
    "CIFG (coupled input/forget gate) and NP (no peepholes) are as good and simpler.",
    "Removing the forget gate (NFG) or the output activation (NOAF) hurts most.",
    "The learning rate is by far the most important hyper-parameter.",
)


@dataclass
class GreffReport:
    task: dict
    runs: list[ModelResult]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    higher_is_better: bool
    metric: str

    def metric_of(self, r: ModelResult) -> float:
        """The plotted number: % wrong for the classification tasks, the mean error-free run for
        the continual grammar."""
        return r.value if self.higher_is_better else 100 * (1 - r.value)

    def table(self) -> list[dict]:
        rows = []
        for v in dict.fromkeys(r.variant for r in self.runs):
            mine = [r for r in self.runs if r.variant == v]
            vals = [self.metric_of(r) for r in mine]
            by_lr = {lr: statistics.median(self.metric_of(r) for r in mine if r.config["lr"] == lr) for lr in self.lrs}
            pick = max if self.higher_is_better else min
            best_lr = pick(by_lr, key=by_lr.get)
            rows.append({
                "variant": LABELS.get(v, v), "name": v, "runs": len(mine), "passed": sum(r.passed for r in mine),
                "median": statistics.median(vals), "best": pick(vals), "best_lr": best_lr,
                **{f"median_lr_{lr:g}": m for lr, m in by_lr.items()},
                "median_sequences": statistics.median(r.sequences_seen for r in mine),
                "seconds": round(sum(r.wall_time_s for r in mine), 1),
            })  # fmt: skip
        return rows

    def conclusions(self) -> list[str]:
        """What the numbers say, in the paper's terms (descriptive only: a few seeds test nothing)."""
        rows = {r["name"]: r for r in self.table()}
        better = (lambda a, b: a > b) if self.higher_is_better else (lambda a, b: a < b)
        out = []
        ref = rows.get("peephole")
        if ref is not None:
            beat = [r["variant"] for n, r in rows.items() if n != "peephole" and better(r["median"], ref["median"])]
            worse = [r["variant"] for n, r in rows.items() if n != "peephole" and r["passed"] < ref["passed"]]
            out.append(f"Median better than vanilla: {', '.join(beat) or 'none'} (a few seeds: not a significance test).")
            out.append(f"Fewer runs passing than vanilla ({ref['passed']}/{ref['runs']}): {', '.join(worse) or 'none'}.")
        if len(self.lrs) > 1:
            med = {lr: statistics.median(self.metric_of(r) for r in self.runs if r.config["lr"] == lr) for lr in self.lrs}
            out.append("Median over all variants by learning rate: "
                       + ", ".join(f"lr {lr:g}: {m:.3g}" for lr, m in med.items()) + ".")  # fmt: skip
        return out

    def to_dict(self) -> dict:
        return {**self.task, "metric": self.metric, "lrs": list(self.lrs), "seeds": list(self.seeds),
                "paper_conclusions": list(PAPER_CONCLUSIONS), "our_conclusions": self.conclusions(),
                "table": self.table(), "runs": [r.to_dict() for r in self.runs]}  # fmt: skip

    def plot(self, path: str | Path) -> Path:
        """A box plot of the test metric per variant (all seeds and learning rates) as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        variants = list(dict.fromkeys(r.variant for r in self.runs))
        floor = 1.0 if self.higher_is_better else -float("inf")  # a run of 0 symbols on the log axis
        data = [[max(floor, self.metric_of(r)) for r in self.runs if r.variant == v] for v in variants]
        fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(variants), 4.0))
        ax.boxplot(data, showmeans=False)
        ax.set_xticks(range(1, len(variants) + 1), [LABELS.get(v, v) for v in variants], rotation=30)
        for k, vals in enumerate(data, start=1):  # every run as a dot: with a few seeds the box hides little
            ax.plot([k] * len(vals), vals, "o", ms=3, alpha=0.6, color="tab:blue")
        ax.set_ylabel(self.metric)
        if self.higher_is_better:  # error-free runs span decades
            ax.set_yscale("log")
        ax.set_title(f"LSTM variants on {self.task['title']}\n({len(self.seeds)} seeds × lr {', '.join(f'{x:g}' for x in self.lrs)})",
                     fontsize=9)  # fmt: skip
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(path)
        return path


def greff_study(
    task: str = "temporal-order", *, variants: tuple[str, ...] = VARIANTS, seeds: tuple[int, ...] = (0, 1),
    lrs: tuple[float, ...] = (3e-3, 1e-2), steps: int | None = None, hidden_size: int | None = None,
    **task_kw,
) -> GreffReport:  # fmt: skip
    """Train every variant for every seed and learning rate on ``task`` with the same budget."""
    if task not in GREFF_TASKS:
        raise ConfigError(f"--task must be one of {', '.join(GREFF_TASKS)} for the variant study, got {task!r}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; use some of {', '.join(VARIANTS)}")
    t = make_task(task, **task_kw)
    base = t.defaults("lstm")
    # The small default budget: enough for the vanilla LSTM to be well on its way (see docs/experiments.md).
    base = replace(base, steps=steps or {"temporal-order": 600, "continual-reber": 1500}[task],
                   hidden_size=hidden_size or base.hidden_size)  # fmt: skip
    runs = []
    for v in variants:
        for lr in lrs:
            for s in seeds:
                r = run_model(t, "lstm", variant=v, config=replace(base, lr=lr, seed=s))
                log.info("greff %s lr %g seed %d: %s (%.0f s)", v, lr, s, r.measured, r.wall_time_s)
                runs.append(r)
    cont = task == "continual-reber"
    metric = "mean error-free run (symbols)" if cont else "% test sequences wrong"
    return GreffReport(t.describe(), runs, tuple(lrs), tuple(seeds), cont, metric)


__all__ = ["greff_study", "GreffReport", "VARIANTS", "LABELS", "PAPER_CONCLUSIONS"]
