"""The text pipeline shared by the language tasks: tokenizers fitted on the user's corpus (characters,
words, byte-level BPE), a vocabulary with reserved ids saved as JSON in the model directory, padded
batches with lengths for :class:`lstmkit.LSTM`, and pretrained word vectors for the embeddings."""

from __future__ import annotations

from lstmkit.text.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, make_tokenizer, tokenizer_from_dict
from lstmkit.text.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Batch, Vocab, pad_batch, read_vectors

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SPECIALS",
    "UNK_ID",
    "BPETokenizer",
    "Batch",
    "CharTokenizer",
    "Vocab",
    "WordTokenizer",
    "make_tokenizer",
    "pad_batch",
    "read_vectors",
    "tokenizer_from_dict",
]  # fmt: skip
