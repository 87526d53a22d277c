"""Vocabulary, padded batches and pretrained word vectors: the parts every text task shares.

Ids 0–3 are reserved in every vocabulary (character, word and BPE alike) so that models and decoders can
rely on them: ``<pad>`` 0 (the embedding's padding row), ``<unk>`` 1 (a token not seen at fit), ``<bos>`` 2
and ``<eos>`` 3 (sequence start / end for generation and translation).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lstmkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class Vocab:
    """A token ↔ id table whose first entries are :data:`SPECIALS`."""

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}, got {tokens[:4]}")
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        if len(self.stoi) != len(tokens):
            raise ValueError("a vocabulary's tokens must be unique")

    @classmethod
    def build(cls, counts: Counter, *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Most frequent first (ties by token, so the result is deterministic), specials in front."""
        items = sorted(((t, c) for t, c in counts.items() if c >= min_freq and t not in SPECIALS), key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            items = items[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *(t for t, _ in items)])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        get = self.stoi.get
        return [get(t, UNK_ID) for t in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]


@dataclass
class Batch:
    """Padded token ids and each row's true length (what :class:`lstmkit.LSTM` takes as ``lengths=``)."""

    ids: Tensor  # (B, T) int64, PAD_ID after each row's length
    lengths: Tensor  # (B,) int64, ≥ 1


def pad_batch(seqs: Sequence[Sequence[int]], *, max_length: int | None = None, pad_id: int = PAD_ID) -> Batch:
    """Right-pad ``seqs`` to the longest one (after cutting each to ``max_length``, keeping its start).

    An empty sequence becomes a single ``<unk>`` so that every length is at least 1 (the LSTM needs it).
    """
    cut = [list(s[:max_length]) if max_length else list(s) for s in seqs]
    cut = [s if s else [UNK_ID] for s in cut]
    lengths = torch.tensor([len(s) for s in cut], dtype=torch.int64)
    T = int(lengths.max()) if len(cut) else 1
    ids = torch.full((len(cut), T), pad_id, dtype=torch.int64)
    for i, s in enumerate(cut):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.int64)
    return Batch(ids, lengths)


def read_vectors(path: str | Path, vocab: Vocab, *, encoding: str = "utf-8") -> tuple[np.ndarray, int]:
    """Rows of a word2vec / GloVe *text* vector file for the tokens of ``vocab``.

    Returns ``(matrix, found)``: a (len(vocab), D) float32 array whose rows are the file's vectors for the
    tokens it has (case-sensitive match first, then lower-case) and NaN elsewhere, and how many were found.
    A word2vec header line ``COUNT DIM`` is recognised and skipped. Only vocabulary tokens are kept, so a
    multi-GB file costs one pass and the vocabulary's memory.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"vector file {str(p)!r} does not exist; pass a word2vec/GloVe text file (one 'word v1 v2 …' per line)")
    exact_of = {tok: i for i, tok in enumerate(vocab.itos) if i >= len(SPECIALS)}
    lower_of: dict[str, list[int]] = {}
    for tok, i in exact_of.items():
        lower_of.setdefault(tok.lower(), []).append(i)
    matrix: np.ndarray | None = None
    exact: set[int] = set()
    dim = None
    try:
        with open(p, encoding=encoding, errors="strict") as f:
            for lineno, line in enumerate(f, start=1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if lineno == 1 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    continue  # word2vec header
                if len(parts) < 2:
                    continue
                if dim is None:
                    dim = len(parts) - 1
                    matrix = np.full((len(vocab), dim), np.nan, dtype=np.float32)
                elif len(parts) - 1 != dim:
                    raise DataError(
                        f"vector file {str(p)!r} line {lineno} has {len(parts) - 1} numbers, earlier lines {dim}; "
                        "every line must be 'word' followed by the same number of values"
                    )
                word = parts[0]
                rows_exact = [exact_of[word]] if word in exact_of else []
                rows_lower = [i for i in lower_of.get(word.lower(), ()) if i not in exact]
                if not rows_exact and not rows_lower:
                    continue
                try:
                    vec = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise DataError(f"vector file {str(p)!r} line {lineno}: values are not numbers; is it a text-format vector file?") from None
                for i in rows_exact:
                    matrix[i] = vec
                    exact.add(i)
                for i in rows_lower:
                    if np.isnan(matrix[i, 0]):
                        matrix[i] = vec
    except UnicodeDecodeError as e:
        raise DataError(f"vector file {str(p)!r} is not valid {encoding} ({e.reason} at byte {e.start}); convert it to UTF-8") from None
    if matrix is None:
        raise DataError(f"vector file {str(p)!r} holds no vectors; expected lines like 'word 0.1 -0.2 …'")
    found = int((~np.isnan(matrix[:, 0])).sum())
    return matrix, found


def init_embedding(weight: Tensor, vectors: np.ndarray) -> None:
    """Copy the found rows of ``vectors`` into ``weight`` (others keep their random init; ``<pad>`` stays 0)."""
    if vectors.shape != tuple(weight.shape):
        raise ConfigError(f"the vectors have shape {vectors.shape}, the embedding {tuple(weight.shape)}; set embed_dim to {vectors.shape[1]}")
    rows = np.flatnonzero(~np.isnan(vectors[:, 0]))
    rows = rows[rows != PAD_ID]
    with torch.no_grad():
        weight[torch.from_numpy(rows)] = torch.from_numpy(vectors[rows]).to(weight.dtype)
