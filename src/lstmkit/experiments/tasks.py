r"""Generators of the long-time-lag tasks, following the papers to the letter.

Every generator takes ``n`` (how many sequences) and a NumPy ``Generator`` (``np.random.default_rng(seed)``),
draws a whole batch with array operations and returns torch tensors, batch first and zero-padded:

=========================  ===========================================================================
:func:`adding_problem`      Hochreiter & Schmidhuber 1997, Exp. 4
:func:`temporal_order`      Hochreiter & Schmidhuber 1997, Exp. 6a (``version="a"``) and 6b (``"b"``)
:func:`embedded_reber`      Hochreiter & Schmidhuber 1997, Exp. 1 (next-symbol prediction)
:class:`ContinualReber`     Gers, Schmidhuber & Cummins 2000 (embedded Reber strings, never reset)
:func:`copy_task`           Arjovsky, Shah & Bengio 2016 (copying memory problem)
=========================  ===========================================================================

Positions in docstrings are 0-based unless they say "1-based" (the 1997 paper counts from 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "AddingBatch",
    "TemporalOrderBatch",
    "ReberBatch",
    "CopyBatch",
    "adding_problem",
    "temporal_order",
    "embedded_reber",
    "encode_reber",
    "legal_next_sets",
    "ContinualReber",
    "copy_task",
    "copy_baseline",
    "REBER_SYMBOLS",
    "TEMPORAL_SYMBOLS",
    "TEMPORAL_CLASSES",
]


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (the number of sequences) must be a positive int, got {n!r}")
    return int(n)


# ============================================================================ adding problem
@dataclass(frozen=True)
class AddingBatch:
    x: Tensor  # (B, T_max, 2): value in [-1, 1], marker in {1, 0, -1}; zero past each length
    lengths: Tensor  # (B,) int64, uniform in [T, T + T//10]
    target: Tensor  # (B,) 0.5 + (X1 + X2) / 4
    marked: Tensor  # (B, 2) int64 positions of the two marked pairs (X1's first)


def adding_problem(n: int, T: int = 100, rng: np.random.Generator | int | None = None) -> AddingBatch:
    """The adding problem of Hochreiter & Schmidhuber 1997, Exp. 4.

    Each step is a pair (value ~ U[-1, 1], marker). A sequence's length is uniform in [T, T + T/10].
    One of the first 10 pairs is marked (marker 1; its value is X1), then one of the first T/2 − 1
    *still unmarked* pairs (X2). The first and the last pair carry marker −1 unless marked; in the rare
    case that the first pair is marked its value is set to 0 (the paper: "we set X1 to zero"). The
    target, given at the sequence end only, is 0.5 + (X1 + X2)/4. A sequence is correct if the
    absolute error at its end is below 0.04.
    """
    n = _check_n(n)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 22:
        raise ValueError(f"T must be an int >= 22 (the second mark needs T/2 - 1 > 10 positions), got {T!r}")
    rng = _rng(rng)
    T = int(T)
    lengths = rng.integers(T, T + T // 10, size=n, endpoint=True)  # (B,)
    t_max = int(lengths.max())
    values = rng.uniform(-1.0, 1.0, size=(n, t_max))
    values[np.arange(t_max)[None, :] >= lengths[:, None]] = 0.0
    p1 = rng.integers(0, 10, size=n)  # one of the first 10 pairs
    # one of the first T/2 - 1 pairs that are still unmarked: positions 0..T/2-1 without p1
    k = rng.integers(0, T // 2 - 1, size=n)
    p2 = k + (k >= p1)
    markers = np.zeros((n, t_max))
    rows = np.arange(n)
    markers[:, 0] = -1.0
    markers[rows, lengths - 1] = -1.0
    markers[rows, p1] = 1.0
    markers[rows, p2] = 1.0
    values[:, 0] = np.where(markers[:, 0] == 1.0, 0.0, values[:, 0])
    target = 0.5 + (values[rows, p1] + values[rows, p2]) / 4.0
    x = np.stack([values, markers], axis=-1)  # (B, T_max, 2)
    return AddingBatch(
        torch.from_numpy(x).float(),
        torch.from_numpy(lengths).long(),
        torch.from_numpy(target).float(),
        torch.from_numpy(np.stack([p1, p2], axis=1)).long(),
    )


# ============================================================================ temporal order
TEMPORAL_SYMBOLS = ("a", "b", "c", "d", "E", "B", "X", "Y")  # one-hot input index = position here
# class index = the X/Y symbols read as a binary number, X = 0, Y = 1, first symbol most significant
TEMPORAL_CLASSES = {"a": ("Q", "R", "S", "U"), "b": ("Q", "R", "S", "U", "V", "A", "B", "C")}
# 1-based windows of the relevant positions t1, t2 (, t3)
TEMPORAL_WINDOWS = {"a": ((10, 20), (50, 60)), "b": ((10, 20), (33, 43), (66, 76))}


@dataclass(frozen=True)
class TemporalOrderBatch:
    x: Tensor  # (B, T_max, 8) one-hot over TEMPORAL_SYMBOLS; zero past each length
    lengths: Tensor  # (B,) int64 in [100, 110]
    label: Tensor  # (B,) int64 class index (Q, R, S, U[, V, A, B, C])
    symbols: Tensor  # (B, T_max) int64 symbol indices, -1 past each length
    positions: Tensor  # (B, 2 or 3) int64 0-based positions of the X/Y symbols


def temporal_order(
    n: int, version: str = "a", rng: np.random.Generator | int | None = None
) -> TemporalOrderBatch:
    """Temporal order, Hochreiter & Schmidhuber 1997, Exp. 6a / 6b.

    Length uniform in [100, 110]; the sequence starts with E, ends with the trigger B and is otherwise
    random symbols from {a, b, c, d}, except at t1 ∈ [10, 20] and t2 ∈ [50, 60] (1-based), which hold X
    or Y. 6a: XX → Q, XY → R, YX → S, YY → U. 6b: three positions t1 ∈ [10, 20], t2 ∈ [33, 43],
    t3 ∈ [66, 76] and 8 classes XXX → Q, XXY → R, XYX → S, XYY → U, YXX → V, YXY → A, YYX → B, YYY → C.
    A sequence is classified correctly if every output's final absolute error is below 0.3.
    """
    n = _check_n(n)
    if version not in TEMPORAL_WINDOWS:
        raise ValueError(f"version must be 'a' (Exp. 6a) or 'b' (Exp. 6b), got {version!r}")
    rng = _rng(rng)
    lengths = rng.integers(100, 110, size=n, endpoint=True)
    t_max = int(lengths.max())
    sym = rng.integers(0, 4, size=(n, t_max))  # a..d
    sym[:, 0] = TEMPORAL_SYMBOLS.index("E")
    rows = np.arange(n)
    sym[rows, lengths - 1] = TEMPORAL_SYMBOLS.index("B")
    windows = TEMPORAL_WINDOWS[version]
    pos = np.stack([rng.integers(lo, hi, size=n, endpoint=True) - 1 for lo, hi in windows], axis=1)
    is_y = rng.integers(0, 2, size=(n, len(windows)))
    for j in range(len(windows)):
        sym[rows, pos[:, j]] = TEMPORAL_SYMBOLS.index("X") + is_y[:, j]
    label = (is_y * (1 << np.arange(len(windows))[::-1])).sum(axis=1)
    sym[np.arange(t_max)[None, :] >= lengths[:, None]] = -1
    x = np.zeros((n, t_max, len(TEMPORAL_SYMBOLS)), dtype=np.float32)
    valid = sym >= 0
    x[np.nonzero(valid) + (sym[valid],)] = 1.0
    return TemporalOrderBatch(
        torch.from_numpy(x),
        torch.from_numpy(lengths).long(),
        torch.from_numpy(label).long(),
        torch.from_numpy(sym).long(),
        torch.from_numpy(pos).long(),
    )


# ============================================================================ Reber grammars
REBER_SYMBOLS = "BTPSXVE"
_S = {c: i for i, c in enumerate(REBER_SYMBOLS)}
_OUTER = -1  # "the symbol the string started with" (T or P), remembered per string

# The embedded Reber grammar as one automaton. A state lists what may be emitted next, each choice
# with probability 1/2, and the state it leads to. States 3-8 are the inner Reber grammar (Reber 1967;
# Hochreiter & Schmidhuber 1997, Fig. 1); state 9 repeats the outer T/P (the long-time-lag part);
# after state 10's E the string is complete (state 0: a continual stream starts the next string).
_ERG = {
    0: (("B", 1),),
    1: (("T", 2), ("P", 2)),
    2: (("B", 3),),
    3: (("T", 4), ("P", 5)),  # inner start
    4: (("S", 4), ("X", 6)),
    5: (("T", 5), ("V", 7)),
    6: (("X", 5), ("S", 8)),
    7: (("P", 6), ("V", 8)),
    8: (("E", 9),),  # inner end
    9: ((_OUTER, 10),),
    10: (("E", 0),),
}
_NSTATE = len(_ERG)
_SYM = np.zeros((_NSTATE, 2), dtype=np.int64)  # symbol of choice 0 / 1 (_OUTER for state 9)
_NXT = np.zeros((_NSTATE, 2), dtype=np.int64)
_LEGAL = np.zeros((_NSTATE, len(REBER_SYMBOLS)), dtype=np.float32)  # legal emissions (state 9: set per string)
for _s, _opts in _ERG.items():
    _opts2 = _opts if len(_opts) == 2 else _opts * 2
    for _j, (_c, _t) in enumerate(_opts2):
        _SYM[_s, _j] = _S[_c] if _c != _OUTER else _OUTER
        _NXT[_s, _j] = _t
        if _c != _OUTER:
            _LEGAL[_s, _S[_c]] = 1.0


def _legal_rows(state: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """Multi-hot (…, 7) legal next symbols for automaton states ``state`` with outer symbols ``outer``."""
    legal = _LEGAL[state].copy()
    at9 = state == 9
    legal[at9, outer[at9]] = 1.0
    return legal


def _emit(state: np.ndarray, outer: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One vectorised step of the automaton: returns the emitted symbols and updates ``outer`` in place."""
    choice = rng.integers(0, 2, size=state.shape)
    sym = _SYM[state, choice]
    sym = np.where(sym == _OUTER, outer, sym)
    at1 = state == 1
    outer[at1] = sym[at1]
    return sym, _NXT[state, choice]


