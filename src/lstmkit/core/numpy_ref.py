r"""The standard LSTM in plain NumPy: forward, hand-written backpropagation through time, and Adam.

This module is both a reading companion to the seed article and the gradient oracle the tests hold
the torch code to. It imports nothing but NumPy, so every number it produces comes from the lines
below. The cell is the article's equations 1–6 (Gers et al. 2000, identical to ``torch.nn.LSTM``):

.. math::
    f_t &= \sigma(W_f [h_{t-1}, x_t] + b_f) \\
    i_t &= \sigma(W_i [h_{t-1}, x_t] + b_i) \\
    g_t &= \tanh(W_g [h_{t-1}, x_t] + b_g) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    o_t &= \sigma(W_o [h_{t-1}, x_t] + b_o) \\
    h_t &= o_t \odot \tanh(c_t)

The weights use torch's layout so that they can be exchanged with ``torch.nn.LSTM``: the matrix
acting on :math:`[h, x]` is split into ``w_ih`` (4H, I) and ``w_hh`` (4H, H), the bias into
``b_ih + b_hh``, and the four gates' rows are stacked in the order i, f, g, o.

Shapes: T time steps, B batch, I input features, H hidden units; sequences are time-major (T, B, I).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import NamedTuple

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function :math:`1 / (1 + e^{-a})`, without overflow for large ``|a|``."""
    e = np.exp(-np.abs(a))  # only ever exp of a non-positive number, so never inf
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class LSTMParams:
    """One layer's parameters, named and laid out as in ``torch.nn.LSTM`` (gate rows i, f, g, o)."""

    w_ih: np.ndarray  # (4H, I)
    w_hh: np.ndarray  # (4H, H)
    b_ih: np.ndarray  # (4H,)
    b_hh: np.ndarray  # (4H,)

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @classmethod
    def from_state_dict(cls, state: dict, layer: int = 0) -> LSTMParams:
        """Layer ``layer`` of a ``torch.nn.LSTM(...).state_dict()`` (tensors or arrays), copied."""
        # Copies, because Adam updates in place and must not write into a torch module's memory.
        return cls(*(np.asarray(state[f"{name}_l{layer}"]).copy() for name in _TORCH_NAMES))

    def to_state_dict(self, layer: int = 0) -> dict[str, np.ndarray]:
        """The four arrays under ``torch.nn.LSTM``'s names (wrap them with ``torch.from_numpy``)."""
        return {f"{name}_l{layer}": getattr(self, f.name) for name, f in zip(_TORCH_NAMES, fields(self))}


_TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def init_params(input_size: int, hidden_size: int, rng=None, dtype=np.float64) -> LSTMParams:
    r"""Random parameters drawn like torch's: every entry from :math:`U(-1/\sqrt{H}, 1/\sqrt{H})`."""
    rng = np.random.default_rng(rng)
    k = 1.0 / np.sqrt(hidden_size)
    G = 4 * hidden_size
    shapes = [(G, input_size), (G, hidden_size), (G,), (G,)]
    return LSTMParams(*(rng.uniform(-k, k, size=s).astype(dtype) for s in shapes))


class LSTMCache(NamedTuple):
    """What the forward pass keeps for the backward pass (everything indexed by step t)."""

    x: np.ndarray  # (T, B, I)
    h_prev: np.ndarray  # (T, B, H)   h_{t-1}, the recurrent input of step t
    c_prev: np.ndarray  # (T, B, H)   c_{t-1}
    gates: np.ndarray  # (T, B, 4H)  activations i, f, g, o (after sigmoid / tanh)
    tanh_c: np.ndarray  # (T, B, H)   tanh(c_t)


class LSTMGrads(NamedTuple):
    """Gradients of a scalar loss with respect to everything the forward pass read."""

    params: LSTMParams  # same shapes as the parameters
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H)
    c0: np.ndarray  # (B, H)


