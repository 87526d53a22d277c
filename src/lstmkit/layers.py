"""Recurrent layers with torch.nn-compatible signatures, returns and state_dicts.

``lstmkit.LSTM`` is a drop-in for ``torch.nn.LSTM``: same constructor arguments, same
``(output, (h_n, c_n))`` return, same parameter names and gate order (i, f, g, o), so state_dicts load
both ways with no conversion. On top of that it runs every member of the LSTM family
(``variant=``, see :mod:`lstmkit.core.cells` for the equations), layer normalisation, and padded batches
of variable length (``lengths=``), and it chooses how to run through ``backend=``.

Parameter names per layer ``k`` (``_reverse`` appended for the backward direction)::

    weight_ih_l{k}   (G, I or D·P)   gate rows in the order i, f, g, o (a variant's removed gate omitted)
    weight_hh_l{k}   (G, P or H)
    bias_ih_l{k}, bias_hh_l{k}  (G,)
    weight_hr_l{k}   (P, H)          projection (proj_size > 0)
    weight_peep_l{k} (n_peep, H)     peephole weights, one row per gate that has one, in the order i, f, o
    weight_fgr_l{k}  (3H, 3H)        FGR's recurrence from the previous i, f, o to i, f, o
    ln_ih_weight_l{k}, ln_ih_bias_l{k}, ln_hh_weight_l{k}, ln_hh_bias_l{k}  (G,)   layer norm
    ln_cell_weight_l{k}, ln_cell_bias_l{k}  (H,)
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit.core import backends
from lstmkit.core.cells import (
    CellWeights,
    LSTMStepState,
    get_variant,
    input_projection,
    standard_step,
    variant_step,
)
from lstmkit.core.reference import RNNSpec

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "LSTMState"]


class LSTMState(NamedTuple):
    """The recurrent state of an LSTM: ``h`` (…, P or H) and ``c`` (…, H). Unpacks like torch's tuple."""

    h: Tensor
    c: Tensor


_GATES = {"gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _check_int(name: str, value: object, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}; {fix}")
    return int(value)


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """U(-1/√H, 1/√H) for every weight and bias in registration order (torch's order, so one seed gives
    torch's layer), layer-norm gains 1 and shifts 0 (no random draw)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for name, p in module.named_parameters():
        if name.startswith("ln_"):
            nn.init.ones_(p) if "_weight" in name else nn.init.zeros_(p)
        else:
            nn.init.uniform_(p, -bound, bound)


def _cell_weights(params: dict[str, Tensor], roles: dict[str, str]) -> CellWeights:
    """Gather one layer-direction's parameters (``roles``: CellWeights field -> parameter name)."""
    get = {role: params[name] for role, name in roles.items()}
    ln = {part: (get[f"ln_{part}_w"], get[f"ln_{part}_b"]) for part in ("ih", "hh", "cell") if f"ln_{part}_w" in get}
    return CellWeights(
        get["w_ih"], get["w_hh"], get.get("b_ih"), get.get("b_hh"), get.get("w_hr"), get.get("w_peep"),
        get.get("w_fgr"), ln.get("ih"), ln.get("hh"), ln.get("cell"),
    )  # fmt: skip


