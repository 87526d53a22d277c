"""Shared test set-up.

- Every test starts from the same random state, so a failure reproduces.
- torch runs single-threaded: the tests use tiny tensors, where intra-op threads only cost, and on a
  2-core machine running ``pytest -n 2`` (or sharing its cores) OpenMP threads spinning against each other
  made one tiny LSTM forward+backward ~300x slower (measured: 15 ms with 1 thread, 5 s with 2 under load).
"""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
