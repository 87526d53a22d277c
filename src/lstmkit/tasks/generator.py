"""``TextGenerator``: a character-level (or BPE) LSTM language model, with an n-gram baseline beside it.

What ``fit(text)`` does (Karpathy's char-rnn recipe; Karpathy et al. 2015, "Visualizing and understanding
recurrent networks"):

1. reads the text (a string, a UTF-8 file, or a folder of files, sorted) and holds out its *end* —
   the last ``val_fraction`` of the characters — for validation, unless ``validation=`` is given;
2. fits the tokenizer on the training part (``char``: every character is a token, characters first seen
   later become ``<unk>``; ``bpe``: byte-level subwords, nothing unknown);
3. cuts the training ids into ``batch_size`` contiguous streams and trains with *stateful truncated BPTT*:
   step ``j`` of a pass reads columns ``j·T … (j+1)·T`` of every stream, starts from the state the previous
   step ended with (detached, so gradients stop at the chunk boundary), and the state is reset to zero
   when a new pass starts. Adam, gradient-norm clipping and the one-cycle schedule come from the shared
   loop (:func:`lstmkit.training.loop.train`); each validation scores bits per character on the held-out
   end and the best weights are kept (early stopping with ``patience``);
4. fits the interpolated Kneser–Ney character n-gram (:class:`lstmkit.tasks.ngram.NGramLM`) on the same
   training characters, its order chosen on the same validation characters.

Bits per character: total negative log-likelihood in nats / ln 2 / number of characters — for ``bpe``
too, so the LSTM over subwords and the n-gram over characters are compared on the same text. Perplexity
is per token of each model (characters for ``char`` and the n-gram, subwords for ``bpe``).

``save`` writes ``config.json`` + ``tokenizer.json`` + ``weights.safetensors`` (network and n-gram tables);
nothing is pickled.
"""

from __future__ import annotations

import logging
import math
import os
import sysconfig
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.errors import ConfigError, DataError
from lstmkit.layers import LSTM, LSTMState
from lstmkit.tasks import _common
from lstmkit.tasks.ngram import LN2, NGramLM
from lstmkit.text.tokenizers import CharTokenizer, make_tokenizer, tokenizer_from_dict
from lstmkit.text.vocab import BOS_ID, SPECIALS, UNK_ID
from lstmkit.training.checkpoint import (
    atomic_save_tensors,
    atomic_write_json,
    read_json,
    read_model_dir,
)

log = logging.getLogger(__name__)

FORMAT = "lstmkit.text_generator"
FORMAT_VERSION = 1
TOKENIZERS = ("char", "bpe")
PRECISIONS = ("fp32", "bf16", "auto")
EVAL_CHUNK = 512  # time steps per forward when scoring (memory bound only; the state is carried)
EVAL_STREAM_MIN = 1024  # scoring splits a long text into pieces of at least this many tokens …
EVAL_STREAMS = 64  # … and at most this many, run as one batch
EVAL_BURN_IN = 256  # tokens each piece reads (unscored) before its own, to warm the state
DEMO = "stdlib:python"


# ------------------------------------------------------------------------------------------ network
@dataclass(frozen=True)
class LMNetConfig:
    vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.0  # between LSTM layers and before the output layer

    def to_dict(self) -> dict:
        return asdict(self)


