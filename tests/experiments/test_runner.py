"""The experiment runner: the papers' criteria score oracles as passing and constant outputs as failing,
a tiny training run learns, and the CLI / variant study produce their outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from lstmkit.experiments import runner
from lstmkit.experiments.cli import main
from lstmkit.experiments.greff import greff_study
from lstmkit.experiments.runner import (
    AddingTask,
    ReberTask,
    RunConfig,
    TemporalOrderTask,
    _topk_correct,
    run_experiment,
    run_model,
)
from lstmkit.experiments.tasks import REBER_SYMBOLS, legal_next_sets


class _Fixed(nn.Module):
    """A stand-in network: ``fn(x, lengths)`` gives (per-step outputs, last outputs)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, lengths=None, state=None):
        out, last = self.fn(x, lengths)
        return out, last, None


def test_topk_criterion():
    legal = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    out = torch.tensor([[2.0, 1.5, 1.0, -3], [0.0, 0.1, 0.2, 0.1], [1.0, 2.0, 0.0, 3.0]])
    assert _topk_correct(out, legal).tolist() == [True, True, False]


def test_adding_criterion_on_oracle_and_constant():
    task = AddingTask(100, n_test=512, n_val=64)
    task.setup(0)

    def exact(x, lengths):  # the answer from the inputs, as a logit for the task's sigmoid read-out
        t = 0.5 + (x[..., 0] * (x[..., 1] == 1)).sum(1) / 4
        return None, torch.logit(t.clamp(1e-6, 1 - 1e-6)).unsqueeze(-1)

    good = task.test(_Fixed(exact))
    assert good.passed and good.details["wrong"] == 0 and good.value == 1.0
    const = task.test(_Fixed(lambda x, L: (None, torch.zeros(len(x), 1))))  # always 0.5
    assert not const.passed
    # the best constant output: MSE = Var(X1 + X2)/16 = (0.9/3 + (1 - 0.9/49)/3)/16 ≈ 0.039 (X1 is 0 when the
    # first pair is marked, 1 time in 10; X2 is 0 when it lands there); without that rule 1/24 ≈ 0.0417
    assert const.details["mse"] == pytest.approx(0.0392, abs=0.005)
    assert 0.7 < const.details["wrong"] / 512 < 0.9  # |X1 + X2| / 4 < 0.04 is rare


def test_temporal_order_criterion_on_oracle():
    task = TemporalOrderTask("a", n_test=256, n_val=32)
    task.setup(0)

    def read(x, lengths):  # X is symbol 6, Y symbol 7: the class is the Y bits in order
        sym = x.argmax(-1)
        ys = [(sym[b][(sym[b] == 6) | (sym[b] == 7)] == 7).long() for b in range(len(x))]
        label = torch.stack([2 * y[0] + y[1] for y in ys])
        return None, 10.0 * nn.functional.one_hot(label, 4).float()

    assert task.test(_Fixed(read)).passed
    # confident but always class Q: wrong on the other three quarters
    wrong = task.test(_Fixed(lambda x, L: (None, 10.0 * nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 4).float())))
    assert not wrong.passed and 0.65 < 1 - wrong.value < 0.85


def test_reber_criterion_on_oracle():
    task = ReberTask(n_train=32, n_test=32)
    task.setup(0)

    def oracle(x, lengths):
        out = torch.full(x.shape, -5.0)
        for b in range(len(x)):
            s = "".join(REBER_SYMBOLS[i] for i in x[b, : lengths[b]].argmax(-1).tolist())
            for t, legal in enumerate(legal_next_sets(s + "E")[:-1]):
                for c in legal:
                    out[b, t, REBER_SYMBOLS.index(c)] = 5.0
        return out, None

    assert task.test(_Fixed(oracle)).passed
    # predicting only the inner grammar right but guessing T at the long lag fails half the strings
    def lag_blind(x, lengths):
        out, _ = oracle(x, lengths)
        for b in range(len(x)):
            t = int(lengths[b]) - 2  # input: the inner E; target: the outer T/P
            out[b, t, REBER_SYMBOLS.index("T")], out[b, t, REBER_SYMBOLS.index("P")] = 5.0, -5.0
        return out, None

    s = task.test(_Fixed(lag_blind))
    assert not s.passed and 0.3 < s.value < 0.7