class _RecurrentBase(nn.Module):
    """Shared machinery: argument checks, parameters, backend dispatch, input/state/lengths checks."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        variant: str = "standard",
        layer_norm: bool = False,
        forget_bias: float | None = None,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        input_size = _check_int("input_size", input_size, 1, "pass the number of features per time step")
        hidden_size = _check_int("hidden_size", hidden_size, 1, "pass the number of units, e.g. hidden_size=50")
        num_layers = _check_int("num_layers", num_layers, 1, "use num_layers=1 for a single layer")
        proj_size = _check_int("proj_size", proj_size, 0, "use proj_size=0 for no projection")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"dropout must be a float in [0, 1], got {type(dropout).__name__} {dropout!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1] (a probability), got {dropout}; e.g. dropout=0.2")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} has no effect with num_layers=1: it is applied between layers",
                stacklevel=3,
            )
        if mode != "lstm":
            if proj_size:
                raise ValueError(f"proj_size={proj_size} is only for LSTM layers; use proj_size=0")
            if layer_norm:
                raise ValueError("layer_norm=True is only for LSTM layers; use layer_norm=False")
        if proj_size and proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}; "
                "use proj_size=0 for no projection"
            )
        if forget_bias is not None and (isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real)):
            raise TypeError(f"forget_bias must be a float or None, got {type(forget_bias).__name__}")
        var = get_variant(variant) if mode == "lstm" else None
        if forget_bias is not None and (var is None or "f" not in var.gates or var.coupled):
            what = f"variant={variant!r}" if var is not None else f"a {mode.upper()} layer"
            raise ValueError(f"forget_bias is set but {what} has no forget gate; leave forget_bias=None")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True (it initialises the forget-gate bias)")

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        self.variant = var.name if var is not None else None
        self.layer_norm = bool(layer_norm)
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        self.spec = RNNSpec(
            mode, input_size, hidden_size, num_layers, self.bias, self.batch_first, self.dropout,
            self.bidirectional, proj_size, var, self.layer_norm,
        )  # fmt: skip
        self.backend = backends.check_name(backend)
        if backend != "auto":
            backends.resolve(backend, self.spec, None, None)  # configuration errors now, not at forward
        self._backend_cache: dict[tuple, backends.Backend] = {}
        self._make_parameters(device, dtype)
        self.reset_parameters()

    # ---------------------------------------------------------------- parameters
    def _make_parameters(self, device, dtype) -> None:
        spec, kw = self.spec, {"device": device, "dtype": dtype}
        H, D = spec.hidden_size, spec.num_directions
        G = (spec.variant.num_gates if spec.mode == "lstm" else _GATES[spec.mode]) * H
        self._roles: list[dict[str, str]] = []  # per layer·direction: CellWeights field -> parameter name
        self._flat_weights_names: list[str] = []  # torch's order, for the fused kernels
        for layer in range(spec.num_layers):
            in_size = spec.input_size if layer == 0 else spec.output_size * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                roles: dict[str, str] = {}

                def add(role: str, name: str, *shape: int, flat: bool = False) -> None:
                    self.register_parameter(name + sfx, nn.Parameter(torch.empty(*shape, **kw)))
                    roles[role] = name + sfx
                    if flat:
                        self._flat_weights_names.append(name + sfx)

                add("w_ih", "weight_ih", G, in_size, flat=True)
                add("w_hh", "weight_hh", G, spec.output_size, flat=True)
                if spec.bias:
                    add("b_ih", "bias_ih", G, flat=True)
                    add("b_hh", "bias_hh", G, flat=True)
                if spec.proj_size:
                    add("w_hr", "weight_hr", spec.proj_size, H, flat=True)
                if spec.mode == "lstm" and spec.variant.peepholes:
                    add("w_peep", "weight_peep", len(spec.variant.peepholes), H)
                if spec.mode == "lstm" and spec.variant.full_recurrence:
                    add("w_fgr", "weight_fgr", 3 * H, 3 * H)
                if spec.layer_norm:
                    for part, size in (("ih", G), ("hh", G), ("cell", H)):
                        add(f"ln_{part}_w", f"ln_{part}_weight", size)
                        add(f"ln_{part}_b", f"ln_{part}_bias", size)
                self._roles.append(roles)

    def reset_parameters(self) -> None:
        """torch's initialisation, U(-1/√H, 1/√H) for every weight and bias (in torch's order, so the
        same seed gives the same standard layer as torch), layer-norm gains 1 and shifts 0, and, when
        ``forget_bias`` is set, the forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015)."""
        _init_uniform(self, self.hidden_size)
        if self.forget_bias is not None:
            H, f = self.hidden_size, self.spec.variant.gates.index("f")
            with torch.no_grad():
                for roles in self._roles:
                    getattr(self, roles["b_ih"])[f * H : (f + 1) * H].fill_(self.forget_bias)
                    getattr(self, roles["b_hh"])[f * H : (f + 1) * H].zero_()

    def flat_weights(self) -> list[Tensor]:
        """Parameters in torch's flat order (w_ih, w_hh, b_ih, b_hh, w_hr per layer and direction)."""
        params = self._parameters
        return [params[n] for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        return [[self._parameters[n] for n in roles.values()] for roles in self._roles]

    def cell_weights(self) -> list[CellWeights]:
        """One :class:`CellWeights` per layer and direction, in torch's order."""
        return [_cell_weights(self._parameters, roles) for roles in self._roles]

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self._backend_cache.clear()
        self.flatten_parameters()
        return result

    def flatten_parameters(self) -> None:
        """On CUDA, lay the fused kernels' weights out in one contiguous buffer as cuDNN wants (what
        ``torch.nn.LSTM.flatten_parameters`` does); a no-op elsewhere or where cuDNN is not used."""
        weights = self.flat_weights()
        if not weights or not weights[0].is_cuda or not torch.backends.cudnn.is_acceptable(weights[0]):
            return
        if any(w.dtype != weights[0].dtype for w in weights) or self.spec.layer_norm:
            return
        if self.mode == "lstm" and not self.spec.is_standard_lstm:
            return
        from torch.backends.cudnn import rnn as cudnn_rnn

        with torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    weights, (4 if self.bias else 2) + (1 if self.proj_size else 0), self.input_size,
                    cudnn_rnn.get_cudnn_mode(self.mode.upper()), self.hidden_size, self.proj_size,
                    self.num_layers, self.batch_first, self.bidirectional,
                )  # fmt: skip

    # ---------------------------------------------------------------- forward helpers
    def resolved_backend(self, input: Tensor | None = None) -> str:
        """The backend that runs this layer for ``input``'s device and dtype (default: the parameters')."""
        probe = input if input is not None else self.flat_weights()[0]
        return self._backend_for(probe).name

    def _backend_for(self, x: Tensor) -> backends.Backend:
        key = (x.device.type, x.dtype)
        be = self._backend_cache.get(key)
        if be is None:
            be = self._backend_cache[key] = backends.resolve(self.backend, self.spec, x.device, x.dtype)
        return be

    def _prepare(
        self, input: Tensor, hx, lengths
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, bool]:
        """Check input, state and lengths; return batched input, h0, c0, lengths and whether unbatched."""
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(
                f"input must be 3-D {layout} or 2-D (T, I) for one sequence, got a {input.dim()}-D tensor "
                f"of shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {input.shape[-1]} features in its last dimension but the layer was built with "
                f"input_size={self.input_size}; pass input of shape (…, {self.input_size}) or rebuild the layer"
            )
        if not input.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}; use input.float()")
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        B = input.shape[0] if self.batch_first else input.shape[1]
        T = input.shape[1] if self.batch_first else input.shape[0]

        LD = self.num_layers * self.spec.num_directions
        h_shape = (LD, B, self.spec.output_size)
        c_shape = (LD, B, self.hidden_size)
        if hx is None:
            h0 = input.new_zeros(h_shape)
            c0 = input.new_zeros(c_shape) if self.mode == "lstm" else None
        else:
            if self.mode == "lstm":
                if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                    raise TypeError("hx must be a tuple (h_0, c_0) for an LSTM, or None for zeros")
                h0, c0 = hx
            else:
                if not isinstance(hx, Tensor):
                    raise TypeError(f"hx must be a tensor h_0 for a {self.mode.upper()}, or None for zeros")
                h0, c0 = hx, None
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = None if c0 is None else c0.unsqueeze(1)
            if tuple(h0.shape) != h_shape:
                raise ValueError(f"h_0 must have shape {h_shape} (layers·directions, batch, size), got {tuple(h0.shape)}")
            if c0 is not None and tuple(c0.shape) != c_shape:
                raise ValueError(f"c_0 must have shape {c_shape} (layers·directions, batch, hidden), got {tuple(c0.shape)}")

        if lengths is not None:
            lengths = self._check_lengths(lengths, B, T)
        return input, h0, c0, lengths, unbatched

    @staticmethod
    def _check_lengths(lengths, B: int, T: int) -> Tensor:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != B:
            raise ValueError(f"lengths must be a 1-D sequence of {B} lengths (one per batch entry), got shape {tuple(lengths.shape)}")
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(
                f"lengths must lie in [1, {T}] (the padded sequence length), got min {lo} and max {hi}; "
                "drop empty sequences and pad the batch to the longest one"
            )
        return lengths.to(torch.int64)

    def _run(self, input, hx, lengths):
        packed_in = isinstance(input, PackedSequence)
        if packed_in:
            if lengths is not None:
                raise ValueError("lengths must be None when input is a PackedSequence (it carries its lengths)")
            input, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
        x, h0, c0, lengths, unbatched = self._prepare(input, hx, lengths)
        out, h_n, c_n = self._backend_for(x).forward(self.spec, self, x, h0, c0, lengths)
        if packed_in:
            out = pack_padded_sequence(out, lengths, batch_first=self.batch_first, enforce_sorted=False)
        elif unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return out, h_n, c_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False), ("proj_size", 0)):
            if hasattr(self, name) and getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.mode == "lstm" and self.variant != "standard":
            s += f", variant={self.variant!r}"
        if self.layer_norm:
            s += ", layer_norm=True"
        if self.forget_bias is not None:
            s += f", forget_bias={self.forget_bias}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s


