"""The ``native`` backend on CUDA (cuDNN) against ``torch.nn`` on the same GPU: skipped without a GPU.

Oracle: torch's own module with the same state_dict, run on the same device, so the two calls reach the
same cuDNN kernel and must agree to fp32 rounding. Also checks that lstmkit lays the weights out in
cuDNN's single buffer (``flatten_parameters``): torch warns on every call when they are not.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CASES = [
    ("lstm", 1, False, 0),
    ("lstm", 2, True, 0),
    ("lstm", 2, False, 3),  # projection
    ("gru", 2, True, 0),
    ("rnn_tanh", 1, False, 0),
]


def _pair(mode, L, bidir, proj):
    I, H = 7, 10
    if mode == "lstm":
        ref = nn.LSTM(I, H, L, bidirectional=bidir, proj_size=proj)
        mine = lstmkit.LSTM(I, H, L, bidirectional=bidir, proj_size=proj, backend="native")
    elif mode == "gru":
        ref, mine = nn.GRU(I, H, L, bidirectional=bidir), lstmkit.GRU(I, H, L, bidirectional=bidir, backend="native")
    else:
        ref, mine = nn.RNN(I, H, L, bidirectional=bidir), lstmkit.RNN(I, H, L, bidirectional=bidir, backend="native")
    mine.load_state_dict(ref.state_dict(), strict=True)
    return ref.cuda(), mine.cuda()


@pytest.mark.parametrize("mode,L,bidir,proj", CASES)
@pytest.mark.parametrize("lengths", [None, [9, 4, 1, 7, 9]])
def test_native_cuda_matches_torch(mode, L, bidir, proj, lengths):
    torch.backends.cudnn.allow_tf32 = False  # compare fp32 with fp32
    ref, mine = _pair(mode, L, bidir, proj)
    T, B = 9, 5
    x = torch.randn(T, B, 7, device="cuda", requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if lengths is None:
            out_ref, _ = ref(x)
            out, _ = mine(x2)
        else:
            packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
            out_ref, _ = ref(packed)
            out_ref, _ = pad_packed_sequence(out_ref, total_length=T)
            out, _ = mine(x2, lengths=torch.tensor(lengths))
    assert not [w for w in caught if "contiguous" in str(w.message)], "weights were not flattened for cuDNN"
    assert mine.resolved_backend(x2) == "native"
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    grad = torch.randn_like(out)
    out_ref.backward(grad)
    out.backward(grad)
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-5, atol=1e-6)
    params = dict(mine.named_parameters())
    for name, p_ref in ref.named_parameters():
        torch.testing.assert_close(params[name].grad, p_ref.grad, rtol=1e-5, atol=1e-6, msg=name)
