"""Bad arguments fail early with a TypeError/ValueError whose message names the argument (and, where
there is one, shows the value received), as torch.nn.RNNBase and Keras do."""

from __future__ import annotations

import re

import pytest
import torch

import lstmkit

I, H, T, B = 4, 5, 6, 3
BAD = (TypeError, ValueError)


def lstm(**kw):
    kw.setdefault("backend", "reference")
    return lstmkit.LSTM(kw.pop("input_size", I), kw.pop("hidden_size", H), **kw)


# ------------------------------------------------------------------------------------------ constructor
@pytest.mark.parametrize(
    "factory",
    [
        lambda **kw: lstmkit.LSTM(I, **kw),
        lambda **kw: lstmkit.GRU(I, **kw),
        lambda **kw: lstmkit.RNN(I, **kw),
        lambda **kw: lstmkit.LSTMCell(I, **kw),
    ],
    ids=["LSTM", "GRU", "RNN", "LSTMCell"],
)
def test_hidden_size_zero(factory):
    with pytest.raises(BAD, match="hidden_size"):
        factory(hidden_size=0)


@pytest.mark.parametrize("cls", [lstmkit.LSTM, lstmkit.GRU, lstmkit.RNN])
@pytest.mark.parametrize("dropout", [1.5, -0.1])
def test_dropout_out_of_range(cls, dropout):
    with pytest.raises(BAD, match="dropout") as info:
        cls(I, H, num_layers=2, dropout=dropout)
    assert str(dropout) in str(info.value), "the message should show the value received"


@pytest.mark.parametrize("variant", ["bogus", "lstm", ""])
def test_unknown_variant(variant):
    with pytest.raises(BAD, match="variant"):
        lstm(variant=variant)
    with pytest.raises(BAD, match="variant"):
        lstmkit.LSTMCell(I, H, variant=variant)


@pytest.mark.parametrize("cls", [lstmkit.LSTM, lstmkit.GRU, lstmkit.RNN])
def test_unknown_backend(cls):
    with pytest.raises(BAD, match="backend") as info:
        cls(I, H, backend="cudnn-please")
    assert "cudnn-please" in str(info.value)


def test_layer_norm_with_native_backend():
    with pytest.raises(ValueError, match="layer_norm"):
        lstm(layer_norm=True, backend="native")


@pytest.mark.parametrize("variant", ["peephole", "cifg", "fgr", "nfg"])
def test_variant_with_native_backend(variant):
    with pytest.raises(ValueError, match="variant"):
        lstm(variant=variant, backend="native")


@pytest.mark.parametrize("variant", ["peephole", "fgr"])
def test_auto_backend_accepts_what_native_cannot(variant):
    """The same configurations are fine with backend='auto' (it falls back to the reference loop)."""
    out, _ = lstm(variant=variant, layer_norm=True, backend="auto")(torch.randn(T, B, I))
    assert out.shape == (T, B, H)


# ------------------------------------------------------------------------------------------ forward
BACKENDS = ["reference", "native"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(T, B, I, 1), (I,)], ids=["4-D", "1-D"])
def test_wrong_input_rank(backend, shape):
    with pytest.raises(BAD, match="input") as info:
        lstm(backend=backend)(torch.randn(shape))
    assert f"{len(shape)}-D" in str(info.value) or str(tuple(shape)) in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_wrong_input_size(backend, batch_first):
    x = torch.randn(B, T, I + 2) if batch_first else torch.randn(T, B, I + 2)
    with pytest.raises(BAD, match="input") as info:
        lstm(backend=backend, batch_first=batch_first)(x)
    msg = str(info.value)
    assert str(I) in msg and str(I + 2) in msg, "the message should give the expected and the received size"


@pytest.mark.parametrize("cls", [lstmkit.GRU, lstmkit.RNN])
def test_wrong_input_size_gru_rnn(cls):
    with pytest.raises(BAD, match="input"):
        cls(I, H)(torch.randn(T, B, I + 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "lengths",
    [[T + 1, 2, 3], [0, 2, 3], [-1, 2, 3], [T, 2], [T, 2, 3, 1], [[T, 2, 3]]],
    ids=["longer-than-T", "zero", "negative", "too-few", "too-many", "2-D"],
)
def test_bad_lengths(backend, lengths):
    layer = lstm(backend=backend)
    with pytest.raises(BAD, match="lengths"):
        layer(torch.randn(T, B, I), lengths=torch.tensor(lengths))
    with pytest.raises(BAD, match="lengths"):
        layer(torch.randn(T, B, I), lengths=lengths)  # a plain list is accepted as well, and checked


@pytest.mark.parametrize("cls", [lstmkit.GRU, lstmkit.RNN])
@pytest.mark.parametrize("lengths", [[T + 1, 2, 3], [0, 2, 3]])
def test_bad_lengths_gru_rnn(cls, lengths):
    with pytest.raises(BAD, match="lengths"):
        cls(I, H)(torch.randn(T, B, I), lengths=lengths)


def test_lengths_batch_first_counts_batch_not_time():
    """With batch_first the batch is dimension 0: B lengths are right, T lengths are not (T != B here)."""
    layer = lstm(batch_first=True)
    x = torch.randn(B, T, I)
    layer(x, lengths=[T, 2, 1])
    with pytest.raises(BAD, match="lengths"):
        layer(x, lengths=[1] * T)


def test_valid_lengths_pass():
    """Boundary values 1 and T are valid (guards against over-strict checks)."""
    out, _ = lstm()(torch.randn(T, B, I), lengths=[1, T, 2])
    assert out.shape == (T, B, H)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_initial_state_shape(backend):
    layer = lstm(backend=backend, num_layers=2)
    x = torch.randn(T, B, I)
    good_h, good_c = torch.zeros(2, B, H), torch.zeros(2, B, H)
    with pytest.raises(BAD, match=re.escape("h_0") + "|hx"):
        layer(x, (torch.zeros(1, B, H), good_c))
    with pytest.raises(BAD, match=re.escape("c_0") + "|hx"):
        layer(x, (good_h, torch.zeros(2, B, H + 1)))
