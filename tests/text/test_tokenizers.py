"""The text pipeline: tokenizers round-trip, reserved ids, JSON save/load, padding, pretrained vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lstmkit.errors import DataError
from lstmkit.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    CharTokenizer,
    Vocab,
    WordTokenizer,
    make_tokenizer,
    pad_batch,
    read_vectors,
    tokenizer_from_dict,
)  # fmt: skip
from lstmkit.text.vocab import init_embedding

CORPUS = [
    "I love this phone, it's great!",
    "I hate waiting @support #fail",
    "Olá, mundo — ünïcödé ok 😀",
    "the the the cat sat on the mat.",
    "Don't stop me now http://t.co/abc",
]


def test_reserved_ids():
    assert SPECIALS == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    for kind in ("char", "word", "bpe"):
        tok = make_tokenizer(kind, min_freq=1).fit(CORPUS)
        assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3], kind


def test_char_round_trip_and_unknown():
    tok = CharTokenizer().fit(CORPUS)
    for text in CORPUS:
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode("cat")) == 3
    ids = tok.encode("cat§")  # § never seen
    assert ids[-1] == UNK_ID and ids[:3] == tok.encode("cat")


def test_word_tokens_and_round_trip():
    tok = WordTokenizer(min_freq=1).fit(CORPUS)
    assert tok.tokens("Don't stop @support #fail, http://t.co/abc") == ["don't", "stop", "@support", "#fail", ",", "http://t.co/abc"]
    text = "I love the cat, it's great!"
    assert tok.decode(tok.encode(text)) == " ".join(tok.tokens(text)) == "i love the cat , it's great !"
    assert tok.encode("zebra")[0] == UNK_ID
    assert tok.decode(tok.encode("zebra cat")) == "<unk> cat"


def test_vocab_order_min_freq_and_max_size():
    tok = WordTokenizer(min_freq=2).fit(CORPUS)
    # "the" ×5, "i" ×2, "," ×2, "!"... only tokens seen at least twice, most frequent first.
    assert tok.vocab.itos[4] == "the"
    assert all(t in ("the", "i", ",") for t in tok.vocab.itos[4:])
    small = WordTokenizer(min_freq=1, max_size=6).fit(CORPUS)
    assert small.vocab_size == 6
    with pytest.raises(ValueError):
        Vocab(["a", "b"])


def test_bpe_round_trips_exactly_on_unseen_text():
    tok = make_tokenizer("bpe", vocab_size=300, min_freq=1).fit(CORPUS * 3)
    assert tok.vocab_size <= 300
    for text in [*CORPUS, "Unseen wörds ✓ and emoji 🚀 with   spaces\tand tabs"]:
        ids = tok.encode(text)
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert UNK_ID not in ids  # byte-level: nothing is unknown
        assert tok.decode(ids) == text
    # merges learned: a frequent word takes fewer tokens than its characters
    assert len(tok.encode("the")) < 3


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_tokenizer_json_round_trip(kind):
    tok = make_tokenizer(kind, min_freq=1, vocab_size=300 if kind == "bpe" else None).fit(CORPUS)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    probe = CORPUS + ["something new entirely!"]
    assert again.encode_batch(probe) == tok.encode_batch(probe)
    assert again.vocab_size == tok.vocab_size


def test_pad_batch_lengths_and_cut():
    b = pad_batch([[5, 6, 7], [8], []], max_length=None)
    assert b.ids.tolist() == [[5, 6, 7], [8, 0, 0], [UNK_ID, 0, 0]]
    assert b.lengths.tolist() == [3, 1, 1]
    c = pad_batch([[5, 6, 7, 9], [8]], max_length=2)
    assert c.ids.tolist() == [[5, 6], [8, 0]] and c.lengths.tolist() == [2, 1]


def test_read_vectors_word2vec_and_glove(tmp_path):
    tok = WordTokenizer(min_freq=1).fit(["cat sat on the mat", "Dog"])
    w2v = tmp_path / "vec.txt"
    w2v.write_text("3 2\ncat 1 2\nDOG 3 4\nzebra 5 6\n")  # word2vec header; DOG only matches lower-cased
    m, found = read_vectors(w2v, tok.vocab)
    assert m.shape == (tok.vocab_size, 2) and found == 2
    np.testing.assert_array_equal(m[tok.token_to_id("cat")], [1, 2])
    np.testing.assert_array_equal(m[tok.token_to_id("dog")], [3, 4])
    assert np.isnan(m[tok.token_to_id("mat")]).all()
    emb = torch.nn.Embedding(tok.vocab_size, 2, padding_idx=0)
    before = emb.weight.detach().clone()
    init_embedding(emb.weight, m)
    assert emb.weight[tok.token_to_id("cat")].tolist() == [1.0, 2.0]
    assert torch.equal(emb.weight[tok.token_to_id("mat")], before[tok.token_to_id("mat")])
    glove = tmp_path / "glove.txt"
    glove.write_text("cat 1 2\nmat 1 2 3\n")
    with pytest.raises(DataError, match="line 2"):
        read_vectors(glove, tok.vocab)
    with pytest.raises(DataError, match="does not exist"):
        read_vectors(tmp_path / "missing.txt", tok.vocab)