def embedded_reber(n: int, rng: np.random.Generator | int | None = None) -> list[str]:
    """``n`` embedded Reber strings, e.g. ``"BTBTXSETE"``: B, then T or P, then a Reber string, then
    the same T or P, then E (Hochreiter & Schmidhuber 1997, Exp. 1). Every choice has probability 1/2."""
    n = _check_n(n)
    rng = _rng(rng)
    state = np.zeros(n, dtype=np.int64)
    outer = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    cols: list[np.ndarray] = []
    while not done.all():
        sym, nxt = _emit(state, outer, rng)
        cols.append(np.where(done, -1, sym))
        done |= (state == 10)
        state = np.where(done, 0, nxt)
    table = np.stack(cols, axis=1)
    return ["".join(REBER_SYMBOLS[s] for s in row if s >= 0) for row in table]


def legal_next_sets(string: str) -> list[set[str]]:
    """For each symbol of an embedded Reber ``string`` the set of symbols that may legally follow it
    (after the final E of a string: ``{"B"}``, the start of the next string of a continual stream).
    Raises ``ValueError`` at the first illegal symbol."""
    state, outer = 0, None
    out: list[set[str]] = []
    for k, ch in enumerate(string):
        opts = [(outer if c == _OUTER else c, t) for c, t in _ERG[state]]
        nxt = [t for c, t in opts if c == ch]
        if not nxt:
            raise ValueError(f"{string!r} is not an embedded Reber string: {ch!r} at position {k} cannot follow {string[:k]!r}")
        if state == 1:
            outer = ch
        state = nxt[0]
        out.append({outer if c == _OUTER else c for c, _ in _ERG[state]})
    return out