class LSTM(_RecurrentBase):
    r"""A stack of LSTM layers; a drop-in for ``torch.nn.LSTM`` that also runs the LSTM's variants.

    The standard cell computes the seed article's equations 1–6 (see :mod:`lstmkit.core.cells` for
    them and for every variant's change):

    .. math::
        f_t = \sigma(W_f [h_{t-1}, x_t] + b_f), \; i_t = \sigma(W_i [h_{t-1}, x_t] + b_i), \;
        \tilde C_t = \tanh(W_C [h_{t-1}, x_t] + b_C), \\
        C_t = f_t \odot C_{t-1} + i_t \odot \tilde C_t, \; o_t = \sigma(W_o [h_{t-1}, x_t] + b_o), \;
        h_t = o_t \odot \tanh(C_t)

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size:
            as in ``torch.nn.LSTM`` (dropout acts between layers).
        variant: ``"standard"`` (default), ``"peephole"`` (Greff's vanilla), or one of Greff et al.
            2017's ablations ``"nig"``, ``"nfg"``, ``"nog"``, ``"niaf"``, ``"noaf"``, ``"cifg"``, ``"fgr"``.
        layer_norm: layer-normalised LSTM (Ba et al. 2016).
        forget_bias: ``None`` keeps torch's initialisation; a number initialises the forget-gate bias to
            it (``bias_ih`` slice = value, ``bias_hh`` slice = 0). 1.0 is Gers et al. 2000's and
            Jozefowicz et al. 2015's advice; larger values (3–5) help very long time lags.
        backend: ``"auto"`` (torch's fused kernel whenever the configuration is the standard cell, the
            reference loop otherwise), ``"native"``, ``"reference"``, or a registered kernel.

    Forward: ``lstm(input, hx=None, lengths=None) -> (output, LSTMState(h_n, c_n))``. ``lengths`` (B,)
    gives each padded sequence's true length: outputs past it are zero and ``h_n``/``c_n`` are taken at
    each sequence's own last step (the reverse direction starts there). A ``PackedSequence`` input is
    accepted too.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
        *, variant: str = "standard", layer_norm: bool = False, forget_bias: float | None = None,
        backend: str = "auto", device=None, dtype=None,
    ) -> None:  # fmt: skip
        super().__init__(
            "lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
            variant, layer_norm, forget_bias, backend, device, dtype,
        )  # fmt: skip

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, lengths=None):
        out, h_n, c_n = self._run(input, hx, lengths)
        return out, LSTMState(h_n, c_n)


class GRU(_RecurrentBase):
    r"""A stack of GRU layers (Cho et al. 2014), a drop-in for ``torch.nn.GRU``, with ``lengths=``.

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \;
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}), \\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})), \;
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Forward: ``gru(input, hx=None, lengths=None) -> (output, h_n)``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
        *, backend: str = "auto", device=None, dtype=None,
    ) -> None:  # fmt: skip
        super().__init__(
            "gru", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            backend=backend, device=device, dtype=dtype,
        )  # fmt: skip

    def forward(self, input: Tensor, hx: Tensor | None = None, lengths=None):
        out, h_n, _ = self._run(input, hx, lengths)
        return out, h_n


