"""The task generators against the papers' definitions, checked with independent hand-written code."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from lstmkit.experiments import tasks
from lstmkit.experiments.tasks import (
    REBER_SYMBOLS,
    TEMPORAL_SYMBOLS,
    ContinualReber,
    adding_problem,
    copy_baseline,
    copy_task,
    embedded_reber,
    encode_reber,
    legal_next_sets,
    temporal_order,
)

# The embedded Reber language written out by hand as a regular expression (Reber 1967's graph: from the
# node after "BT" the inner string is T S* X then a loop (X T* V P)* left by S or X T* V V; after "BP"
# it is P T* V, a loop (P X T* V)*, left by P S or V). Independent of the generator's automaton table.
ERG = re.compile(r"^B([TP])B(?:TS*X(?:XT*VP)*(?:S|XT*VV)|PT*V(?:PXT*V)*(?:PS|V))E\1E$")


# ------------------------------------------------------------------------------ adding problem
def test_adding_problem_structure_and_target():
    T = 100
    b = adding_problem(4000, T, rng=0)
    x, L = b.x.numpy(), b.lengths.numpy()
    assert x.shape == (4000, int(L.max()), 2)
    assert L.min() >= T and L.max() <= T + T // 10
    assert set(np.unique(L)) == set(range(T, T + T // 10 + 1))  # every length of [T, T + T/10] occurs
    for k in range(len(L)):  # a plain loop, the definition read off the paper
        vals, marks, n = x[k, :, 0], x[k, :, 1], L[k]
        assert np.all(vals[n:] == 0) and np.all(marks[n:] == 0)
        assert np.all(np.abs(vals[:n]) <= 1)
        ones = np.flatnonzero(marks == 1)
        assert len(ones) == 2
        assert ones.min() < 10 and ones.max() <= T // 2 - 1
        assert marks[n - 1] == -1
        assert marks[0] == (1 if 0 in ones else -1)
        if 0 in ones:
            assert vals[0] == 0  # "if the first pair was the one marked, X1 = 0"
        assert set(np.flatnonzero(marks[:n] == 0)) == set(range(n)) - set(ones) - {0, n - 1}
        assert b.target[k].item() == pytest.approx(0.5 + vals[ones].sum() / 4, abs=1e-6)
        assert set(ones) == set(b.marked[k].tolist())


def test_adding_problem_marker_distributions():
    T = 100
    m = adding_problem(20000, T, rng=1).marked.numpy()
    p1, p2 = m[:, 0], m[:, 1]
    # X1: uniform over the first 10 pairs
    counts = np.bincount(p1, minlength=10)
    assert len(counts) == 10 and np.all(np.abs(counts / len(p1) - 0.1) < 0.012)
    # X2: one of the first T/2 - 1 still unmarked pairs, i.e. uniform over {0, …, T/2 - 1} \ {X1}
    assert np.all(p2 != p1) and p2.max() == T // 2 - 1 and p2.min() == 0
    late = p2[p2 >= 10]  # positions 10..49 are never X1, so each has probability 1/49
    assert abs(len(late) / len(p2) - 40 / 49) < 0.01


def test_adding_problem_seeded_and_validated():
    a, b = adding_problem(8, 100, rng=7), adding_problem(8, 100, rng=7)
    assert torch.equal(a.x, b.x) and torch.equal(a.target, b.target)
    c = adding_problem(8, 100, rng=8)
    assert not torch.equal(a.target, c.target)
    with pytest.raises(ValueError, match="T must be"):
        adding_problem(4, 10)
    with pytest.raises(ValueError, match="positive int"):
        adding_problem(0, 100)


# ------------------------------------------------------------------------------ temporal order
@pytest.mark.parametrize("version", ["a", "b"])
def test_temporal_order_sequences_and_labels(version):
    b = temporal_order(3000, version, rng=0)
    windows = {"a": [(10, 20), (50, 60)], "b": [(10, 20), (33, 43), (66, 76)]}[version]
    # the papers' class tables, written out
    table = {
        "a": {"XX": "Q", "XY": "R", "YX": "S", "YY": "U"},
        "b": {"XXX": "Q", "XXY": "R", "XYX": "S", "XYY": "U", "YXX": "V", "YXY": "A", "YYX": "B", "YYY": "C"},
    }[version]
    classes = tasks.TEMPORAL_CLASSES[version]
    L = b.lengths.numpy()
    assert L.min() == 100 and L.max() == 110
    for k in range(len(L)):
        s = "".join(TEMPORAL_SYMBOLS[i] for i in b.symbols[k, : L[k]].tolist())
        assert (b.symbols[k, L[k]:] == -1).all() and (b.x[k, L[k]:] == 0).all()
        assert torch.equal(b.x[k, : L[k]].argmax(-1), b.symbols[k, : L[k]]) and (b.x[k, : L[k]].sum(-1) == 1).all()
        assert s[0] == "E" and s[-1] == "B"
        rel = [t for t, c in enumerate(s) if c in "XY"]
        assert len(rel) == len(windows)
        for t, (lo, hi) in zip(rel, windows):
            assert lo <= t + 1 <= hi  # the paper's positions are 1-based
        assert set(s[1:-1]) - set("XY") <= set("abcd")
        assert classes[b.label[k]] == table["".join(s[t] for t in rel)]
    counts = np.bincount(b.label.numpy(), minlength=len(classes))
    assert np.all(np.abs(counts / len(L) - 1 / len(classes)) < 0.04)


def test_temporal_order_position_ranges_covered():
    b = temporal_order(4000, "a", rng=1)
    pos = b.positions.numpy() + 1
    assert set(pos[:, 0]) == set(range(10, 21)) and set(pos[:, 1]) == set(range(50, 61))
    with pytest.raises(ValueError, match="version"):
        temporal_order(2, "c")


# ------------------------------------------------------------------------------ Reber grammars
def test_embedded_reber_strings_are_in_the_language():
    strings = embedded_reber(3000, rng=0)
    assert all(ERG.match(s) for s in strings), [s for s in strings if not ERG.match(s)][:3]
    assert not ERG.match("BTBTXSEPE") and ERG.match("BTBTXSETE")  # the regex itself can say no


def test_embedded_reber_distribution():
    strings = embedded_reber(20000, rng=1)
    # every branch is a fair coin: P(outer = T) = 1/2; the two shortest inner strings BTXSE and BPVVE
    # each take three coin flips (T/P, X/S, S/X and P/T, V/T, V/P): probability 1/8 each
    assert abs(np.mean([s[1] == "T" for s in strings]) - 0.5) < 0.015
    for inner in ("BTXSE", "BPVVE"):
        assert abs(np.mean([s[2:-2] == inner for s in strings]) - 1 / 8) < 0.01
    # mean inner length (B…E): expected symbols still to come, by hand from the graph's fair coins:
    # L(after BT) = 1 + L4/2... solving the six linear equations gives 7 after the inner B, so 8 in all
    assert 7.5 < np.mean([len(s) - 4 for s in strings]) < 8.5


def test_legal_next_sets_for_a_known_string():
    # worked by hand on Reber's graph: B→{T,P}; T (outer)→{B}; B→{T,P}; P→{T,V}; V→{P,V}; V→{E};
    # E→{T} (the outer symbol, the long lag); T→{E}; E→{B} (the next string of a stream)
    assert legal_next_sets("BTBPVVETE") == [
        {"T", "P"}, {"B"}, {"T", "P"}, {"T", "V"}, {"P", "V"}, {"E"}, {"T"}, {"E"}, {"B"},
    ]  # fmt: skip
    assert legal_next_sets("BPBTSSXXTTVPSEPE")[:8] == [
        {"T", "P"}, {"B"}, {"T", "P"}, {"S", "X"}, {"S", "X"}, {"S", "X"}, {"X", "S"}, {"T", "V"},
    ]  # fmt: skip
    assert legal_next_sets("BPBTSSXXTTVPSEPE")[-3:] == [{"P"}, {"E"}, {"B"}]
    with pytest.raises(ValueError, match="not an embedded Reber string"):
        legal_next_sets("BTBTXSEPE")


def test_encode_reber_targets():
    b = encode_reber(["BTBPVVETE", "BPBTXSEPE"])
    assert b.lengths.tolist() == [8, 8]
    sym = lambda v: {REBER_SYMBOLS[i] for i in torch.nonzero(v).flatten().tolist()}  # noqa: E731
    assert [sym(b.legal[0, t]) for t in range(8)] == legal_next_sets("BTBPVVETE")[:8]
    assert sym(b.legal[1, 6]) == {"P"} and sym(b.x[1, 6]) == {"E"}


def test_continual_reber_stream_is_concatenated_strings_with_legal_targets():
    gen = ContinualReber(3, rng=0)
    x1, l1 = gen.next(150)
    x2, l2 = gen.next(150)  # continues the same streams
    x, legal = torch.cat([x1, x2], 1), torch.cat([l1, l2], 1)
    for k in range(3):
        stream = "".join(REBER_SYMBOLS[i] for i in x[k].argmax(-1).tolist())
        parts = re.findall(r"B[TP]B.*?E[TP]E", stream)
        complete = "".join(parts)
        assert stream.startswith(complete) and len(complete) > 200
        assert all(ERG.match(p) for p in parts)
        expected = [s for p in parts for s in legal_next_sets(p)]
        got = [{REBER_SYMBOLS[i] for i in torch.nonzero(v).flatten().tolist()} for v in legal[k, : len(complete)]]
        assert got == expected


# ------------------------------------------------------------------------------ copy task
def test_copy_task_layout():
    T = 30
    b = copy_task(500, T, rng=0)
    x, y = b.x.numpy(), b.y.numpy()
    assert x.shape == y.shape == (500, T + 20)
    assert np.all((x[:, :10] >= 1) & (x[:, :10] <= 8)) and set(np.unique(x[:, :10])) == set(range(1, 9))
    assert np.all(x[:, 10 : T + 9] == 0) and np.all(x[:, T + 9] == 9) and np.all(x[:, T + 10 :] == 0)
    assert np.all(y[:, : T + 10] == 0) and np.array_equal(y[:, T + 10 :], x[:, :10])


def test_copy_baseline_is_the_memoryless_cross_entropy():
    T = 40
    b = copy_task(64, T, rng=1)
    # the memoryless strategy: blank with certainty for T + 10 steps, then uniform over the 8 symbols
    probs = torch.zeros(64, T + 20, 9)
    probs[:, : T + 10, 0] = 1.0
    probs[:, T + 10 :, 1:] = 1 / 8
    ce = -torch.log(probs.gather(-1, b.y.unsqueeze(-1))).mean().item()
    assert ce == pytest.approx(copy_baseline(T), rel=1e-6)
    assert copy_baseline(100) == pytest.approx(10 * math.log(8) / 120)
