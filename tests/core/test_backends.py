"""Backend registry: what auto picks, what explicit backends refuse, and that they agree."""

import pytest
import torch

import lstmkit
from lstmkit.core import backends


def _picked(module: torch.nn.Module, x: torch.Tensor) -> str:
    return module._backend_for(x).name


def _variant_backend() -> str:
    """What runs the variants on CPU: the C++ kernels where they build here, else the reference loop."""
    names = backends.names()
    if "cpu_fused" not in names:
        return "reference"
    spec = lstmkit.LSTM(3, 4, variant="peephole").spec
    return "cpu_fused" if backends.get("cpu_fused").unsupported(spec, torch.device("cpu"), torch.float32) is None else "reference"


VARIANT_BACKEND = _variant_backend()
# The standard cell in float32 on CPU: the C++ kernels where they build (faster than torch's for
# forward+backward at every size measured, docs/kernels.md), else torch's kernel.
STANDARD_BACKEND = "cpu_fused" if VARIANT_BACKEND == "cpu_fused" else "native"


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, STANDARD_BACKEND),
        ({"proj_size": 2}, "native"),  # no C++ kernel has projections
        ({"bidirectional": True, "num_layers": 2}, STANDARD_BACKEND),
        ({"dtype": torch.float64}, "native"),  # the standard cell's choice was measured in float32
        ({"hidden_size": 512}, "native"),  # and up to H = 384 (torch's forward is faster beyond)
        ({"variant": "peephole"}, VARIANT_BACKEND),
        ({"variant": "cifg"}, VARIANT_BACKEND),
        ({"layer_norm": True}, VARIANT_BACKEND),
        ({"variant": "peephole", "proj_size": 2}, "reference"),  # no fused kernel has projections of variants
    ],
)
def test_auto_picks_per_configuration(kwargs, expected):
    kwargs = dict(kwargs)
    m = lstmkit.LSTM(3, kwargs.pop("hidden_size", 4), **kwargs)
    assert _picked(m, torch.randn(5, 2, 3, dtype=kwargs.get("dtype", torch.float32))) == expected


def test_auto_uses_cpu_fused_for_the_gru_and_the_rnn():
    x = torch.randn(5, 2, 3)
    # the C++ kernels where they build (torch's GRU and RNN on CPU are slower, docs/kernels.md), else torch's
    assert _picked(lstmkit.GRU(3, 4), x) == STANDARD_BACKEND
    assert _picked(lstmkit.GRU(3, 4, dtype=torch.float64), x.double()) == STANDARD_BACKEND
    assert _picked(lstmkit.RNN(3, 4, nonlinearity="relu"), x) == STANDARD_BACKEND
    assert _picked(lstmkit.RNN(3, 600), x) == STANDARD_BACKEND  # at every size measured, up to H = 768


@pytest.mark.parametrize("kwargs", [{"variant": "nfg"}, {"layer_norm": True}])
def test_explicit_native_refuses_what_it_cannot_run_and_says_what_it_supports(kwargs):
    with pytest.raises(ValueError, match=r"backend='native' cannot run.*supports the standard LSTM cell"):
        lstmkit.LSTM(3, 4, backend="native", **kwargs)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"backend='cudnn' is unknown.*'native'.*'reference'"):
        lstmkit.LSTM(3, 4, backend="cudnn")


def test_registry_order_puts_reference_last():
    assert backends.names()[-1] == "reference"
    assert "native" in backends.names()


def test_a_registered_backend_is_picked_by_auto_when_it_supports_the_configuration():
    class Doubling:
        name, supports = "doubling", "tests only"

        def unsupported(self, spec, device, dtype):
            return None if spec.variant is not None and spec.variant.name == "cifg" else "only cifg"

        def forward(self, spec, module, x, h0, c0, lengths):
            out, h, c = backends.get("reference").forward(spec, module, x, h0, c0, lengths)
            return 2 * out, h, c

    backends.register(Doubling(), priority=1000)
    try:
        x = torch.randn(4, 2, 3)
        cifg = lstmkit.LSTM(3, 4, variant="cifg")
        ref = lstmkit.LSTM(3, 4, variant="cifg", backend="reference")
        ref.load_state_dict(cifg.state_dict())
        torch.testing.assert_close(cifg(x)[0], 2 * ref(x)[0])
        assert _picked(lstmkit.LSTM(3, 4), x) == STANDARD_BACKEND  # it declined the standard cell
    finally:
        backends._REGISTRY.pop("doubling")
        backends._PRIORITY.pop("doubling")


def test_packed_sequence_input_matches_padded_input_with_lengths():
    torch.manual_seed(0)
    m = lstmkit.LSTM(3, 4, bidirectional=True, variant="peephole")
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([2, 6, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_p, (h_p, c_p) = m(packed)
    out_p, lens = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=6)
    out, (h, c) = m(x, lengths=lengths)
    torch.testing.assert_close(out_p, out)
    torch.testing.assert_close(h_p, h)
    torch.testing.assert_close(c_p, c)
    assert lens.tolist() == lengths.tolist()


def test_reference_and_native_agree_on_gradients_for_gru_with_lengths():
    torch.manual_seed(1)
    a = lstmkit.GRU(3, 5, 2, bidirectional=True, batch_first=True, backend="reference")
    b = lstmkit.GRU(3, 5, 2, bidirectional=True, batch_first=True, backend="native")
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 7, 3)
    lengths = [7, 1, 3, 5]
    for m in (a, b):
        out, h = m(x, lengths=lengths)
        (out.square().sum() + h.sum()).backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_same_seed_gives_torch_identical_initialisation():
    torch.manual_seed(123)
    ours = lstmkit.LSTM(3, 8, 2, bidirectional=True, proj_size=4)
    torch.manual_seed(123)
    theirs = torch.nn.LSTM(3, 8, 2, bidirectional=True, proj_size=4)
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert n1 == n2
        assert torch.equal(p1, p2)


def test_resolved_backend_is_public_and_follows_the_configuration():
    assert lstmkit.LSTM(3, 4).resolved_backend() == STANDARD_BACKEND
    assert lstmkit.LSTM(3, 4, proj_size=2).resolved_backend() == "native"
    assert lstmkit.LSTM(3, 4, variant="nog").resolved_backend(torch.randn(2, 1, 3)) == VARIANT_BACKEND
    assert lstmkit.LSTM(3, 4, variant="nog").resolved_backend(torch.randn(2, 1, 3, dtype=torch.float16)) == "reference"


def test_cell_reset_keeps_the_forget_bias_and_repr_shows_it():
    cell = lstmkit.LSTMCell(3, 4, forget_bias=2.0)
    cell.reset_parameters()
    assert torch.equal(cell.bias_ih[4:8], torch.full((4,), 2.0))
    assert torch.equal(cell.bias_hh[4:8], torch.zeros(4))
    assert "forget_bias=2.0" in repr(lstmkit.LSTM(3, 4, forget_bias=2.0))