@dataclass(frozen=True)
class ReberBatch:
    x: Tensor  # (B, T_max, 7) one-hot of every symbol but the last; zero past each length
    legal: Tensor  # (B, T_max, 7) multi-hot legal next symbols (the targets); zero past each length
    lengths: Tensor  # (B,) int64 = len(string) - 1


def encode_reber(strings: list[str]) -> ReberBatch:
    """Next-symbol prediction data: input the symbol at step t, target the set of legal symbols at t + 1."""
    if not strings:
        raise ValueError("strings is empty; pass at least one embedded Reber string")
    lengths = np.array([len(s) - 1 for s in strings])
    t_max = int(lengths.max())
    x = np.zeros((len(strings), t_max, len(REBER_SYMBOLS)), dtype=np.float32)
    legal = np.zeros_like(x)
    for b, s in enumerate(strings):  # strings are short (≤ a few dozen symbols); encoding is not the bottleneck
        sets = legal_next_sets(s)
        for t in range(len(s) - 1):
            x[b, t, _S[s[t]]] = 1.0
            for c in sets[t]:
                legal[b, t, _S[c]] = 1.0
    return ReberBatch(torch.from_numpy(x), torch.from_numpy(legal), torch.from_numpy(lengths).long())


class ContinualReber:
    """``n`` continual embedded Reber streams (Gers, Schmidhuber & Cummins 2000): embedded Reber strings
    concatenated with no separator and no reset. :meth:`next` continues every stream by ``length`` symbols.
    """

    def __init__(self, n: int, rng: np.random.Generator | int | None = None) -> None:
        self.n = _check_n(n)
        self.rng = _rng(rng)
        self.state = np.zeros(self.n, dtype=np.int64)
        self.outer = np.zeros(self.n, dtype=np.int64)

    def next(self, length: int) -> tuple[Tensor, Tensor]:
        """The next ``length`` symbols of each stream: ``(x, legal)``, both (n, length, 7): the one-hot
        symbol at t and the multi-hot set of symbols legal at t + 1."""
        syms = np.empty((self.n, length), dtype=np.int64)
        legal = np.empty((self.n, length, len(REBER_SYMBOLS)), dtype=np.float32)
        for t in range(length):
            sym, self.state = _emit(self.state, self.outer, self.rng)
            syms[:, t] = sym
            legal[:, t] = _legal_rows(self.state, self.outer)
        x = np.eye(len(REBER_SYMBOLS), dtype=np.float32)[syms]
        return torch.from_numpy(x), torch.from_numpy(legal)


