"""``Seq2SeqNet`` decoding against oracles (brute force, greedy, padding-free runs) and ``Translator``'s
fit / predict / evaluate / save / load, TSV reading and errors."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch

from lstmkit.errors import ConfigError, DataError, ModelDirError
from lstmkit.models.seq2seq_net import (
    Seq2SeqNet,
    Seq2SeqNetConfig,
    beam_search,
    greedy_decode,
)
from lstmkit.tasks.translator import Translator, read_pairs, translation_scores
from lstmkit.text.vocab import EOS_ID, PAD_ID


def tiny_net(seed: int, src_vocab: int = 9, tgt_vocab: int = 10, hidden: int = 8, sharpen: float = 1.0) -> Seq2SeqNet:
    torch.manual_seed(seed)
    net = Seq2SeqNet(Seq2SeqNetConfig(src_vocab, tgt_vocab, embed_dim=6, hidden_size=hidden, dropout=0.0))
    with torch.no_grad():  # a random net's next-token distributions are nearly flat; make them varied
        net.out.weight.mul_(sharpen)
        net.out.bias.normal_(0.0, sharpen)
    return net.eval()


def padded_sources(lengths: list[int], vocab: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    ids = torch.zeros(len(lengths), S, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(4, vocab, (n,), generator=g)
    return ids, torch.tensor(lengths)


# ------------------------------------------------------------------------------------------ attention
def test_attention_weights_sum_to_one_and_are_zero_on_padding():
    net = tiny_net(0)
    src, lengths = padded_sources([5, 2, 3, 1])
    memory, state = net.encode(src, lengths)
    prev = torch.randint(4, 10, (4, 6))
    _, _, weights = net.decode(prev, state, memory)  # (B, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6), rtol=0, atol=1e-6)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(weights[b, :, n:], torch.zeros(6, 5 - n))  # exactly 0, not just small
        assert bool((weights[b, :, :n] > 0).all())


def test_padding_does_not_change_a_sources_output():
    net = tiny_net(1)
    src, lengths = padded_sources([6, 3])
    tgt_in = torch.randint(4, 10, (2, 4))
    batched = net(src, lengths, tgt_in)
    alone = net(src[1:, :3], lengths[1:], tgt_in[1:])  # the short source without its padding
    torch.testing.assert_close(batched[1:], alone, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("seed", range(4))
def test_beam_search_with_one_beam_is_greedy_decoding(seed):
    net = tiny_net(seed, sharpen=3.0)
    src, lengths = padded_sources([4, 7, 1, 5, 3], seed=seed)
    greedy = greedy_decode(net, src, lengths, max_len=9)
    beam, _ = beam_search(net, src, lengths, max_len=9, beam_size=1)
    assert beam == greedy
    assert any(len(s) > 0 for s in greedy)


def brute_force(net, src, lengths, tokens, max_len, alpha):
    """Every target sequence of up to ``max_len`` tokens from ``tokens`` (then the end token), scored by
    teacher forcing: the exact argmax of length-normalised log-probability, per source."""
    seqs = [list(s) for n in range(max_len + 1) for s in itertools.product(tokens, repeat=n)]
    best = []
    for b in range(src.shape[0]):
        B = len(seqs)
        logp = net.sequence_logprob(src[b : b + 1].expand(B, -1), lengths[b : b + 1].expand(B), seqs)
        norm = logp / torch.tensor([len(s) + 1.0 for s in seqs]) ** alpha
        k = int(norm.argmax())
        best.append((seqs[k], float(norm[k])))
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_search_finds_the_exact_argmax_by_brute_force(alpha):
    """Target vocabulary: 4 reserved ids + 2 tokens; sequences of up to 3 tokens: 15 hypotheses. A beam of
    16 keeps them all, so beam search must return the brute-force argmax and its score."""
    greedy_differs = 0
    for seed in range(6):
        net = tiny_net(seed, tgt_vocab=6, sharpen=2.0)
        src, lengths = padded_sources([3, 5, 2], seed=seed)
        oracle = brute_force(net, src, lengths, [4, 5], max_len=3, alpha=alpha)
        found, score = beam_search(net, src, lengths, max_len=3, beam_size=16, length_penalty=alpha)
        assert found == [s for s, _ in oracle]
        torch.testing.assert_close(score, torch.tensor([v for _, v in oracle]), rtol=1e-5, atol=1e-5)
        greedy_differs += sum(g != s for g, (s, _) in zip(greedy_decode(net, src, lengths, 3), oracle))
    if alpha == 0.0:
        assert greedy_differs > 0  # the oracle case is not one greedy decoding already solves


def test_max_len_forces_the_end():
    net = tiny_net(2)
    with torch.no_grad():
        net.out.bias[EOS_ID] = -50.0  # the model never wants to stop
    src, lengths = padded_sources([3, 4])
    for K in (1, 3):
        seqs, _ = beam_search(net, src, lengths, max_len=4, beam_size=K)
        assert [len(s) for s in seqs] == [4, 4]
        assert all(t >= 4 for s in seqs for t in s)  # no <pad>, <unk>, <bos>, <eos> inside
    assert [len(s) for s in greedy_decode(net, src, lengths, 4)] == [4, 4]


# ------------------------------------------------------------------------------------------ metrics
def test_translation_scores_on_hand_worked_cases():
    perfect = translation_scores(["a b c d", "2026-11-27"], ["a b c d", "2026-11-27"])
    assert perfect["exact_match"] == 1.0 and perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    half = translation_scores(["x", "2026-11-27"], ["y", "2026-11-27"])
    assert half["exact_match"] == 0.5 and half["chrf"] < 100.0


# ------------------------------------------------------------------------------------------ estimator
def reverse_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    src = ["".join(rng.choice(list("abcde"), rng.integers(2, 6))) for _ in range(n)]
    return src, [s[::-1] for s in src]


@pytest.fixture(scope="module")
def reverser() -> tuple[Translator, list[str], list[str]]:
    torch.set_num_threads(1)
    src, tgt = reverse_pairs(1500, 0)
    model = Translator(steps=150, batch_size=32, hidden_size=32, embed_dim=16, lr=1e-2, dropout=0.0, seed=0)
    model.fit(src, tgt)
    test_src, test_tgt = reverse_pairs(200, 1)
    return model, test_src, test_tgt


def test_a_tiny_translator_learns_to_reverse_strings(reverser):
    model, src, tgt = reverser
    ev = model.evaluate(src, tgt, beam_size=3)
    assert ev.results["lstm"]["exact_match"] >= 0.9, ev.results
    assert ev.results["lstm"]["exact_match"] > ev.results["copy_source"]["exact_match"] + 0.5
    assert set(ev.results) == {"lstm", "nearest_neighbour", "copy_source"}
    assert model.val_metrics_["results"]["lstm"]["exact_match"] >= 0.9


def test_save_and_load_give_identical_predictions(reverser, tmp_path):
    model, src, _ = reverser
    model.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert names == {"config.json", "source_tokenizer.json", "target_tokenizer.json", "weights.safetensors", "baseline.json"}
    loaded = Translator.load(tmp_path / "m")
    assert loaded.predict(src[:50], beam_size=3) == model.predict(src[:50], beam_size=3)
    assert loaded.predict(src[:50], beam_size=1) == model.predict(src[:50], beam_size=1)
    assert loaded.baseline_.predict(src[:20]) == model.baseline_.predict(src[:20])


def test_tampered_weights_are_refused(reverser, tmp_path):
    model, _, _ = reverser
    model.save(tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="checksum"):
        Translator.load(tmp_path / "m")


def test_unknown_characters_are_read_as_unk_with_one_warning(reverser, caplog):
    model, _, _ = reverser
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        out = model.predict(["abzq", "ab"], beam_size=2)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'z'" in warnings[0].getMessage() and "'q'" in warnings[0].getMessage()


def test_word_target_tokenizer_joins_words_with_spaces():
    src = [str(n) for n in range(40) if set(str(n)) <= set("0123")] * 5
    words = {0: "zero", 1: "um", 2: "dois", 3: "três"}
    tgt = [" ".join(words[int(c)] for c in s) for s in src]
    model = Translator(target_tokenizer="word", steps=5, hidden_size=8, embed_dim=8, baseline=False).fit(src, tgt)
    assert model.target_tokenizer_.kind == "word" and model.source_tokenizer_.kind == "char"
    assert {"zero", "três"} <= set(model.target_tokenizer_.vocab.itos)
    assert model.target_tokenizer_.decode(model.target_tokenizer_.encode("um dois")) == "um dois"


# ------------------------------------------------------------------------------------------ errors
def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_read_pairs_reads_a_tsv_with_header_blank_lines_crlf_and_bom(tmp_path):
    p = write(tmp_path, "p.tsv", "\ufeffsource\ttarget\r\n1\tum\r\n\r\n2\tdois\r\n".encode())
    assert read_pairs(p) == (["1", "2"], ["um", "dois"])


@pytest.mark.parametrize(
    "data,needles",
    [
        (b"1\tum\n2 dois\n3\ttres\n", ["line 2", "has no tab"]),
        (b"1\tum\n2\tdo\tis\n", ["line 2", "2 tabs"]),
        ("1\tum\n2\tdois\n3\ttr\u00eas\n".encode("latin-1"), ["line 3", "not valid utf-8"]),
        (b"1\tum\n2\t\n3\ttres\n\t4\n", ["1 empty target(s) at line(s) 2", "1 empty source(s) at line(s) 4"]),
        (b"1\tum\n \ttwo\n", ["empty source(s) at line(s) 2"]),
        (b"\n\n", ["holds no pairs"]),
    ],
)  # fmt: skip
def test_bad_tsv_files_name_the_file_and_line(tmp_path, data, needles):
    p = write(tmp_path, "pairs.tsv", data)
    with pytest.raises(DataError) as e:
        read_pairs(p)
    msg = str(e.value)
    assert "pairs.tsv" in msg
    for n in needles:
        assert n in msg, msg


def test_fit_reads_a_tsv_path_and_checks_lists(tmp_path):
    p = write(tmp_path, "p.tsv", "".join(f"{s}\t{s[::-1]}\n" for s in reverse_pairs(40, 3)[0]).encode())
    model = Translator(steps=3, hidden_size=8, embed_dim=8, baseline=False).fit(p)
    assert model.n_train_ + model.n_val_ == 40
    with pytest.raises(DataError, match="1 sources but 2 targets"):
        Translator().fit(["a"], ["b", "c"])
    with pytest.raises(DataError, match=r"empty source\(s\) at row\(s\) 2"):
        Translator().fit(["a", ""], ["b", "c"])
    with pytest.raises(DataError, match="targets is missing"):
        Translator().fit(["a", "b"])


@pytest.mark.parametrize("kwargs", [{"tokenizer": "morse"}, {"hidden_size": 0}, {"dropout": 1.0}, {"beam_size": 0},
                                    {"label_smoothing": -0.1}, {"val_fraction": 0.7}])  # fmt: skip
def test_bad_parameters_raise_config_errors(kwargs):
    with pytest.raises(ConfigError):
        Translator(**kwargs).fit(["ab", "cd"], ["ba", "dc"])


def test_predict_before_fit_and_bad_beam(reverser):
    with pytest.raises(ConfigError, match="not fitted"):
        Translator().predict(["a"])
    model, _, _ = reverser
    with pytest.raises(ConfigError, match="beam_size"):
        model.predict(["ab"], beam_size=0)
    with pytest.raises(DataError, match="empty"):
        model.predict(["ab", "  "])
    assert PAD_ID == 0  # predictions never contain reserved tokens: decoded strings have only vocabulary characters
    assert set("".join(model.predict(["abc", "ed"]))) <= set("abcde")