def test_tiny_training_run_learns_the_reber_grammar_inner_part():
    task = ReberTask(n_train=64, n_test=64)
    cfg = RunConfig(hidden_size=12, lr=2e-2, batch_size=16, steps=120, eval_every=1000, seed=0)
    task.setup(0)
    torch.manual_seed(0)
    before = run_model(task, "lstm", config=RunConfig(**{**cfg.__dict__, "steps": 1}))
    after = run_model(task, "lstm", config=cfg)
    assert after.steps == 120 and after.sequences_seen == 120 * 16
    # per-symbol errors fall: the inner grammar is learned within ~100 steps
    task.setup(0)
    net = runner.SequenceNet("lstm", 7, 12, 7)
    assert after.details["train_wrong"] + after.details["test_wrong"] <= before.details["train_wrong"] + before.details["test_wrong"]
    assert after.details["parameters"] == sum(p.numel() for p in net.parameters())
    # the training loss itself must fall a lot (a broken loss or optimiser would not)
    torch.manual_seed(0)
    task.setup(0)
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    losses = []
    for _ in range(80):
        loss = task.loss(net, 16)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])


def test_run_experiment_results_and_forget_bias():
    assert run_experiment("adding", ("lstm",), steps=1).results[0].variant == "nfg"  # the 1997 cell by default
    rep = run_experiment("adding", ("lstm", "rnn"), variant="standard", steps=2, seed=1, T=100)
    d = rep.to_dict()
    assert d["task"] == "adding" and "0.04" in d["criterion"] and "2560" in d["paper"]
    lstm, rnn = d["results"]
    assert lstm["config"]["forget_bias"] == 3.0 and rnn["config"]["forget_bias"] is None
    for r in (lstm, rnn):
        assert set(r) >= {"criterion", "value", "measured", "passed", "sequences_seen", "wall_time_s"}
        assert r["sequences_seen"] == 2 * 64 and r["passed"] is False
    assert run_experiment("continual-reber", ("lstm",), variant="nfg", steps=1, test_symbols=200).results[0].config["forget_bias"] is None


def test_cli_json_and_errors(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["experiment", "temporal-order", "--model", "rnn", "--steps", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "31,390" in text and "|error| < 0.3" in text and "rnn" in text
    d = json.loads(out.read_text())
    assert d["results"][0]["model"] == "rnn" and d["results"][0]["steps"] == 2
    assert main(["experiment", "adding", "--T", "7"]) == 2
    assert main(["experiment", "adding", "--model", "lstm", "--variant", "nope", "--steps", "1"]) == 2
    assert main(["experiment", "continual-reber", "--no-forget-gate", "--variant", "cifg"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_cli_registers_into_a_parent_parser():
    import argparse

    from lstmkit.experiments.cli import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(["experiment", "continual-reber", "--no-forget-gate", "--steps", "3"])
    assert args.forget_gate is False and args.steps == 3 and callable(args.func)


def test_greff_study_table_and_plot(tmp_path):
    rep = greff_study("temporal-order", variants=("peephole", "cifg"), seeds=(0,), lrs=(1e-2,), steps=2, n_test=64, n_val=16)
    table = rep.table()
    assert [r["variant"] for r in table] == ["V (vanilla)", "CIFG"] and all(r["runs"] == 1 for r in table)
    assert all(0 <= r["median"] <= 100 for r in table)
    png = rep.plot(tmp_path / "box.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("vanilla" in c for c in rep.conclusions())
    with pytest.raises(ValueError, match="variant"):
        greff_study("temporal-order", variants=("vanila",))


@pytest.mark.parametrize("variant,row", [("standard", 0), ("nfg", 0), ("cifg", 0), ("nig", None)])
def test_input_bias_sets_only_the_input_gate_rows(variant, row):
    from lstmkit.experiments.runner import SequenceNet

    torch.manual_seed(0)
    plain = SequenceNet("lstm", 2, 5, 1, variant=variant)
    torch.manual_seed(0)
    net = SequenceNet("lstm", 2, 5, 1, variant=variant, input_bias=-3.0)
    b_ih, b_hh = net.rnn.bias_ih_l0.detach(), net.rnn.bias_hh_l0.detach()
    ref_ih, ref_hh = plain.rnn.bias_ih_l0.detach(), plain.rnn.bias_hh_l0.detach()
    if row is None:  # NIG has no input gate: nothing changes
        assert torch.equal(b_ih, ref_ih) and torch.equal(b_hh, ref_hh)
        return
    H = 5
    i_rows = slice(row * H, (row + 1) * H)
    assert torch.equal(b_ih[i_rows], torch.full((H,), -3.0))
    assert torch.equal(b_hh[i_rows], torch.zeros(H))
    rest = torch.ones(b_ih.shape[0], dtype=torch.bool)
    rest[i_rows] = False
    assert torch.equal(b_ih[rest], ref_ih[rest]) and torch.equal(b_hh[rest], ref_hh[rest])
