"""Data for the seed's two examples: its sine wave cut into next-step windows, split by time.

Shared by ``seed_keras_style.py`` and ``seed_pytorch.py`` so that both fit and score exactly the same
problem. Window ``k`` holds the ``lookback`` values ``x[t-L..t-1]`` as input and ``x[t]`` (the *next*
value, never part of its own input) as target.

The split is chronological: the last ``test_fraction`` of the series' time steps are test *targets*.
A training window's input and target both lie before the split point; a test window's input may reach
back into the training period (as a real forecast would), but no test target is ever seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class SineData:
    """Next-step windows of the seed's sine wave; inputs (N, L, 1), targets (N, 1), float32 tensors."""

    x_train: torch.Tensor  # (N_train, L, 1)
    y_train: torch.Tensor  # (N_train, 1)
    x_test: torch.Tensor  # (N_test, L, 1)
    y_test: torch.Tensor  # (N_test, 1)
    split: int  # first time step whose value is a test target
    series_length: int


def seed_series() -> np.ndarray:
    """The seed article's toy series, unchanged: 1000 samples of sin on [0, 100] (≈ 16 periods)."""
    return np.sin(np.linspace(0, 100, 1000))


def make_windows(series: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """All (input, next value) pairs: inputs (N, L) = x[t-L..t-1], targets (N,) = x[t], t = L..len-1."""
    if not 1 <= lookback < len(series):
        raise ValueError(f"lookback must be in [1, {len(series) - 1}], got {lookback}")
    windows = sliding_window_view(series, lookback + 1)  # (N, L+1), a view: no copy, no Python loop
    return windows[:, :lookback], windows[:, lookback]


def load(lookback: int = 50, test_fraction: float = 0.2) -> SineData:
    """The seed's sine wave as train/test next-step windows (chronological split, no leakage)."""
    series = seed_series()
    split = int(round(len(series) * (1.0 - test_fraction)))
    inputs, targets = make_windows(series, lookback)
    target_time = np.arange(lookback, len(series))  # time index of each window's target
    train = target_time < split
    # No scaling: the series already lies in [-1, 1]. (With real data, fit a scaler on the train part only.)

    def as_tensors(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(inputs[mask], dtype=torch.float32).unsqueeze(-1)  # (N, L, 1)
        y = torch.tensor(targets[mask], dtype=torch.float32).unsqueeze(-1)  # (N, 1)
        return x, y

    x_train, y_train = as_tensors(train)
    x_test, y_test = as_tensors(~train)
    return SineData(x_train, y_train, x_test, y_test, split, len(series))


def naive_last_value(x: torch.Tensor) -> torch.Tensor:
    """The persistence forecast: the next value equals the last one seen. (N, L, 1) -> (N, 1)."""
    return x[:, -1, :]


def batches(n: int, batch_size: int, generator: torch.Generator):
    """Shuffled index batches over ``n`` samples, the last one possibly smaller (like Keras' fit)."""
    order = torch.randperm(n, generator=generator)
    return order.split(batch_size)