# ============================================================================ copy task
@dataclass(frozen=True)
class CopyBatch:
    x: Tensor  # (B, T + 20) int64 input categories 0..9
    y: Tensor  # (B, T + 20) int64 target categories 0..8


def copy_task(n: int, T: int = 100, rng: np.random.Generator | int | None = None) -> CopyBatch:
    """The copying memory problem of Arjovsky, Shah & Bengio 2016 (§4.1).

    Input (length T + 20): 10 categories drawn uniformly from {1, …, 8}, then T − 1 blanks (0), the
    delimiter 9, then 10 blanks. Target: T + 10 blanks, then the 10 categories in order. The memoryless
    baseline (blanks, then uniform guesses) has cross-entropy 10·ln 8 / (T + 20) per step.
    """
    n = _check_n(n)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive int (the number of blanks to bridge), got {T!r}")
    rng = _rng(rng)
    T = int(T)
    seq = rng.integers(1, 9, size=(n, 10))
    x = np.zeros((n, T + 20), dtype=np.int64)
    x[:, :10] = seq
    x[:, T + 9] = 9
    y = np.zeros((n, T + 20), dtype=np.int64)
    y[:, T + 10 :] = seq
    return CopyBatch(torch.from_numpy(x), torch.from_numpy(y))


def copy_baseline(T: int) -> float:
    """Cross-entropy per step (nats) of the memoryless strategy on the copy task: 10·ln 8 / (T + 20)."""
    return 10.0 * math.log(8.0) / (T + 20)
