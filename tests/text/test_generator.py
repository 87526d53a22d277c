"""TextGenerator: stateful truncated BPTT, bits per character, overfitting a tiny text, save/load, sampling,
corpus reading, the cell view."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstmkit import TextGenerator
from lstmkit.errors import ConfigError, DataError
from lstmkit.tasks import generator
from lstmkit.tasks.generator import LMNet, LMNetConfig, read_corpus, stdlib_corpus
from lstmkit.text.vocab import BOS_ID

TINY = {"hidden_size": 32, "num_layers": 1, "embed_dim": 16, "seq_len": 16, "batch_size": 4, "lr": 0.02}
SONG = "hello world! " * 24


@pytest.fixture(scope="module")
def fitted() -> TextGenerator:
    torch.set_num_threads(1)
    return TextGenerator(**TINY, steps=120, val_fraction=0.1, ngram_orders=(2, 3, 4)).fit(SONG)


def test_chunked_stateful_forward_equals_one_long_forward():
    """The oracle for TBPTT's state carry: the same network run on the whole sequence at once."""
    torch.manual_seed(0)
    net = LMNet(LMNetConfig(vocab_size=11, embed_dim=5, hidden_size=7, num_layers=2)).eval()
    ids = torch.randint(0, 11, (3, 40))
    whole, final = net(ids)
    state, parts = None, []
    for s in range(0, 40, 9):  # chunks 9, 9, 9, 9, 4
        logits, state = net(ids[:, s : s + 9], state)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state.h, final.h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state.c, final.c, rtol=1e-5, atol=1e-6)


def test_streams_are_contiguous_and_cover_the_text():
    gen = TextGenerator(seq_len=5, batch_size=3)
    ids = np.arange(10, 44)  # 34 ids -> "<bos> ids" has 35; 3 streams of 11
    x, y = gen._streams(ids)
    assert x.shape == y.shape == (3, 11)
    data = np.concatenate([[BOS_ID], ids])
    np.testing.assert_array_equal(x.reshape(-1).numpy(), data[:33])
    np.testing.assert_array_equal(y.reshape(-1).numpy(), data[1:34])  # target = the next id, across chunk ends
    short = TextGenerator(seq_len=50, batch_size=8)._streams(np.arange(10, 30))[0]
    assert short.shape == (1, 20)  # too short for 8 streams of a full chunk: one stream


def test_training_carries_the_state_across_chunks_and_resets_each_pass(monkeypatch):
    calls = []
    forward = LMNet.forward

    def spy(self, ids, state=None):
        logits, out = forward(self, ids, state)
        if self.training:
            calls.append((state, out, ids.shape))
        return logits, out

    monkeypatch.setattr(LMNet, "forward", spy)
    text = "abcdefghij" * 10  # 100 characters -> "<bos> ids" cut into 2 streams of 50 = 3 chunks of 20, 20, 10
    TextGenerator(**{**TINY, "seq_len": 20, "batch_size": 2}, steps=7, val_fraction=0, baseline=False).fit(text)
    assert [c[2] for c in calls] == [(2, 20), (2, 20), (2, 10)] * 2 + [(2, 20)]
    assert [c[0] is None for c in calls] == [True, False, False, True, False, False, True]
    for (_, prev_out, _), (state, _, _) in itertools.pairwise(calls):
        if state is not None:  # the state handed on is the previous chunk's final state, detached
            torch.testing.assert_close(state.h, prev_out.h.detach(), rtol=0, atol=0)
            torch.testing.assert_close(state.c, prev_out.c.detach(), rtol=0, atol=0)
            assert not state.h.requires_grad and not state.c.requires_grad


@pytest.mark.parametrize("kw", [{"tokenizer": "word"}, {"precision": "fp16"}, {"seq_len": 0}, {"val_fraction": 0.6},
                                {"ngram_orders": (0, 3)}, {"dropout": 1.0}])  # fmt: skip
def test_bad_parameters_are_config_errors(kw):
    with pytest.raises(ConfigError):
        TextGenerator(**{**TINY, **kw}).fit(SONG)


def test_scoring_in_pieces_equals_one_long_pass(fitted, monkeypatch):
    ids = np.asarray(fitted.tokenizer_.encode(SONG * 3))
    with torch.no_grad():
        logits, _ = fitted.net_(torch.tensor([[BOS_ID, *ids[:-1]]]))  # (1, n, V): the oracle, one pass
        oracle = float(F.cross_entropy(logits[0].double(), torch.from_numpy(ids), reduction="sum"))
    monkeypatch.setattr(generator, "EVAL_STREAM_MIN", 50)  # 18 pieces side by side
    monkeypatch.setattr(generator, "EVAL_BURN_IN", 10**6)  # each piece first reads everything before it
    assert fitted._nats(ids) == pytest.approx(oracle, rel=1e-5)
    monkeypatch.setattr(generator, "EVAL_BURN_IN", 0)  # cold pieces: a different (worse) total
    assert fitted._nats(ids) > oracle * (1 + 1e-3)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_a_uniform_model_scores_log2_vocabulary(kind):
    pytest.importorskip("tokenizers") if kind == "bpe" else None
    text = "def f(x):\n    return x * 2  # double\n" * 10
    gen = TextGenerator(kind, **TINY, steps=1, val_fraction=0, vocab_size=300 if kind == "bpe" else None).fit(text)
    with torch.no_grad():
        gen.net_.out.weight.zero_()
        gen.net_.out.bias.zero_()
    ev = gen.evaluate(text[:200])
    V = gen.tokenizer_.vocab_size
    assert ev.n_chars == 200
    bpc = ev.n_tokens * math.log2(V) / ev.n_chars  # = log2(V) for characters
    assert ev.results["lstm"]["bpc"] == pytest.approx(bpc, rel=1e-9)
    assert ev.results["lstm"]["perplexity"] == pytest.approx(V, rel=1e-9)
    if kind == "char":
        assert ev.n_tokens == 200 and bpc == pytest.approx(math.log2(V))
    else:
        assert ev.n_tokens < 200  # subwords: several characters per token