def forward(params: LSTMParams, x: np.ndarray, h0=None, c0=None):
    """Run one layer over a sequence: ``x`` (T, B, I) -> ``(hs, (h_n, c_n), cache)``.

    ``hs`` (T, B, H) holds every step's hidden state, like torch's ``output``; ``h0`` and ``c0`` (B, H)
    default to zeros. Pass ``cache`` to :func:`backward`.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be time-major (T, B, I); got shape {x.shape}")
    T, B, _ = x.shape
    H = params.hidden_size
    h = np.zeros((B, H), x.dtype) if h0 is None else h0  # (B, H)
    c = np.zeros((B, H), x.dtype) if c0 is None else c0  # (B, H)
    # The input part of every step's pre-activation does not depend on h, so it is one GEMM up front.
    xg = x @ params.w_ih.T + params.b_ih + params.b_hh  # (T, B, 4H)
    h_prev, c_prev = np.empty((T, B, H), x.dtype), np.empty((T, B, H), x.dtype)
    gates, tanh_c = np.empty((T, B, 4 * H), x.dtype), np.empty((T, B, H), x.dtype)
    hs = np.empty((T, B, H), x.dtype)
    for t in range(T):
        h_prev[t], c_prev[t] = h, c
        a = xg[t] + h @ params.w_hh.T  # (B, 4H)
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # (B, H) each, rows in torch's order i, f, g, o
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        c = f * c + i * g  # (B, H)   eq. 4: forget part of the old memory, write part of the candidate
        tanh_c[t] = np.tanh(c)
        h = o * tanh_c[t]  # (B, H)   eq. 6
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        hs[t] = h
    return hs, (h, c), LSTMCache(x, h_prev, c_prev, gates, tanh_c)


def backward(params: LSTMParams, cache: LSTMCache, dh_all: np.ndarray, dh_n=None, dc_n=None) -> LSTMGrads:
    r"""Backpropagation through time for :func:`forward`.

    ``dh_all`` (T, B, H) is :math:`\partial L / \partial h_t` coming from outside the recurrence (the
    readout, or the layer above); ``dh_n`` and ``dc_n`` (B, H) are the gradients reaching the final
    state directly. Returns :class:`LSTMGrads`. Per step, from the last to the first:

    .. math::
        \delta h_t &= \partial L / \partial h_t + W_{hh}^\top \delta a_{t+1} \\
        \delta c_t &= \delta h_t \odot o_t \odot (1 - \tanh^2 c_t) + \delta c_{t+1} \odot f_{t+1} \\
        \delta o_t &= \delta h_t \odot \tanh c_t, \quad \delta f_t = \delta c_t \odot c_{t-1}, \quad
        \delta i_t = \delta c_t \odot g_t, \quad \delta g_t = \delta c_t \odot i_t \\
        \delta a_t &= [\delta i_t\, i_t(1-i_t),\ \delta f_t\, f_t(1-f_t),\ \delta g_t (1-g_t^2),\
                       \delta o_t\, o_t(1-o_t)]
    """
    x, h_prev, c_prev, gates, tanh_c = cache
    T, B, H = h_prev.shape
    da = np.empty_like(gates)  # (T, B, 4H)  gradients of the pre-activations, kept for the weight GEMMs
    dh_next = np.zeros((B, H), x.dtype) if dh_n is None else dh_n  # (B, H)  reaches h_{T-1} from outside
    dc_next = np.zeros((B, H), x.dtype) if dc_n is None else dc_n  # (B, H)  dL/dc_t through c_{t+1} only
    for t in reversed(range(T)):
        i, f, g, o = np.split(gates[t], 4, axis=1)
        # h_t feeds the loss (dh_all) and the next step's pre-activations (dh_next, already W_hh^T-mapped).
        dh = dh_all[t] + dh_next  # (B, H)
        # h = o * tanh(c): c_t reaches the loss through h_t and through c_{t+1} = f_{t+1} c_t + ...
        dc = dh * o * (1.0 - tanh_c[t] ** 2) + dc_next  # (B, H)
        do = dh * tanh_c[t]
        # c = f * c_prev + i * g: each factor's gradient is the other factor times dc.
        df, di, dg = dc * c_prev[t], dc * g, dc * i
        # Through the nonlinearities: sigma' = s (1 - s), tanh' = 1 - tanh^2.
        da[t] = np.concatenate(  # (B, 4H)
            [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1
        )
        dh_next = da[t] @ params.w_hh  # (B, H)   a_t = ... + W_hh h_{t-1}
        dc_next = dc * f  # (B, H)   the memory path: only a product with f, the reason gradients survive
    # a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh for every t: sum the per-step outer products at once.
    da2 = da.reshape(T * B, 4 * H)  # (T*B, 4H)
    dparams = LSTMParams(
        w_ih=da2.T @ x.reshape(T * B, -1),  # (4H, I)
        w_hh=da2.T @ h_prev.reshape(T * B, H),  # (4H, H)
        b_ih=da2.sum(axis=0),  # (4H,)
        b_hh=da2.sum(axis=0),  # (4H,)  both biases are added to the same sum, so share its gradient
    )
    return LSTMGrads(dparams, da @ params.w_ih, dh_next, dc_next)


def stacked_forward(layers: list[LSTMParams], x: np.ndarray, h0=None, c0=None):
    """``len(layers)`` layers, each reading the hidden states of the one below (torch's ``num_layers``).

    ``h0``/``c0`` and the returned ``h_n``/``c_n`` are (L, B, H), as in torch; returns
    ``(hs, (h_n, c_n), caches)``.
    """
    hn, cn, caches = [], [], []
    for k, p in enumerate(layers):
        x, (h, c), cache = forward(p, x, None if h0 is None else h0[k], None if c0 is None else c0[k])
        hn.append(h), cn.append(c), caches.append(cache)
    return x, (np.stack(hn), np.stack(cn)), caches


def stacked_backward(layers: list[LSTMParams], caches, dh_all, dh_n=None, dc_n=None) -> list[LSTMGrads]:
    """Backward pass of :func:`stacked_forward`: one :class:`LSTMGrads` per layer, bottom first.

    A layer's input gradient is the upstream ``dh_all`` of the layer below; ``grads[0].x`` is the
    gradient with respect to the network input.
    """
    grads = []
    for k in reversed(range(len(layers))):
        dh_k = None if dh_n is None else dh_n[k]
        dc_k = None if dc_n is None else dc_n[k]
        gk = backward(layers[k], caches[k], dh_all, dh_k, dc_k)
        grads.append(gk)
        dh_all = gk.x
    return grads[::-1]


@dataclass
class Linear:
    """A readout :math:`y = W h + b` applied at every step: (..., H) -> (..., O)."""

    w: np.ndarray  # (O, H)
    b: np.ndarray  # (O,)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        return h @ self.w.T + self.b

    def backward(self, h: np.ndarray, dy: np.ndarray) -> tuple[Linear, np.ndarray]:
        """``(gradients as a Linear, dL/dh)`` for input ``h`` and upstream ``dy``."""
        h2, dy2 = h.reshape(-1, h.shape[-1]), dy.reshape(-1, dy.shape[-1])  # (N, H), (N, O)
        return Linear(dy2.T @ h2, dy2.sum(axis=0)), dy @ self.w


def mse_loss_and_grad(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all entries (torch's ``MSELoss()``) and its gradient w.r.t. ``pred``."""
    diff = pred - target
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def _arrays(obj) -> list[np.ndarray]:
    """The arrays in a parameter container: an array, a dataclass of arrays, or a list of these."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if is_dataclass(obj):
        return [getattr(obj, f.name) for f in fields(obj)]
    return [a for item in obj for a in _arrays(item)]


class Adam:
    r"""Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam`` with its defaults.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1 - \beta_1^t} \cdot
                    \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``step(params, grads)`` updates the arrays of ``params`` in place; ``params`` and ``grads`` are
    matching containers (an :class:`LSTMParams`, a :class:`Linear`, or a list of such).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m: list[np.ndarray] | None = None
        self.v: list[np.ndarray] | None = None

    def step(self, params, grads) -> None:
        ps, gs = _arrays(params), _arrays(grads)
        if self.m is None:
            self.m, self.v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
        b1, b2 = self.betas
        self.t += 1
        # The moments start at zero, so early averages are biased towards zero by exactly these factors.
        bias1, bias2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, g, m, v in zip(ps, gs, self.m, self.v):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            # Same grouping as torch (eps added after dividing sqrt(v) by sqrt(bias2)), so results agree.
            p -= (self.lr / bias1) * m / (np.sqrt(v) / np.sqrt(bias2) + self.eps)


def train_sine_demo(steps: int = 200, hidden_size: int = 16, seed: int = 0, lr: float = 1e-2) -> list[float]:
    """Teach an LSTM + linear readout to predict the next value of noisy-phase sine waves.

    Everything is this module's own code: forward, loss, BPTT, Adam. Returns the loss of every step
    (it falls by more than an order of magnitude with the defaults).
    """
    rng = np.random.default_rng(seed)
    T, B = 30, 16
    lstm = init_params(1, hidden_size, rng)
    k = 1.0 / np.sqrt(hidden_size)
    head = Linear(rng.uniform(-k, k, (1, hidden_size)), rng.uniform(-k, k, (1,)))
    opt, losses = Adam(lr=lr), []
    for _ in range(steps):
        phase = rng.uniform(0, 2 * np.pi, size=(1, B, 1))
        wave = np.sin(phase + 0.3 * np.arange(T + 1)[:, None, None])  # (T+1, B, 1)
        hs, _, cache = forward(lstm, wave[:-1])
        loss, dy = mse_loss_and_grad(head(hs), wave[1:])
        dhead, dhs = head.backward(hs, dy)
        opt.step([lstm, head], [backward(lstm, cache, dhs).params, dhead])
        losses.append(loss)
    return losses
