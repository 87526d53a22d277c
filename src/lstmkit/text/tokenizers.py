"""Tokenizers fitted on the user's corpus: characters, words, or subword BPE.

All three share one interface — ``fit(texts)``, ``encode(text)``, ``encode_batch(texts)``, ``decode(ids)``,
``tokens(text)``, ``vocab_size``, ``to_dict()`` / :func:`tokenizer_from_dict` — and the reserved ids of
:mod:`lstmkit.text.vocab` (``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3). The dict is plain JSON,
saved in the model directory as ``tokenizer.json``.

- ``char``: every character is a token; ``decode(encode(s)) == s`` for characters seen at fit.
- ``word``: a regular expression that keeps URLs, @mentions, #hashtags and contractions whole and splits
  off punctuation; ``decode`` joins tokens with single spaces.
- ``bpe``: byte-level BPE trained with Hugging Face's ``tokenizers`` (imported only when used); every
  string round-trips exactly and nothing is ever unknown.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from lstmkit.errors import ConfigError
from lstmkit.text.vocab import SPECIALS, UNK_ID, Vocab

KINDS = ("word", "char", "bpe")
WORD_PATTERN = r"https?://\S+|[@#]?\w+(?:['’]\w+)*|[^\w\s]"


def _normalise(text: str, lowercase: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    return text.lower() if lowercase else text


class _VocabTokenizer:
    """Split into tokens, then look them up in a :class:`Vocab` built from the corpus's counts."""

    kind = ""

    def __init__(self, *, lowercase: bool = False, min_freq: int = 1, max_size: int | None = None) -> None:
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_size = max_size
        self.vocab: Vocab | None = None

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def fit(self, texts: Iterable[str]):
        counts: Counter = Counter()
        for t in texts:
            counts.update(self.split(t))
        self.vocab = Vocab.build(counts, min_freq=self.min_freq, max_size=self.max_size)
        return self

    def _vocab(self) -> Vocab:
        if self.vocab is None:
            raise ConfigError(f"this {self.kind} tokenizer is not fitted; call fit(texts) first")
        return self.vocab

    @property
    def vocab_size(self) -> int:
        return len(self._vocab())

    def tokens(self, text: str) -> list[str]:
        return self.split(text)

    def encode(self, text: str) -> list[int]:
        return self._vocab().lookup(self.split(text))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        vocab = self._vocab()
        return [vocab.lookup(self.split(t)) for t in texts]

    def id_to_token(self, i: int) -> str:
        return self._vocab().itos[i]

    def token_to_id(self, token: str) -> int:
        return self._vocab().stoi.get(token, UNK_ID)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "min_freq": self.min_freq,
                "max_size": self.max_size, "vocab": self._vocab().itos}  # fmt: skip


class CharTokenizer(_VocabTokenizer):
    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(_normalise(text, self.lowercase))

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        itos = self._vocab().itos
        return "".join(itos[i] for i in ids if not (skip_special and i < len(SPECIALS) and i != UNK_ID))


class WordTokenizer(_VocabTokenizer):
    kind = "word"

    def __init__(self, *, lowercase: bool = True, min_freq: int = 1, max_size: int | None = None, pattern: str = WORD_PATTERN) -> None:
        super().__init__(lowercase=lowercase, min_freq=min_freq, max_size=max_size)
        self.pattern = pattern
        self._re = re.compile(pattern)

    def split(self, text: str) -> list[str]:
        return self._re.findall(_normalise(text, self.lowercase))

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        itos = self._vocab().itos
        return " ".join(itos[i] for i in ids if not (skip_special and i < len(SPECIALS) and i != UNK_ID))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "pattern": self.pattern}


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme) trained on the corpus with the ``tokenizers`` library."""

    kind = "bpe"

    def __init__(self, *, vocab_size: int = 8000, lowercase: bool = False, min_freq: int = 2) -> None:
        self.target_size = vocab_size
        self.lowercase = lowercase
        self.min_freq = min_freq
        self._tok = None

    @staticmethod
    def _lib():
        try:
            import tokenizers
        except ImportError:
            raise ConfigError("tokenizer 'bpe' needs the tokenizers package; pip install tokenizers (or lstmkit[text]), or use 'word' / 'char'") from None
        return tokenizers

    def fit(self, texts: Iterable[str]):
        tk = self._lib()
        tok = tk.Tokenizer(tk.models.BPE())
        norms = [tk.normalizers.NFC()] + ([tk.normalizers.Lowercase()] if self.lowercase else [])
        tok.normalizer = tk.normalizers.Sequence(norms)
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=self.target_size, min_frequency=self.min_freq, special_tokens=list(SPECIALS),
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        )  # fmt: skip
        tok.train_from_iterator((str(t) for t in texts), trainer)
        assert [tok.token_to_id(s) for s in SPECIALS] == list(range(len(SPECIALS)))
        self._tok = tok
        return self

    def _t(self):
        if self._tok is None:
            raise ConfigError("this bpe tokenizer is not fitted; call fit(texts) first")
        return self._tok

    @property
    def vocab_size(self) -> int:
        return self._t().get_vocab_size()

    def tokens(self, text: str) -> list[str]:
        return self._t().encode(text).tokens

    def encode(self, text: str) -> list[int]:
        return self._t().encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._t().encode_batch([str(t) for t in texts])]

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        return self._t().decode(list(ids), skip_special_tokens=skip_special)

    def id_to_token(self, i: int) -> str:
        return self._t().id_to_token(i)

    def token_to_id(self, token: str) -> int:
        i = self._t().token_to_id(token)
        return UNK_ID if i is None else i

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.target_size, "lowercase": self.lowercase,
                "min_freq": self.min_freq, "tokenizer": self._t().to_str()}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> BPETokenizer:
        self = cls(vocab_size=d["vocab_size"], lowercase=d["lowercase"], min_freq=d["min_freq"])
        self._tok = cls._lib().Tokenizer.from_str(d["tokenizer"])
        return self


Tokenizer = CharTokenizer | WordTokenizer | BPETokenizer


def make_tokenizer(kind: str, *, lowercase: bool | None = None, min_freq: int | None = None, vocab_size: int | None = None) -> Tokenizer:
    """A fresh tokenizer of ``kind`` (``"word"``, ``"char"`` or ``"bpe"``); ``None`` keeps each kind's default
    (word: lower-cased, tokens seen at least twice; char: case kept, every character; bpe: 8000 merges' vocabulary)."""
    if kind == "word":
        return WordTokenizer(lowercase=True if lowercase is None else lowercase, min_freq=2 if min_freq is None else min_freq, max_size=vocab_size)
    if kind == "char":
        return CharTokenizer(lowercase=False if lowercase is None else lowercase, min_freq=1 if min_freq is None else min_freq, max_size=vocab_size)
    if kind == "bpe":
        return BPETokenizer(vocab_size=vocab_size or 8000, lowercase=bool(lowercase), min_freq=2 if min_freq is None else min_freq)
    raise ConfigError(f"tokenizer must be one of {', '.join(KINDS)}, got {kind!r}")


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a fitted tokenizer from :meth:`to_dict`'s output (the model directory's ``tokenizer.json``)."""
    kind = d.get("kind")
    if kind == "bpe":
        return BPETokenizer.from_dict(d)
    if kind == "word":
        tok = WordTokenizer(lowercase=d["lowercase"], min_freq=d["min_freq"], max_size=d["max_size"], pattern=d["pattern"])
    elif kind == "char":
        tok = CharTokenizer(lowercase=d["lowercase"], min_freq=d["min_freq"], max_size=d["max_size"])
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    tok.vocab = Vocab(d["vocab"])
    return tok
