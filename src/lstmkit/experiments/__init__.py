"""Reproductions of the LSTM papers' long-time-lag experiments.

- :mod:`~lstmkit.experiments.tasks`: the generators (adding problem, temporal order 6a/6b, embedded
  and continual embedded Reber grammar, copy task), exactly as the papers define them.
- :mod:`~lstmkit.experiments.runner`: train LSTM / GRU / tanh RNN on them and score them with the
  papers' success criteria (:func:`run_experiment`).
- :mod:`~lstmkit.experiments.greff`: a small variant study after Greff et al. 2017 (:func:`greff_study`).

The command line is ``lstmkit experiment NAME`` (:mod:`~lstmkit.experiments.cli`).
"""

from __future__ import annotations

from lstmkit.experiments.greff import greff_study
from lstmkit.experiments.runner import MODELS, TASKS, RunConfig, make_task, run_experiment, run_model

__all__ = ["run_experiment", "run_model", "make_task", "RunConfig", "greff_study", "MODELS", "TASKS"]
