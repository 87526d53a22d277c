"""The ``native`` backend: torch's own fused kernels (cuDNN on GPU, oneDNN or ATen on CPU).

It calls the same ATen entry points that ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` call, with the module's
parameters in torch's flat order, so a standard lstmkit layer costs what torch's does. Variable lengths
go through a packed sequence, which those kernels (cuDNN included) run natively.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.core.reference import RNNSpec

_KERNELS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}


class NativeBackend:
    name = "native"
    supports = "the standard LSTM cell (with proj_size), GRU and tanh/ReLU RNN, without layer_norm"

    def unsupported(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> str | None:
        if spec.mode == "lstm" and not spec.is_standard_lstm:
            return f"variant={spec.variant.name!r} (torch's fused LSTM has only the standard cell)"
        if spec.layer_norm:
            return "layer_norm=True (torch's fused kernels have no layer normalisation)"
        if dtype is not None and not dtype.is_floating_point:
            return f"dtype {dtype}"
        return None

    def auto_declines(self, spec: RNNSpec, device: torch.device | None, dtype: torch.dtype | None) -> bool:
        """``auto`` leaves the standard LSTM cell on the CPU in float32 with H ≤ 384 to ``cpu_fused`` when
        that backend can run it (its extension builds). Measured on two threads (docs/kernels.md):
        forward+backward 0.29–0.83× torch's time from the seed's size to H = 384, forward 0.11–1.05×; at
        H = 512–768 its forward is 1.23–1.36× torch's (each thread streams all of W_hh, > 4 MB, from L3
        every step) while forward+backward is 0.89–1.00×, so torch keeps those. The GRU goes to
        ``cpu_fused`` at every size and in float64 too: torch's GRU on the CPU took 1.1–9× its own LSTM's
        time for forward+backward (at B1 T1000 27×), and the fused one 0.007–0.68× torch's GRU in float32
        from the seed's size to H = 768 (forward 0.03–0.66×), 0.03–0.80× in float64. The Elman RNN (tanh
        and relu) too: the fused one 0.01–0.37× torch's RNN for forward+backward (forward 0.03–0.41×) in
        float32 from the seed's size to H = 768, 0.03–0.51× in float64. Double backward and
        ``torch.func`` transforms need ``backend="native"`` (the fused backward is differentiable once)."""
        if device is None or torch.device(device).type != "cpu":
            return False
        if spec.mode == "lstm" and (dtype not in (None, torch.float32) or spec.hidden_size > 384):
            return False
        from lstmkit.core import backends  # the registry imports this module

        if "cpu_fused" not in backends.names():
            return False
        return backends.get("cpu_fused").unsupported(spec, device, dtype) is None

    def forward(
        self, spec: RNNSpec, module: torch.nn.Module, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        kernel = _KERNELS[spec.mode]
        flat = module.flat_weights()
        hx = (h0, c0) if spec.mode == "lstm" else h0
        dropout, training = spec.dropout, module.training
        if lengths is None:
            result = kernel(
                x, hx, flat, spec.bias, spec.num_layers, dropout, training, spec.bidirectional, spec.batch_first
            )
            if spec.mode == "lstm":
                return result[0], result[1], result[2]
            return result[0], result[1], None

        T = x.shape[1] if spec.batch_first else x.shape[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=spec.batch_first, enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx = (h0[:, order], c0[:, order]) if spec.mode == "lstm" else h0[:, order]
        result = kernel(
            packed.data, packed.batch_sizes, hx, flat, spec.bias, spec.num_layers, dropout, training, spec.bidirectional
        )
        out_packed = packed._replace(data=result[0])
        out, _ = pad_packed_sequence(out_packed, batch_first=spec.batch_first, total_length=T)
        h_n = result[1][:, unorder]
        c_n = result[2][:, unorder] if spec.mode == "lstm" else None
        return out, h_n, c_n