class LMNet(nn.Module):
    """``net(ids (B, T), state) -> (logits (B, T, V), LSTMState)``: embedding → stacked LSTM → linear."""

    def __init__(self, cfg: LMNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = LSTM(cfg.embed_dim, cfg.hidden_size, cfg.num_layers, batch_first=True,
                         dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, forget_bias=1.0)  # fmt: skip
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, ids: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        h, state = self.lstm(self.embedding(ids), state)  # (B, T, H)
        return self.out(self.drop(h)), state  # (B, T, V)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux: AVX-512 BF16 or AMX-BF16 in /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


# ------------------------------------------------------------------------------------------ corpus
BPE_MIN_VOCAB = 260  # a byte-level BPE starts from the 256 bytes and the 4 special ids


def read_text_file(path: str | Path, in_folder: bool = False) -> str:
    """A file's text, decoded as strict UTF-8; a :class:`DataError` naming the file and the byte offset
    (``in_folder``: the file was found in a folder, so leaving it out with ``glob`` is suggested too)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"text file {str(p)!r} does not exist; check the path") from None
    except OSError as e:
        raise DataError(f"cannot read {str(p)!r} ({e.strerror}); check the path and its permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{str(p)!r} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); convert it to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)" + (", or leave it out of the folder (--glob '*.txt')" if in_folder else "")
        ) from None


def corpus_files(folder: str | Path, glob: str = "**/*") -> list[Path]:
    """The regular files under ``folder`` matching ``glob``, sorted; hidden and ``__pycache__`` paths skipped."""
    root = Path(folder)
    files = []
    for p in root.glob(glob):
        rel = p.relative_to(root).parts
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel):
            files.append(p)
    return sorted(files)


def join_texts(texts: Sequence[str]) -> str:
    """Texts one after another, each ending in a newline (files that lack the final one get it)."""
    return "".join(t if t.endswith("\n") or not t else t + "\n" for t in texts)


def read_corpus(source, glob: str = "**/*") -> str:
    """The text of ``source``: a :class:`~pathlib.Path` (file or folder), a list of paths, or a string —
    a string that names an existing file or folder is read, any other string is the text itself."""
    if isinstance(source, (list, tuple)):
        return join_texts([read_corpus(Path(s), glob) for s in source])
    if isinstance(source, str):
        looks_like_path = len(source) < 4096 and "\n" not in source and source.strip() == source and source != ""
        if not (looks_like_path and os.path.exists(source)):
            return source
        source = Path(source)
    if not isinstance(source, Path):
        raise DataError(f"text must be a string, a path or a list of paths, got {type(source).__name__}")
    if source.is_dir():
        files = corpus_files(source, glob)
        if not files:
            raise DataError(f"folder {str(source)!r} holds no files matching {glob!r}; pass a folder of text files or a different --glob")
        return join_texts([read_text_file(f, in_folder=True) for f in files])
    return read_text_file(source)


@dataclass
class DemoCorpus:
    """The Python standard library's own sources, split by file."""

    root: str
    train: list[str] = field(default_factory=list)  # file paths
    validation: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)

    def text(self, split: str) -> str:
        return join_texts([read_text_file(p) for p in getattr(self, split)])


