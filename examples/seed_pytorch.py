"""The seed article's PyTorch example, built on ``lstmkit.LSTM`` and with its data problem fixed.

The article's ``LSTMModel(input_size, hidden_size, num_layers, output_size)`` is kept as written, with
``nn.LSTM`` replaced by ``lstmkit.LSTM`` (same signature, same ``(output, (h_n, c_n))`` return, same
weights and, for this standard cell, the same fused torch kernel underneath).

What changes is the data. The article feeds the whole sine wave as one sequence and trains on
``train_data[:, -1]``, the last value of the model's own input: the target is inside the input
(leakage), so the loss says nothing about forecasting, and it then "predicts" on its training data.
Here (see ``_sine.py``) each sample is a window of the previous ``lookback`` values and its target
the next value, the last 20% of the series is held out chronologically, and the test error is shown
next to the naive last-value forecast.

Run: ``make demo`` or ``.venv/bin/python examples/seed_pytorch.py`` (≈ 15 s on 2 CPU cores).
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn

import lstmkit
from _sine import batches, load, naive_last_value


class LSTMModel(nn.Module):
    """The article's model: a stacked LSTM read out by a linear layer at the last time step."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, output_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = lstmkit.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The article builds zero (h0, c0) by hand; hx=None means the same zeros, on x's device and dtype.
        out, _ = self.lstm(x)  # (B, T, H)
        return self.fc(out[:, -1, :])  # (B, output_size)


# Hyperparameters: the article's, plus what its full-sequence version did not need.
input_size = 1
hidden_size = 50
num_layers = 2
output_size = 1
num_epochs = 100  # the article's value; ≈ 0.15 s per epoch on 2 cores
learning_rate = 0.001
lookback = 50  # window length (time steps the model sees before predicting the next one)
batch_size = 32
seed = 0


def main() -> None:
    torch.manual_seed(seed)
    data = load(lookback=lookback, test_fraction=0.2)
    model = LSTMModel(input_size, hidden_size, num_layers, output_size)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    shuffle = torch.Generator().manual_seed(seed)

    print("lstmkit demo: the seed article's LSTMModel (2-layer LSTM, 50 units, linear head) learns to")
    print("forecast the next value of sin(t), t in [0, 100], from the previous 50 values.")
    print(
        f"  train: the first {data.split} time steps ({len(data.x_train)} windows); "
        f"test: the last {data.series_length - data.split} ({len(data.x_test)} windows), never seen in training"
    )
    print(f"  Adam lr={learning_rate}, MSE loss, batch {batch_size}, {num_epochs} epochs, seed {seed}\n")

    start = time.perf_counter()
    for epoch in range(num_epochs):
        model.train()
        total = 0.0
        for idx in batches(len(data.x_train), batch_size, shuffle):
            outputs = model(data.x_train[idx])
            loss = criterion(outputs, data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0:
            print(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {total / len(data.x_train):.3e}")
    elapsed = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        lstm_mse = criterion(model(data.x_test), data.y_test).item()
    naive_mse = criterion(naive_last_value(data.x_test), data.y_test).item()

    print(f"\nTest set: next-step forecasts of the last {len(data.x_test)} values")
    print(f"  {'model':<34}{'MSE':>12}{'vs naive':>12}")
    print(f"  {'LSTMModel (lstmkit.LSTM)':<34}{lstm_mse:>12.3e}{lstm_mse / naive_mse:>12.2e}")
    print(f"  {'naive: next value = last value':<34}{naive_mse:>12.3e}{1.0:>12.2f}")
    print(f"\nTrained in {elapsed:.1f} s. Nothing was written to disk (the model lives only in this process).")


if __name__ == "__main__":
    main()
