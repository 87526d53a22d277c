"""A character n-gram language model with interpolated Kneser–Ney smoothing: the baseline of text generation.

For a context ``h`` of ``k − 1`` tokens and a next token ``w`` (Chen & Goodman 1998, interpolated KN)::

    P_k(w | h) = max(c_k(h w) − D_k, 0) / c_k(h ·)  +  D_k · N_k(h ·) / c_k(h ·) · P_{k−1}(w | h')
    P_0(w)     = 1 / V

where ``h'`` drops the oldest token of ``h``; ``c_k`` is the raw count for the model's highest order and
the *continuation* count (how many distinct tokens precede ``h w``) for the lower orders; ``c_k(h ·)`` is
the sum of ``c_k(h w)`` over ``w`` and ``N_k(h ·)`` the number of distinct ``w`` with ``c_k(h w) > 0``; a
context never seen (``c_k(h ·) = 0``) falls back to ``P_{k−1}`` whole. The discount is
``D_k = n1 / (n1 + 2 n2)`` from the order's count-of-counts. Every level is a proper distribution over
the ``V`` ids, so ``P_n(· | h)`` sums to 1 for every context — the unknown id included, which is how a
character unseen in training gets its (small) probability, exactly as in the LSTM it is compared with.

Everything is vectorised: an n-gram is one int64 key (base-``V`` digits), the tables are sorted unique
keys with their counts, and scoring a text is a ``searchsorted`` per order. The text is left-padded with
``n − 1`` copies of ``pad_id`` (the ``<bos>`` id), so the first characters are scored from the start symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmkit.errors import ConfigError, DataError

LN2 = math.log(2.0)


@dataclass
class _Level:
    """One order's table: sorted n-gram keys with counts, and per-context totals (all int64)."""

    keys: np.ndarray  # (K,) sorted unique keys of k-grams
    counts: np.ndarray  # (K,) raw or continuation counts
    ctx_keys: np.ndarray  # (C,) sorted unique context keys (the k-gram key // V)
    ctx_total: np.ndarray  # (C,) c(h ·)
    ctx_types: np.ndarray  # (C,) N(h ·)
    discount: float


def _ngram_keys(ids: np.ndarray, k: int, V: int) -> np.ndarray:
    """Keys of all k-grams of ``ids`` (len(ids) − k + 1 of them): sum of ids[t + j] · V^(k − 1 − j)."""
    n = len(ids) - k + 1
    key = np.zeros(max(n, 0), dtype=np.int64)
    for j in range(k):
        key = key * V + ids[j : j + n]
    return key


def _discount(counts: np.ndarray) -> float:
    n1 = int((counts == 1).sum())
    n2 = int((counts == 2).sum())
    if n1 == 0:
        return 0.5  # no singletons (a tiny or highly repetitive text): a moderate default
    return float(min(0.95, max(0.05, n1 / (n1 + 2 * n2))))


def _level(keys: np.ndarray, counts: np.ndarray, V: int) -> _Level:
    ctx = keys // V
    ctx_keys, start = np.unique(ctx, return_index=True)  # keys are sorted, so contexts come in runs
    ctx_total = np.add.reduceat(counts, start) if len(counts) else counts
    ctx_types = np.diff(np.append(start, len(keys)))
    return _Level(keys, counts, ctx_keys, ctx_total.astype(np.int64), ctx_types.astype(np.int64), _discount(counts))