def test_tiny_fit_overfits_and_save_load_samples_identically(fitted, tmp_path):
    ev = fitted.evaluate(SONG)
    assert ev.results["lstm"]["bpc"] < 0.35, ev.results
    assert ev.results["ngram"]["bpc"] < 0.35
    assert fitted.n_val_chars_ == round(0.1 * len(SONG))
    a = fitted.sample("hello", 40, temperature=0.5, seed=3)
    assert a.startswith(" world")
    fitted.save(tmp_path / "m")
    back = TextGenerator.load(tmp_path / "m")
    assert back.sample("hello", 40, temperature=0.5, seed=3) == a
    assert back.sample("", 30, temperature=1.3, top_k=3, seed=9) == fitted.sample("", 30, temperature=1.3, top_k=3, seed=9)
    assert back.sample("wor", 20, seed=1, model="ngram") == fitted.sample("wor", 20, seed=1, model="ngram")
    assert back.evaluate(SONG).to_dict() == ev.to_dict()
    assert back.sample("h", 40, temperature=2.0, seed=5) != back.sample("h", 40, temperature=2.0, seed=6)  # the seed matters


def test_unknown_prompt_characters_are_read_as_unk_with_a_warning(fitted, caplog):
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        out = fitted.sample("héllo €", 10, seed=0)
    assert len(out) == 10 and "<unk>" not in out
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "'é'" in msgs[0] and "'€'" in msgs[0]
    ev = fitted.evaluate("héllo world")
    assert ev.unknown_chars == 1 and math.isfinite(ev.results["lstm"]["bpc"])


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": -1.0}, {"top_k": 0}, {"length": -1}, {"model": "gpt"}])
def test_bad_sampling_arguments(fitted, kw):
    args = {"temperature": 1.0, "length": 5, **kw}
    length = args.pop("length")
    with pytest.raises(ConfigError):
        fitted.sample("h", length, **args)


def test_cell_view_ends_in_the_networks_final_cell_state(fitted):
    text = "hello wor"
    view = fitted.cell_view(text, units=[0, 5, 31])
    assert list(view["token"].unique()) == list(dict.fromkeys(text))
    assert len(view) == len(text) * 3
    with torch.no_grad():
        _, state = fitted.net_(torch.tensor([fitted.tokenizer_.encode(text)]))
    last = view[view["position"] == len(text) - 1].sort_values("unit")["c"].to_numpy()
    np.testing.assert_allclose(last, state.c[-1, 0, [0, 5, 31]].double().numpy(), rtol=1e-5, atol=1e-6)
    top = fitted.cell_view(text, top=4)
    assert top["unit"].nunique() == 4


def test_non_utf8_file_names_the_file_and_offset(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"caf" + b"\xe9 au lait")
    with pytest.raises(DataError, match=r"notes\.txt.*0xe9 at offset 3"):
        TextGenerator(**TINY, steps=1).fit(bad)


def test_folder_is_read_sorted_skipping_hidden_files(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / ".hidden").write_bytes(b"\xff")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("third")
    assert read_corpus(tmp_path) == "first\nsecond\nthird\n"
    assert read_corpus(str(tmp_path), glob="*.txt") == "first\nsecond\n"
    assert read_corpus("just some text") == "just some text"


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_a_data_error(text):
    with pytest.raises(DataError, match="empty"):
        TextGenerator(**TINY, steps=1).fit(text)


def test_validation_is_the_end_of_the_text():
    text = "a" * 90 + "b" * 10
    gen = TextGenerator(**TINY, steps=2, val_fraction=0.1, ngram_orders=(2,)).fit(text)
    assert gen.n_train_chars_ == 90 and gen.n_val_chars_ == 10
    assert gen.val_metrics_["unknown_chars"] == 10  # "b" never occurs in the training part


def test_demo_corpus_is_deterministic_and_split_by_file():
    a, b = stdlib_corpus(max_bytes=200_000), stdlib_corpus(max_bytes=200_000)
    assert a == b
    parts = [set(a.train), set(a.validation), set(a.test)]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert all(Path(p).suffix == ".py" for s in parts for p in s)


def test_bf16_training_keeps_float32_weights_and_learns():
    gen = TextGenerator(**TINY, steps=60, val_fraction=0.1, baseline=False, precision="bf16").fit(SONG)
    assert all(p.dtype == torch.float32 for p in gen.net_.parameters())
    assert gen.history_[-1]["val_loss"] < 0.5 * math.log2(gen.tokenizer_.vocab_size)  # well below uniform