class RNN(_RecurrentBase):
    r"""A stack of Elman RNN layers, a drop-in for ``torch.nn.RNN``: the vanishing-gradient baseline.

    .. math:: h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}) \quad (\text{or ReLU})

    Forward: ``rnn(input, hx=None, lengths=None) -> (output, h_n)``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
        bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
        *, backend: str = "auto", device=None, dtype=None,
    ) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, backend=backend, device=device, dtype=dtype,
        )  # fmt: skip

    def forward(self, input: Tensor, hx: Tensor | None = None, lengths=None):
        out, h_n, _ = self._run(input, hx, lengths)
        return out, h_n


class LSTMCell(nn.Module):
    r"""One LSTM step, a drop-in for ``torch.nn.LSTMCell`` (same parameter names), for any variant.

    ``cell(input, hx=None) -> (h, c)`` with input (B, I) or (I,). The ``"fgr"`` variant also carries the
    previous step's gates: pass and receive ``(h, c, gates)``, with ``gates`` (B, 3H) zero at the start.
    Equations: :mod:`lstmkit.core.cells`.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, variant: str = "standard",
        layer_norm: bool = False, forget_bias: float | None = None, device=None, dtype=None,
    ) -> None:  # fmt: skip
        super().__init__()
        # A one-layer LSTM holds exactly the parameters a cell needs; the cell reuses its checks and
        # initialisation and exposes the parameters under torch.nn.LSTMCell's names (no _l0 suffix).
        layer = LSTM(
            input_size, hidden_size, 1, bias, variant=variant, layer_norm=layer_norm, forget_bias=forget_bias,
            backend="reference", device=device, dtype=dtype,
        )  # fmt: skip
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        self.variant, self.layer_norm, self.forget_bias = layer.variant, layer.layer_norm, layer.forget_bias
        self.spec = layer.spec
        self._roles = {role: name[: -len("_l0")] for role, name in layer._roles[0].items()}
        for role, name in layer._roles[0].items():
            self.register_parameter(self._roles[role], layer._parameters[name])

    def reset_parameters(self) -> None:
        """torch's U(-1/√H, 1/√H) initialisation (layer-norm gains 1, shifts 0), then ``forget_bias``."""
        _init_uniform(self, self.hidden_size)
        if self.forget_bias is not None:
            H, f = self.hidden_size, self.spec.variant.gates.index("f")
            with torch.no_grad():
                self.bias_ih[f * H : (f + 1) * H].fill_(self.forget_bias)
                self.bias_hh[f * H : (f + 1) * H].zero_()

    def forward(self, input: Tensor, hx=None):
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"input must be 2-D (B, I) or 1-D (I,) for an LSTMCell, got {shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {input.shape[-1]} features but the cell was built with input_size={self.input_size}"
            )
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
        B, H = input.shape[0], self.hidden_size
        fgr = self.spec.variant.full_recurrence
        if hx is None:
            z = input.new_zeros(B, H)
            state = LSTMStepState(z, z, input.new_zeros(B, 3 * H) if fgr else None)
        else:
            parts = [t.unsqueeze(0) if unbatched else t for t in hx]
            if len(parts) != (3 if fgr else 2):
                raise TypeError("hx must be (h, c)" + (", gates) for variant='fgr'" if fgr else ""))
            state = LSTMStepState(*parts)
        w = _cell_weights(self._parameters, self._roles)
        xg = input_projection(input, w, self.layer_norm)  # (B, G)
        if self.spec.variant.is_standard:
            new = standard_step(xg, state, w, self.layer_norm)
        else:
            new = variant_step(xg, state, w, self.spec.variant, self.layer_norm)
        out = (new.h, new.c, new.gates) if fgr else (new.h, new.c)
        return tuple(t.squeeze(0) for t in out) if unbatched else out
