"""The seed article's Keras model, built with lstmkit: LSTM(50, return_sequences) → LSTM(50) → Dense(1).

The article's Keras snippet::

    model.add(LSTM(50, return_sequences=True, input_shape=(timesteps, features)))
    model.add(LSTM(50))
    model.add(Dense(1))
    model.compile(optimizer='adam', loss='mean_squared_error')
    model.fit(X_train, y_train, epochs=100, batch_size=32)

leaves ``X_train``/``y_train`` undefined; its PyTorch example fills the gap with the sine wave
``np.sin(np.linspace(0, 100, 1000))`` but trains on ``train_data[:, -1]`` as the target, which is the
model's own last *input* value: target leakage (the model only has to copy its input, and a trivial
copy scores zero error). Here the data are next-step windows instead (see ``_sine.py``): input the
``lookback`` values x[t-L..t-1], target the next value x[t], with a chronological train/test split,
and the test error is reported next to the naive last-value forecast that any model must beat.

Run: ``.venv/bin/python examples/seed_keras_style.py`` (≈ 15 s on 2 CPU cores; writes nothing).
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn

import lstmkit
from _sine import batches, load, naive_last_value

SEED = 0
LOOKBACK = 50  # "timesteps" in the Keras snippet
UNITS = 50
EPOCHS = 100  # the article's value; ≈ 0.15 s per epoch here, so no need to cut it
BATCH_SIZE = 32
LEARNING_RATE = 1e-3  # Keras' Adam default


class KerasStyleModel(nn.Module):
    """Two stacked LSTM layers of 50 units and a linear read-out of the last step.

    Keras' ``return_sequences=True`` on the first layer means "pass the whole output sequence (B, T, H)
    to the next layer"; a torch-style layer such as ``lstmkit.LSTM`` always returns the whole
    sequence, so two layers in a row are exactly Keras' pair. The second Keras layer
    (``return_sequences=False``) returns only its last step: that is ``h_n[-1]`` here.
    ``lstmkit.LSTM(1, 50, num_layers=2)`` computes the same function (its layer 2 also reads layer 1's
    full output sequence) and is what ``seed_pytorch.py`` uses; two separate layers mirror Keras'
    layer-by-layer stack. ``forget_bias=1.0`` matches Keras' ``unit_forget_bias=True`` default (Keras'
    Glorot/orthogonal weight initialisation is not copied: lstmkit keeps torch's uniform one).
    """

    def __init__(self, features: int = 1, units: int = UNITS) -> None:
        super().__init__()
        self.lstm1 = lstmkit.LSTM(features, units, batch_first=True, forget_bias=1.0)  # return_sequences=True
        self.lstm2 = lstmkit.LSTM(units, units, batch_first=True, forget_bias=1.0)  # return_sequences=False
        self.dense = nn.Linear(units, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm1(x)  # (B, T, H): the whole sequence
        _, (h_n, _) = self.lstm2(seq)  # h_n (1, B, H): the last step only
        return self.dense(h_n[-1])  # (B, 1)


def main() -> None:
    torch.manual_seed(SEED)
    data = load(lookback=LOOKBACK)
    model = KerasStyleModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.MSELoss()
    shuffle = torch.Generator().manual_seed(SEED)  # Keras' fit shuffles every epoch

    print(
        f"Keras-style LSTM(50, return_sequences) -> LSTM(50) -> Dense(1) on the seed's sine wave: "
        f"{len(data.x_train)} train / {len(data.x_test)} test windows of {LOOKBACK} steps, "
        f"target = the next value"
    )
    start = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        model.train()
        total = 0.0
        for idx in batches(len(data.x_train), BATCH_SIZE, shuffle):
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 0:
            print(f"Epoch [{epoch}/{EPOCHS}], train loss (MSE): {total / len(data.x_train):.3e}")
    elapsed = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        lstm_mse = loss_fn(model(data.x_test), data.y_test).item()
    naive_mse = loss_fn(naive_last_value(data.x_test), data.y_test).item()
    print(f"\ntest MSE   LSTM {lstm_mse:.3e}   naive last value {naive_mse:.3e}   "
          f"ratio LSTM/naive {lstm_mse / naive_mse:.2e}")
    print(f"trained {EPOCHS} epochs in {elapsed:.1f} s; nothing was written to disk")


if __name__ == "__main__":
    main()