def stdlib_corpus(max_bytes: int = 1_600_000, max_file_bytes: int = 60_000) -> DemoCorpus:
    """The demo corpus (Karpathy's Linux-source experiment, on Python): top-level ``*.py`` files of the
    running interpreter's standard library, sorted by name, public modules (no leading ``_``) of at most
    ``max_file_bytes``, taken in order until ``max_bytes``; file ``i`` goes to validation when
    ``i % 10 == 8``, to test when ``i % 10 == 9``, else to training. Deterministic for a Python version."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(root.glob("*.py")) if not p.name.startswith("_") and p.stat().st_size <= max_file_bytes]
    if not files:
        raise DataError(f"no standard-library sources found under {str(root)!r}; pass a text file or folder instead")
    corpus, total = DemoCorpus(str(root)), 0
    for i, p in enumerate(files):
        if total >= max_bytes:
            break
        split = "validation" if i % 10 == 8 else "test" if i % 10 == 9 else "train"
        getattr(corpus, split).append(str(p))
        total += p.stat().st_size
    return corpus


# ------------------------------------------------------------------------------------------ evaluation
@dataclass
class GenEvaluation:
    """Bits per character and perplexity of the LSTM and the n-gram on one text."""

    n_chars: int
    n_tokens: int
    unknown_chars: int
    results: dict[str, dict] = field(default_factory=dict)  # model -> {bpc, perplexity, per, nats}

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ estimator
class TextGenerator:
    """An LSTM language model over characters (or BPE subwords) that samples text and scores it in bits
    per character, next to an interpolated Kneser–Ney character n-gram fitted on the same split.

    Args:
        tokenizer: ``"char"`` (default) or ``"bpe"``.
        vocab_size: bpe: the trained vocabulary size (default 2000); char: keep the most frequent characters.
        min_freq: a character must occur this often in the training text to get its own id (default 1).
        embed_dim, hidden_size, num_layers, dropout: the network (:class:`LMNet`).
        seq_len: time steps of truncated BPTT (the chunk length T).
        batch_size: parallel contiguous streams B.
        epochs: passes over the training text (``steps`` overrides it with a number of optimiser steps).
        lr, clip, seed: Adam's peak learning rate (one-cycle), gradient-norm clip, random seed.
        val_fraction: the end of the text held out for validation when ``fit`` gets no ``validation``.
        patience: validations without improvement before stopping early (0: never).
        ngram_orders: orders the n-gram baseline tries (those whose keys fit in 64 bits for the vocabulary);
            the best on validation is kept.
        baseline: fit the n-gram too.
        precision: ``"fp32"`` (default), ``"bf16"`` (training forward passes under CPU bfloat16 autocast:
            ~1.5x faster where the CPU has AVX-512 BF16 or AMX, much slower where it has not; weights, the
            optimiser and all scoring stay float32) or ``"auto"`` (bf16 where the CPU has those
            instructions; the choice is ``precision_``).
    """

    def __init__(
        self,
        tokenizer: str = "char",
        *,
        vocab_size: int | None = None,
        min_freq: int | None = None,
        embed_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        seq_len: int = 64,
        batch_size: int = 32,
        epochs: float = 10.0,
        steps: int | None = None,
        lr: float = 3e-3,
        clip: float = 1.0,
        val_fraction: float = 0.1,
        patience: int = 0,
        ngram_orders: tuple[int, ...] = (3, 4, 5, 6, 7, 8),
        baseline: bool = True,
        precision: str = "fp32",
        seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.min_freq = min_freq
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps = steps
        self.lr = lr
        self.clip = clip
        self.val_fraction = val_fraction
        self.patience = patience
        self.ngram_orders = tuple(ngram_orders)
        self.baseline = baseline
        self.precision = precision
        self.seed = seed

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in _PARAMS}

    def _check_params(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer must be one of {', '.join(TOKENIZERS)} for text generation, got {self.tokenizer!r}")
        _common.check_text_params(self, ("embed_dim", "hidden_size", "num_layers", "seq_len", "batch_size"))
        _common.check_val_fraction(self)
        if not (0 < self.lr < math.inf and 0 < self.epochs < math.inf and self.clip >= 0):  # NaN and inf fail too
            raise ConfigError(f"lr and epochs must be positive and clip non-negative, got lr={self.lr}, epochs={self.epochs}, clip={self.clip}")
        if not self.ngram_orders or any(isinstance(o, bool) or not isinstance(o, (int, np.integer)) or not 1 <= o <= 10 for o in self.ngram_orders):
            raise ConfigError(f"ngram_orders must be integers between 1 and 10, got {self.ngram_orders!r}")

    # ------------------------------------------------------------------ fit
    def fit(self, text, validation=None, *, glob: str = "**/*", progress: bool = False,
            checkpoint_dir: str | Path | None = None, resume: bool = False) -> TextGenerator:  # fmt: skip
        """Train on ``text`` (a string, a file, a folder, or a list of paths; see :func:`read_corpus`) and
        return ``self``. ``validation`` (same kinds) replaces the held-out end of ``text``."""
        self._check_params()
        t0 = time.perf_counter()
        full = _nonempty(read_corpus(text, glob), "the training text")
        if validation is not None:
            train_text, val_text = full, _nonempty(read_corpus(validation, glob), "the validation text")
        elif self.val_fraction > 0:
            cut = len(full) - round(self.val_fraction * len(full))
            train_text, val_text = full[:cut], full[cut:]
            if len(train_text) < 2 or not val_text:
                raise DataError(f"the text has {len(full)} characters: too short to hold out {self.val_fraction:.0%} for validation; pass val_fraction=0 or more text")
        else:
            train_text, val_text = full, ""

        kind = self.tokenizer
        size = self.vocab_size if self.vocab_size is not None else (2000 if kind == "bpe" else None)
        self.tokenizer_ = make_tokenizer(kind, min_freq=self.min_freq, vocab_size=size)
        self.tokenizer_.fit(train_text.splitlines(keepends=True) if kind == "bpe" else [train_text])
        self.char_tokenizer_ = self.tokenizer_ if kind == "char" else CharTokenizer(min_freq=self.min_freq or 1).fit([train_text])
        ids = np.asarray(self.tokenizer_.encode(train_text), dtype=np.int64)
        if len(ids) < 2:
            raise DataError(f"the training text has {len(ids)} token(s); a language model needs at least 2")
        val_ids = np.asarray(self.tokenizer_.encode(val_text), dtype=np.int64) if val_text else None
        self.n_train_chars_, self.n_val_chars_ = len(train_text), len(val_text)
        n_val_chars = len(self.char_tokenizer_.encode(val_text)) if val_text else 0

        self.precision_ = self.precision if self.precision != "auto" else ("bf16" if cpu_has_bf16() else "fp32")
        torch.manual_seed(self.seed)
        self.net_ = LMNet(LMNetConfig(self.tokenizer_.vocab_size, self.embed_dim, self.hidden_size, self.num_layers, self.dropout))
        result = self._train(ids, val_ids, n_val_chars, progress, checkpoint_dir, resume)
        self.history_ = result.history
        self.stopped_early_ = result.stopped_early
        self.fit_seconds_ = time.perf_counter() - t0

        self.ngram_ = None
        self.ngram_seconds_ = None
        if self.baseline:
            t1 = time.perf_counter()
            V = self.char_tokenizer_.vocab_size
            orders = tuple(o for o in self.ngram_orders if V**o < 2**62) or (1,)
            if len(orders) < len(self.ngram_orders):
                log.warning("n-gram orders above %d do not fit 64-bit keys for %d characters; trying %s", max(orders), V, orders)
            char_val = self.char_tokenizer_.encode(val_text) if val_text else None
            self.ngram_ = NGramLM(self.char_tokenizer_.vocab_size, orders=orders, pad_id=BOS_ID)
            self.ngram_.fit(self.char_tokenizer_.encode(train_text), char_val)
            self.ngram_seconds_ = time.perf_counter() - t1
        self.val_metrics_ = self.evaluate(val_text).to_dict() if val_text else None
        return self

    def _streams(self, ids: np.ndarray) -> tuple[Tensor, Tensor]:
        """Inputs and targets (B, S): the id sequence ``<bos> ids`` cut into B contiguous streams."""
        data = torch.from_numpy(np.concatenate([[BOS_ID], ids]))
        B = max(1, min(self.batch_size, (len(data) - 1) // self.seq_len))
        S = (len(data) - 1) // B
        return data[: B * S].view(B, S), data[1 : B * S + 1].view(B, S)

    def _train(self, ids, val_ids, n_val_chars, progress, ckpt, resume):
        net, T = self.net_, self.seq_len
        x, y = self._streams(ids)  # (B, S)
        S = x.shape[1]
        chunks = math.ceil(S / T)
        steps = self.steps or max(1, math.ceil(self.epochs * chunks))
        # Validate (and checkpoint) at the end of each pass, where the carried state is reset anyway, so a
        # resumed run continues exactly; very long passes are validated every 500 steps instead.
        per_epoch = max(1, min(steps, chunks if chunks <= 1000 else 500))
        V = self.tokenizer_.vocab_size
        start = 0
        if resume and ckpt is not None and (Path(ckpt) / "checkpoint.json").exists():
            start = int(read_json(Path(ckpt) / "checkpoint.json", "checkpoint")["counters"]["step"])
        carry = {"step": start, "state": None}
        bf16 = self.precision_ == "bf16"

        def batch_loss(gen: torch.Generator) -> Tensor:
            j = carry["step"] % chunks
            carry["step"] += 1
            if j == 0:
                carry["state"] = None  # a new pass over the streams starts from a zero state
            xb, yb = x[:, j * T : (j + 1) * T], y[:, j * T : (j + 1) * T]  # (B, T)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, state = net(xb, carry["state"])  # (B, T, V)
            carry["state"] = LSTMState(state.h.detach().float(), state.c.detach().float())
            return F.cross_entropy(logits.float().reshape(-1, V), yb.reshape(-1))

        validate = None
        if val_ids is not None and len(val_ids):

            def validate() -> float:
                return self._nats(val_ids) / LN2 / n_val_chars

        return _common.fit_network(self, net, batch_loss, validate, steps=steps, batch_size=x.shape[0], steps_per_epoch=per_epoch,
                                   checkpoint_dir=ckpt, resume=resume, progress=progress, warmup=0.1,
                                   fingerprint=_common.data_fingerprint(self.tokenizer_.to_dict(), net.cfg.to_dict(), len(ids)))  # fmt: skip

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ConfigError("this TextGenerator is not fitted yet; call fit(text) first (or TextGenerator.load(dir))")

    @torch.no_grad()
    def _nats(self, ids: np.ndarray) -> float:
        """Total −ln P of ``ids`` under the LSTM, each token predicted from all the ones before it.

        A long text is scored as up to :data:`EVAL_STREAMS` contiguous pieces run side by side (a batch):
        the first starts from ``<bos>``, every other one first reads the :data:`EVAL_BURN_IN` tokens before
        it without scoring them, so its state is warm as in one long pass; every token is scored once."""
        net = self.net_
        was_training = net.training
        net.eval()
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        n = len(ids)
        inp_all = torch.cat([torch.tensor([BOS_ID]), ids[:-1]])  # (n,) the input that predicts ids[t]
        k = max(1, min(EVAL_STREAMS, n // EVAL_STREAM_MIN))
        bounds = np.linspace(0, n, k + 1).astype(np.int64)
        starts = [max(0, int(s) - EVAL_BURN_IN) for s in bounds[:-1]]
        L = max(int(e) - c for c, e in zip(starts, bounds[1:]))
        inp = torch.full((k, L), BOS_ID, dtype=torch.int64)  # (B, L)
        tgt = torch.full((k, L), -100, dtype=torch.int64)  # -100: not scored (burn-in, padding)
        for i, (c, s, e) in enumerate(zip(starts, bounds[:-1], bounds[1:])):
            inp[i, : e - c] = inp_all[c:e]
            tgt[i, s - c : e - c] = ids[s:e]
        total, state = 0.0, None
        for s in range(0, L, EVAL_CHUNK):
            logits, state = net(inp[:, s : s + EVAL_CHUNK], state)  # (B, t, V)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), tgt[:, s : s + EVAL_CHUNK].reshape(-1),
                                           ignore_index=-100, reduction="sum"))  # fmt: skip
        net.train(was_training)
        return total

    def evaluate(self, text) -> GenEvaluation:
        """Bits per character and perplexity of the LSTM and the n-gram on ``text`` (a string, file or folder).

        Characters unseen at fit count as ``<unk>`` events for both models (the same events)."""
        self._check_fitted()
        text = _nonempty(read_corpus(text), "the evaluation text")
        ids = np.asarray(self.tokenizer_.encode(text), dtype=np.int64)
        char_ids = np.asarray(self.char_tokenizer_.encode(text), dtype=np.int64)
        n_chars = len(char_ids)
        ev = GenEvaluation(n_chars=n_chars, n_tokens=len(ids), unknown_chars=int((char_ids == UNK_ID).sum()))
        nats = self._nats(ids)
        per = "character" if self.tokenizer == "char" else "subword"
        ev.results["lstm"] = {"bpc": nats / LN2 / n_chars, "perplexity": math.exp(nats / max(1, len(ids))), "per": per, "nats": nats}
        if getattr(self, "ngram_", None) is not None:
            ng = -float(self.ngram_.log_probs(char_ids).sum())
            ev.results["ngram"] = {"bpc": ng / LN2 / n_chars, "perplexity": math.exp(ng / n_chars), "per": "character", "nats": ng, "order": self.ngram_.order_}
        return ev

    # ------------------------------------------------------------------ sampling
    def _encode_prompt(self, prompt: str, tokenizer, what: str = "the prompt") -> list[int]:
        ids = tokenizer.encode(prompt) if prompt else []
        if tokenizer.kind == "char" and UNK_ID in ids:
            unknown = sorted({c for c in unicodedata.normalize("NFC", prompt) if c not in tokenizer.vocab})
            shown = ", ".join(repr(c) for c in unknown[:10]) + (" …" if len(unknown) > 10 else "")
            log.warning("%s has %d character(s) the model never saw (%s); they are read as <unk>", what, len(unknown), shown)
        return ids

    @torch.no_grad()
    def sample(self, prompt: str = "", length: int = 200, *, temperature: float = 1.0, top_k: int | None = None,
               seed: int = 0, model: str = "lstm") -> str:  # fmt: skip
        """Continue ``prompt`` by ``length`` tokens (characters for ``char``; the n-gram always samples
        characters) and return the continuation. ``temperature`` < 1 sharpens the distribution, > 1 flattens
        it; ``top_k`` keeps the k most probable tokens. The special ids are never sampled. Characters of the
        prompt outside the vocabulary are read as ``<unk>`` (with a warning). Same seed ⇒ same text."""
        self._check_fitted()
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt must be a string, got {type(prompt).__name__}")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ConfigError(f"length must be a non-negative integer, got {length!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"temperature must be a positive number (e.g. 0.8; lower = more conservative), got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ConfigError(f"top_k must be a positive integer or None, got {top_k!r}")
        if model not in ("lstm", "ngram"):
            raise ConfigError(f"model must be 'lstm' or 'ngram', got {model!r}")
        gen = torch.Generator().manual_seed(int(seed))
        if model == "ngram":
            if getattr(self, "ngram_", None) is None:
                raise ConfigError("this model has no n-gram baseline (fitted with baseline=False)")
            tok = self.char_tokenizer_
            context = [BOS_ID] + self._encode_prompt(prompt, tok)
            out = []
            for _ in range(length):
                p = torch.from_numpy(self.ngram_.distribution(context))
                i = self._draw(torch.log(p), temperature, top_k, gen)
                out.append(i)
                context.append(i)
            return tok.decode(out)
        tok = self.tokenizer_
        ids = [BOS_ID] + self._encode_prompt(prompt, tok)
        self.net_.eval()
        logits, state = self.net_(torch.tensor([ids]))  # (1, T, V)
        last = logits[0, -1]
        out = []
        for _ in range(length):
            i = self._draw(last, temperature, top_k, gen)
            out.append(i)
            logits, state = self.net_(torch.tensor([[i]]), state)
            last = logits[0, -1]
        return tok.decode(out)

    @staticmethod
    def _draw(logits: Tensor, temperature: float, top_k: int | None, gen: torch.Generator) -> int:
        z = logits.double() / temperature  # (V,)
        z[: len(SPECIALS)] = -math.inf  # <pad>, <unk>, <bos>, <eos> are never produced
        if top_k is not None and top_k < z.numel():
            kth = torch.topk(z, top_k).values[-1]
            z = z.masked_fill(z < kth, -math.inf)
        return int(torch.multinomial(torch.softmax(z, dim=0), 1, generator=gen))

    # ------------------------------------------------------------------ inside the cell
    def cell_view(self, text: str, units: Sequence[int] | None = None, *, top: int = 8, layer: int = -1):
        """Per-token cell state of the LSTM over ``text`` (Karpathy et al. 2015's view): a DataFrame
        ``position, token, unit, c, tanh_c, h`` (see :func:`lstmkit.diagnostics.gates.cell_activation_view`).
        Without ``units``, the ``top`` units whose ``tanh(c)`` varies most over the text are shown."""
        from lstmkit.diagnostics.gates import cell_activation_view

        self._check_fitted()
        text = _nonempty(text, "the text to inspect")
        ids = self._encode_prompt(text, self.tokenizer_, "the text to inspect")
        tokens = [self.tokenizer_.id_to_token(i) if i != UNK_ID else "<unk>" for i in ids]
        if self.tokenizer == "char":
            tokens = list(unicodedata.normalize("NFC", text))  # the characters themselves, unknown ones too
        with torch.no_grad():
            emb = self.net_.embedding(torch.tensor(ids))  # (T, E): one sequence, whatever the layer's layout
        if units is None:
            view = cell_activation_view(self.net_.lstm, emb, tokens, layer_index=layer)
            spread = view.groupby("unit")["tanh_c"].std().sort_values(ascending=False, kind="stable")
            units = sorted(int(u) for u in spread.index[:top])
        return cell_activation_view(self.net_.lstm, emb, tokens, units, layer_index=layer)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write ``tokenizer.json`` (+ ``char_tokenizer.json`` for bpe), ``weights.safetensors`` (network and
        n-gram tables), ``metrics.json`` when given, and last ``config.json`` into ``path``, each atomically."""
        self._check_fitted()
        path = _common.save_dir(path)
        tensors = _common.prefixed(self.net_, "net.")
        ngram_meta = None
        if self.ngram_ is not None:
            ngram_meta, arrays = self.ngram_.to_state()
            tensors.update({f"ngram.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        atomic_write_json(path / "tokenizer.json", self.tokenizer_.to_dict())
        if self.tokenizer != "char":
            atomic_write_json(path / "char_tokenizer.json", self.char_tokenizer_.to_dict())
        digest = atomic_save_tensors(path / "weights.safetensors", tensors)
        config = {
            **_common.format_header(FORMAT, FORMAT_VERSION),
            "params": {**self.get_params(), "ngram_orders": list(self.ngram_orders)}, "net": self.net_.cfg.to_dict(),
            "ngram": ngram_meta, "weights_sha256": digest,
            **{k: getattr(self, f"{k}_", None) for k in _FITTED},
        }  # fmt: skip
        return _common.finish_save(path, config, metrics)

    @classmethod
    def load(cls, path: str | Path) -> TextGenerator:
        """Rebuild a fitted TextGenerator from a directory written by :meth:`save` (no pickle involved)."""
        path = Path(path)
        cfg, tensors = read_model_dir(path, FORMAT, FORMAT_VERSION, "text generator", "generate fit")
        with _common.reading_model_dir(path):
            params = dict(cfg["params"])
            params["ngram_orders"] = tuple(params["ngram_orders"])
            self = cls(**params)
            self.tokenizer_ = tokenizer_from_dict(read_json(path / "tokenizer.json", "tokenizer"))
            self.char_tokenizer_ = self.tokenizer_ if self.tokenizer == "char" else tokenizer_from_dict(read_json(path / "char_tokenizer.json", "tokenizer"))
            self.net_ = _common.load_prefixed(LMNet(LMNetConfig(**cfg["net"])), tensors, "net.")
            self.ngram_ = None
            if cfg.get("ngram") is not None:
                arrays = {k[6:]: v.numpy() for k, v in tensors.items() if k.startswith("ngram.")}
                self.ngram_ = NGramLM.from_state(cfg["ngram"], arrays)
            for k in _FITTED:
                setattr(self, f"{k}_", cfg.get(k))
        return self


_PARAMS = [
    "tokenizer", "vocab_size", "min_freq", "embed_dim", "hidden_size", "num_layers", "dropout", "seq_len",
    "batch_size", "epochs", "steps", "lr", "clip", "val_fraction", "patience", "ngram_orders", "baseline", "precision",
    "seed",
]  # fmt: skip
_FITTED = ["precision", "history", "stopped_early", "fit_seconds", "ngram_seconds", "n_train_chars", "n_val_chars", "val_metrics"]


def _nonempty(text: str, what: str) -> str:
    if not text or not text.strip():
        raise DataError(f"{what} is empty (no characters other than white space); pass a non-empty text, file or folder")
    return text