def _lookup(table: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query``'s positions in the sorted ``table``; 0 where absent."""
    if len(table) == 0:
        return np.zeros(len(query), dtype=np.int64)
    pos = np.searchsorted(table, query)
    pos = np.minimum(pos, len(table) - 1)
    found = table[pos] == query
    return np.where(found, values[pos], 0)


class NGramLM:
    """Interpolated Kneser–Ney n-gram model over token ids ``0 … V − 1``.

    ``fit(train_ids, val_ids)`` counts every order up to ``max_order`` and, with validation ids, keeps the
    order in ``orders`` whose validation bits per token are lowest (``order_scores_`` lists them all).
    """

    def __init__(self, vocab_size: int, *, orders: tuple[int, ...] = (3, 4, 5, 6, 7), pad_id: int = 2) -> None:
        if vocab_size < 2:
            raise ConfigError(f"vocab_size must be at least 2, got {vocab_size}")
        orders = tuple(sorted({int(o) for o in orders}))
        if not orders or orders[0] < 1:
            raise ConfigError(f"orders must be positive integers, got {orders}")
        max_fit = math.floor(62 * LN2 / math.log(vocab_size))  # keys must fit in int64
        if orders[-1] > max_fit:
            raise ConfigError(f"order {orders[-1]} is too high for a vocabulary of {vocab_size} (keys overflow); use orders up to {max_fit}")
        self.V = int(vocab_size)
        self.orders = orders
        self.pad_id = int(pad_id)
        self.order_: int | None = None
        self.order_scores_: dict[int, float] = {}

    # ------------------------------------------------------------------ fit
    def fit(self, train_ids, val_ids=None) -> NGramLM:
        ids = self._ids(train_ids)
        if len(ids) == 0:
            raise DataError("the n-gram model needs training text; got none")
        n = self.orders[-1]
        padded = np.concatenate([np.full(n - 1, self.pad_id, dtype=np.int64), ids])
        self._raw: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cont: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for k in range(1, n + 1):
            keys = _ngram_keys(padded, k, self.V)[n - k :]  # the k-grams that end on a real token
            uk, cnt = np.unique(keys, return_counts=True)
            self._raw[k] = (uk, cnt.astype(np.int64))
        for k in range(1, n):
            # continuation count of a k-gram: distinct left neighbours = distinct (k+1)-grams ending in it
            longer = self._raw[k + 1][0] % (self.V**k)
            uk, cnt = np.unique(longer, return_counts=True)
            self._cont[k] = (uk, cnt.astype(np.int64))
        self.order_scores_ = {}
        if val_ids is not None and len(self._ids(val_ids)):
            for order in self.orders:
                self.set_order(order)
                self.order_scores_[order] = self.bits(val_ids) / len(val_ids)
            best = min(self.order_scores_, key=self.order_scores_.get)
        else:
            best = self.orders[-1]
        self.set_order(best)
        return self

    def set_order(self, order: int) -> None:
        """Use the tables of orders 1 … ``order`` (raw counts at ``order``, continuation counts below)."""
        if order not in self._raw:
            raise ConfigError(f"order {order} was not counted; fitted orders go up to {max(self._raw)}")
        self.order_ = order
        self._levels = [_level(*(self._raw[k] if k == order else self._cont[k]), self.V) for k in range(1, order + 1)]

    @staticmethod
    def _ids(ids) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64).reshape(-1)

    # ------------------------------------------------------------------ probabilities
    def _prob(self, hist: np.ndarray, target: np.ndarray) -> np.ndarray:
        """P(target | hist) for rows of ``hist`` (N, order − 1) ids (oldest first) and ``target`` (N,)."""
        p = np.full(len(target), 1.0 / self.V)
        ctx = np.zeros(len(target), dtype=np.int64)
        for k, lv in enumerate(self._levels, start=1):
            if k > 1:  # context of order k: the k − 1 most recent tokens
                ctx = ctx + hist[:, -(k - 1)] * (self.V ** (k - 2))
            key = ctx * self.V + target
            c = _lookup(lv.keys, lv.counts, key).astype(np.float64)
            tot = _lookup(lv.ctx_keys, lv.ctx_total, ctx).astype(np.float64)
            types = _lookup(lv.ctx_keys, lv.ctx_types, ctx).astype(np.float64)
            seen = tot > 0
            safe = np.where(seen, tot, 1.0)
            mixed = (np.maximum(c - lv.discount, 0.0) + lv.discount * types * p) / safe
            p = np.where(seen, mixed, p)
        return p

    def log_probs(self, ids) -> np.ndarray:
        """Natural-log probability of every token of ``ids`` given the ones before it (a fresh text)."""
        self._check_fitted()
        ids = self._ids(ids)
        h = self.order_ - 1
        padded = np.concatenate([np.full(h, self.pad_id, dtype=np.int64), ids])
        hist = np.lib.stride_tricks.sliding_window_view(padded[:-1], h) if len(ids) else np.zeros((0, h), dtype=np.int64)  # (N, h)
        return np.log(self._prob(hist, ids))

    def bits(self, ids) -> float:
        """Total −log2 probability of ``ids``."""
        return float(-self.log_probs(ids).sum() / LN2)

    def distribution(self, context) -> np.ndarray:
        """P(w | context) for every id ``w`` (V,), from the last ``order − 1`` ids of ``context`` (padded)."""
        self._check_fitted()
        h = self.order_ - 1
        ctx = self._ids(context)[-h:] if h else np.zeros(0, dtype=np.int64)
        ctx = np.concatenate([np.full(h - len(ctx), self.pad_id, dtype=np.int64), ctx])
        hist = np.broadcast_to(ctx, (self.V, h))
        return self._prob(hist, np.arange(self.V, dtype=np.int64))

    def _check_fitted(self) -> None:
        if self.order_ is None:
            raise ConfigError("this n-gram model is not fitted; call fit(train_ids) first")

    # ------------------------------------------------------------------ storage (no pickle)
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The chosen order's tables as arrays (for safetensors) and a small JSON dict."""
        self._check_fitted()
        arrays = {}
        for k in range(1, self.order_ + 1):
            keys, counts = self._raw[k] if k == self.order_ else self._cont[k]
            arrays[f"keys_{k}"], arrays[f"counts_{k}"] = keys, counts
        meta = {"vocab_size": self.V, "order": self.order_, "orders": list(self.orders), "pad_id": self.pad_id,
                "order_scores": {str(k): v for k, v in self.order_scores_.items()}}  # fmt: skip
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> NGramLM:
        self = cls(meta["vocab_size"], orders=tuple(meta["orders"]), pad_id=meta["pad_id"])
        order = int(meta["order"])
        self._raw = {order: (arrays[f"keys_{order}"], arrays[f"counts_{order}"])}
        self._cont = {k: (arrays[f"keys_{k}"], arrays[f"counts_{k}"]) for k in range(1, order)}
        self.order_scores_ = {int(k): float(v) for k, v in meta.get("order_scores", {}).items()}
        self.set_order(order)
        return self
