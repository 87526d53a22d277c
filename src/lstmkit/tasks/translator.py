"""``Translator``: an encoder–decoder LSTM with attention, scikit-learn style, with baselines beside it.

What ``fit(sources, targets)`` does (or ``fit("pairs.tsv")``: one ``source<TAB>target`` pair a line):

1. checks the pairs (no empty source or target; the file is valid text, every line has its tab) and holds
   out a random ``val_fraction`` for early stopping and the validation scores;
2. fits two tokenizers — one on the sources, one on the targets, so each side has its own vocabulary —
   characters by default (``word`` / ``bpe`` selectable per side);
3. trains :class:`~lstmkit.models.seq2seq_net.Seq2SeqNet` (bidirectional LSTM encoder, LSTM decoder with
   Luong's general attention) with teacher forcing on token cross-entropy (optionally label-smoothed),
   Adam, gradient clipping and the one-cycle schedule of the shared loop
   (:func:`lstmkit.training.loop.train`), keeping the epoch with the best validation loss;
4. keeps (a sample of) the training pairs for the nearest-neighbour baseline: a new source gets the
   target of the training source most similar in character 1–3-grams (TF-IDF cosine).

``predict`` decodes with batched beam search (greedy when ``beam_size=1``); ``evaluate`` scores exact
match, corpus BLEU and chrF (sacrebleu) of the LSTM beside the nearest-neighbour baseline and
copy-the-source. ``save`` writes ``config.json`` + ``source_tokenizer.json`` + ``target_tokenizer.json`` +
``weights.safetensors`` + ``baseline.json``; nothing is pickled.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lstmkit.errors import ConfigError, DataError
from lstmkit.models.seq2seq_net import (
    Seq2SeqNet,
    Seq2SeqNetConfig,
    beam_search,
    greedy_decode,
)
from lstmkit.tasks import _common
from lstmkit.text.tokenizers import KINDS, make_tokenizer, tokenizer_from_dict
from lstmkit.text.vocab import BOS_ID, EOS_ID, PAD_ID, pad_batch
from lstmkit.training.checkpoint import (
    atomic_save_tensors,
    atomic_write_json,
    read_json,
    read_model_dir,
)

log = logging.getLogger(__name__)

FORMAT = "lstmkit.translator"
FORMAT_VERSION = 1
PREDICT_BATCH = 128  # sources per decoding batch (× beam_size hypotheses)
VAL_SCORED = 1000  # validation pairs decoded for the scores reported after fit
BASELINE_PAIRS = 20_000  # training pairs kept for the nearest-neighbour baseline
HEADER = ("source", "target")


# ------------------------------------------------------------------------------------------ data
def read_pairs(path: str | Path, encoding: str = "utf-8", flag: str = "PAIRS") -> tuple[list[str], list[str]]:
    """Sources and targets of a TSV file: one ``source<TAB>target`` pair per line.

    Blank lines are skipped, and so is a first line ``source<TAB>target`` (a header). A line with no tab
    (or more than one), or that is not valid ``encoding`` text, is a :class:`DataError` naming the file and
    the line; empty sources or targets are reported by :func:`check_pairs`, with their line numbers.
    """
    p = _common.check_input_file(path, flag, "a TSV file of source<TAB>target lines")
    _common.check_encoding(encoding, "encoding")
    data = p.read_bytes()
    if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        data = data[3:]
    sources, targets, lines = [], [], []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode(encoding).rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{flag} file {str(p)!r} line {lineno} is not valid {encoding} text (byte 0x{raw[e.start]:02x} at "
                f"column {e.start + 1}); convert the file to UTF-8 or pass its encoding (--encoding latin-1)"
            ) from None
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            what = "has no tab" if len(parts) == 1 else f"has {len(parts) - 1} tabs"
            raise DataError(
                f"{flag} file {str(p)!r} line {lineno} {what}: {line[:60]!r}; every line must be source<TAB>target "
                "(exactly one tab)"
            )
        if not sources and lineno == 1 and tuple(s.strip().lower() for s in parts) == HEADER:
            continue
        sources.append(parts[0])
        targets.append(parts[1])
        lines.append(lineno)
    if not sources:
        raise DataError(f"{flag} file {str(p)!r} holds no pairs; expected source<TAB>target lines")
    check_pairs(sources, targets, where=f"{flag} file {str(p)!r}", lines=lines)
    return sources, targets


def _shown(rows: list[int], limit: int = 5) -> str:
    s = ", ".join(map(str, rows[:limit]))
    return s + (f", … ({len(rows)} in all)" if len(rows) > limit else "")


def _empty(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip()


def check_texts(texts: Sequence[str], what: str = "texts", lines: list[int] | None = None) -> list[str]:
    """``texts`` as a list of non-empty strings; a :class:`DataError` naming the rows of empty ones."""
    if isinstance(texts, (str, bytes)):
        raise DataError(f"{what} must be a sequence of strings, got one string; wrap it in a list: [text]")
    values = list(texts)
    if not values:
        raise DataError(f"{what} is empty: there is nothing to translate")
    bad = [i for i, v in enumerate(values) if _empty(v)]
    if bad:
        where = "line(s)" if lines is not None else "row(s)"
        rows = [lines[i] if lines is not None else i + 1 for i in bad]
        raise DataError(f"{what} has {len(bad)} empty text(s) at {where} {_shown(rows)}; remove those rows or fill them in")
    return [str(v) for v in values]


def check_pairs(sources: Sequence[str], targets: Sequence[str], where: str = "the data", lines: list[int] | None = None) -> tuple[list[str], list[str]]:
    """Both sides as lists of strings of equal length, neither side empty anywhere (rows / lines named)."""
    for name, v in (("sources", sources), ("targets", targets)):
        if isinstance(v, (str, bytes)):
            raise DataError(f"{name} must be a sequence of strings, got one string; wrap it in a list")
    sources, targets = list(sources), list(targets)
    if len(sources) != len(targets):
        raise DataError(f"got {len(sources)} sources but {len(targets)} targets; give one target per source")
    if not sources:
        raise DataError(f"{where} holds no pairs: there is nothing to learn from")
    unit = "line(s)" if lines is not None else "row(s)"
    problems = []
    for side, values in (("source", sources), ("target", targets)):
        bad = [(lines[i] if lines is not None else i + 1) for i, v in enumerate(values) if _empty(v)]
        if bad:
            problems.append(f"{len(bad)} empty {side}(s) at {unit} {_shown(bad)}")
    if problems:
        raise DataError(f"{where} has {' and '.join(problems)}; remove those pairs or fill them in")
    return [str(v) for v in sources], [str(v) for v in targets]


# ------------------------------------------------------------------------------------------ metrics
def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU and chrF need sacrebleu; pip install sacrebleu (or lstmkit[text])") from None
    return sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Exact match (share of identical strings), corpus BLEU and chrF (sacrebleu's defaults, 0–100)."""
    sb = _sacrebleu()
    hyps, refs = [str(h) for h in hypotheses], [str(r) for r in references]
    exact = float(np.mean([h.strip() == r.strip() for h, r in zip(hyps, refs)])) if refs else 0.0
    return {"exact_match": exact, "bleu": float(sb.corpus_bleu(hyps, [refs]).score),
            "chrf": float(sb.corpus_chrf(hyps, [refs]).score)}  # fmt: skip


@dataclass
class TranslationEvaluation:
    """Scores of the LSTM and the baselines on one set of pairs."""

    n: int
    results: dict[str, dict] = field(default_factory=dict)  # model -> {exact_match, bleu, chrf}
    predictions: list[str] = field(default_factory=list)  # the LSTM's, in input order

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": m, **r} for m, r in self.results.items()])

    def to_dict(self) -> dict:
        return {"n": self.n, "results": self.results}


# ------------------------------------------------------------------------------------------ baseline
class NearestNeighbourBaseline:
    """The target of the most similar training source: TF-IDF over character 1–3-grams, cosine similarity.

    The vectoriser is fitted on first use, so loading a model to translate costs nothing for it."""

    def __init__(self, sources: list[str], targets: list[str]) -> None:
        self.sources, self.targets = list(sources), list(targets)
        self._index = None

    @staticmethod
    def check_available() -> None:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise ConfigError("the nearest-neighbour baseline needs scikit-learn; pip install scikit-learn, or pass baseline=False / --no-baseline") from None

    def _fitted(self):
        if self._index is None:
            self.check_available()
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False, sublinear_tf=True)
            self._index = (vectorizer, vectorizer.fit_transform(self.sources))  # (N, F), rows L2-normalised
        return self._index

    def predict(self, texts: Sequence[str]) -> list[str]:
        vectorizer, matrix = self._fitted()
        X = vectorizer.transform(list(texts))
        out = []
        for s in range(0, X.shape[0], 512):
            sim = (X[s : s + 512] @ matrix.T).toarray()  # (b, N)
            out.extend(self.targets[j] for j in sim.argmax(axis=1))
        return out

    def to_dict(self) -> dict:
        return {"sources": self.sources, "targets": self.targets}

    @classmethod
    def from_dict(cls, d: dict) -> NearestNeighbourBaseline:
        return cls(d["sources"], d["targets"])


# ------------------------------------------------------------------------------------------ estimator
class Translator:
    """Sequence-to-sequence translation of short texts with an attention LSTM.

    Args:
        tokenizer: token unit of the sources: ``"char"`` (default), ``"word"`` or ``"bpe"``.
        target_tokenizer: token unit of the targets (default: the same as ``tokenizer``). ``"word"``
            shortens word-like targets (number words) and joins the words with single spaces on output.
        vocab_size: largest vocabulary per side (bpe: its trained size, default 8000).
        min_freq: a token must occur this often to enter a vocabulary (default 1).
        lowercase: lower-case both sides before tokenizing (default: no).
        max_length: tokens kept from the start of each source and each target.
        embed_dim, hidden_size, num_layers, dropout: the network (``hidden_size`` per encoder direction).
        label_smoothing: share of each target token's probability spread over the vocabulary (0: none).
        beam_size: default beam width of ``predict`` (1: greedy decoding).
        length_penalty: α of the beam's length normalisation, score / length^α (0: raw log-probability).
        epochs: passes over the training pairs (``steps`` overrides it with a number of optimiser steps).
        batch_size, lr, weight_decay, clip, seed: training (see :class:`~lstmkit.training.loop.TrainConfig`).
        val_fraction: random share of the pairs held out for early stopping and validation scores.
        patience: validations without improvement before stopping early (0: never).
        baseline: keep training pairs for the nearest-neighbour baseline (needs scikit-learn).
    """

    def __init__(
        self,
        *,
        tokenizer: str = "char",
        target_tokenizer: str | None = None,
        vocab_size: int | None = None,
        min_freq: int | None = None,
        lowercase: bool = False,
        max_length: int = 256,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.1,
        label_smoothing: float = 0.0,
        beam_size: int = 5,
        length_penalty: float = 1.0,
        epochs: float = 20.0,
        steps: int | None = None,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        clip: float = 1.0,
        val_fraction: float = 0.05,
        patience: int = 0,
        baseline: bool = True,
        seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.target_tokenizer = target_tokenizer
        self.vocab_size = vocab_size
        self.min_freq = min_freq
        self.lowercase = lowercase
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.val_fraction = val_fraction
        self.patience = patience
        self.baseline = baseline
        self.seed = seed

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in _PARAMS}

    def _check_params(self) -> None:
        for name in ("tokenizer", "target_tokenizer"):
            v = getattr(self, name)
            if not (v in KINDS or (v is None and name == "target_tokenizer")):
                raise ConfigError(f"{name} must be one of {', '.join(KINDS)}, got {v!r}")
        _common.check_text_params(self, ("max_length", "embed_dim", "hidden_size", "num_layers", "batch_size", "beam_size"))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _common.check_val_fraction(self)
        _common.check_lr_epochs(self)
        _common.check_seed(self)
        if self.length_penalty < 0:
            raise ConfigError(f"length_penalty must be >= 0, got {self.length_penalty}")

    def _make_tokenizer(self, kind: str):
        return make_tokenizer(kind, lowercase=self.lowercase, min_freq=self.min_freq or 1, vocab_size=self.vocab_size)

    # ------------------------------------------------------------------ fit
    def fit(self, sources: Sequence[str] | str | Path, targets: Sequence[str] | None = None, *, progress: bool = False,
            checkpoint_dir: str | Path | None = None, resume: bool = False, encoding: str = "utf-8") -> Translator:  # fmt: skip
        """Train on the pairs (``sources[i]`` → ``targets[i]``, or a TSV path as ``sources``) and return ``self``."""
        self._check_params()
        if self.baseline:
            NearestNeighbourBaseline.check_available()
        t0 = time.perf_counter()
        if targets is None:
            if not isinstance(sources, (str, Path)):
                raise DataError("targets is missing: pass fit(sources, targets) or fit('pairs.tsv')")
            sources, targets = read_pairs(sources, encoding)
        src_texts, tgt_texts = check_pairs(sources, targets)
        n = len(src_texts)
        rng = np.random.default_rng(self.seed)
        n_val = round(self.val_fraction * n) if n >= 20 else 0
        perm = rng.permutation(n)
        va, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        self.source_tokenizer_ = self._make_tokenizer(self.tokenizer).fit([src_texts[i] for i in tr])
        self.target_tokenizer_ = self._make_tokenizer(self.target_tokenizer or self.tokenizer).fit([tgt_texts[i] for i in tr])
        src = pad_batch(self.source_tokenizer_.encode_batch(src_texts), max_length=self.max_length)
        tgt_ids = [s[: self.max_length] for s in self.target_tokenizer_.encode_batch(tgt_texts)]
        self.max_target_length_ = max(len(tgt_ids[i]) for i in tr)
        tgt_in, tgt_out = _teacher_forcing(tgt_ids)

        torch.manual_seed(self.seed)
        cfg = Seq2SeqNetConfig(
            src_vocab_size=self.source_tokenizer_.vocab_size, tgt_vocab_size=self.target_tokenizer_.vocab_size,
            embed_dim=self.embed_dim, hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=self.dropout,
        )  # fmt: skip
        self.net_ = Seq2SeqNet(cfg)
        result = self._train(src.ids, src.lengths, tgt_in, tgt_out, tr, va, progress, checkpoint_dir, resume)
        self.history_ = result.history
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_train_, self.n_val_ = len(tr), len(va)

        self.baseline_ = None
        if self.baseline:
            keep = tr if len(tr) <= BASELINE_PAIRS else np.sort(rng.choice(tr, BASELINE_PAIRS, replace=False))
            self.baseline_ = NearestNeighbourBaseline([src_texts[i] for i in keep], [tgt_texts[i] for i in keep])
        self.val_metrics_ = None
        if len(va):
            shown = va[:VAL_SCORED]
            ev = self.evaluate([src_texts[i] for i in shown], [tgt_texts[i] for i in shown], beam_size=1)
            self.val_metrics_ = {**ev.to_dict(), "decoding": "greedy"}
        return self

    def _train(self, src_ids, src_len, tgt_in, tgt_out, tr, va, progress, ckpt, resume):
        net, B = self.net_, self.batch_size
        tr_t = torch.from_numpy(tr)
        tgt_len = (tgt_out != PAD_ID).sum(dim=1)  # (N,) target tokens incl. the end token
        n = len(tr)
        steps, per_epoch = _common.epoch_schedule(self.steps, self.epochs, n, B)
        smoothing = self.label_smoothing

        def loss_on(idx: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
            S, T = int(src_len[idx].max()), int(tgt_len[idx].max())
            logits = net(src_ids[idx, :S], src_len[idx], tgt_in[idx, :T])  # (b, T, V)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out[idx, :T].reshape(-1),
                                   ignore_index=PAD_ID, label_smoothing=smoothing, reduction=reduction)  # fmt: skip

        def batch_loss(gen: torch.Generator) -> torch.Tensor:
            return loss_on(tr_t[torch.randint(0, n, (B,), generator=gen)])

        validate = None
        if len(va):
            order = torch.from_numpy(va[np.argsort(src_len[va].numpy(), kind="stable")])
            tokens = float(tgt_len[order].sum())

            def validate() -> float:
                total = sum(float(loss_on(order[s : s + 256], "sum")) for s in range(0, len(order), 256))
                return total / tokens

        return _common.fit_network(self, net, batch_loss, validate, steps=steps, batch_size=B, steps_per_epoch=per_epoch,
                                   checkpoint_dir=ckpt, resume=resume, progress=progress, weight_decay=self.weight_decay,
                                   fingerprint=_common.data_fingerprint(self.source_tokenizer_.to_dict(), self.target_tokenizer_.to_dict(),
                                                                        net.cfg.to_dict(), n))  # fmt: skip

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ConfigError("this Translator is not fitted yet; call fit(sources, targets) first (or Translator.load(dir))")

    def unknown_tokens(self, texts: Sequence[str]) -> list[str]:
        """Source tokens of ``texts`` outside the source vocabulary (read as ``<unk>``), in order of appearance."""
        self._check_fitted()
        tok = self.source_tokenizer_
        if not hasattr(tok, "vocab"):  # byte-level BPE: nothing is ever unknown
            return []
        seen: dict[str, None] = {}
        for t in texts:
            for piece in tok.tokens(t):
                if piece not in tok.vocab:
                    seen.setdefault(piece)
        return list(seen)

    def predict(self, texts: Sequence[str], *, beam_size: int | None = None, max_len: int | None = None,
                progress: bool = False) -> list[str]:  # fmt: skip
        """The translation of each text (a list of strings, in input order).

        ``beam_size`` (default: the model's ``beam_size``) hypotheses per text, ranked by length-normalised
        log-probability; 1 decodes greedily. ``max_len``: most target tokens per translation (default:
        1.5 × the longest training target + 5). Tokens outside the source vocabulary are read as ``<unk>``,
        with one warning.
        """
        self._check_fitted()
        texts = check_texts(texts, "texts")
        K = self.beam_size if beam_size is None else beam_size
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
            raise ConfigError(f"beam_size must be a positive integer, got {K!r}")
        if max_len is None:
            max_len = int(1.5 * self.max_target_length_) + 5
        elif isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
            raise ConfigError(f"max_len must be a positive integer, got {max_len!r}")
        unknown = self.unknown_tokens(texts)
        if unknown:
            log.warning("%d token(s) of the input are not in the source vocabulary and are read as <unk>: %s",
                        len(unknown), ", ".join(map(repr, unknown[:10])) + (" …" if len(unknown) > 10 else ""))  # fmt: skip
        src = pad_batch(self.source_tokenizer_.encode_batch(texts), max_length=self.max_length)
        order = np.argsort(src.lengths.numpy(), kind="stable")  # similar lengths together: less padding
        out: list[str] = [""] * len(texts)
        bar = _bar(len(texts), "translating") if progress else None
        self.net_.eval()
        for s in range(0, len(order), PREDICT_BATCH):
            idx = torch.from_numpy(order[s : s + PREDICT_BATCH])
            L = src.lengths[idx]
            ids = src.ids[idx, : int(L.max())]
            if K == 1:
                seqs = greedy_decode(self.net_, ids, L, max_len)
            else:
                seqs, _ = beam_search(self.net_, ids, L, max_len, K, self.length_penalty)
            for i, seq in zip(idx.tolist(), seqs):
                out[i] = self.target_tokenizer_.decode(seq)
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, sources: Sequence[str] | str | Path, references: Sequence[str] | None = None, *,
                 beam_size: int | None = None, progress: bool = False, encoding: str = "utf-8") -> TranslationEvaluation:  # fmt: skip
        """Exact match, BLEU and chrF of the LSTM, the nearest-neighbour baseline (when kept) and
        copy-the-source on the same pairs (lists, or a TSV path as ``sources``)."""
        self._check_fitted()
        if references is None:
            if not isinstance(sources, (str, Path)):
                raise DataError("references is missing: pass evaluate(sources, references) or evaluate('pairs.tsv')")
            sources, references = read_pairs(sources, encoding)
        src, refs = check_pairs(sources, references)
        ev = TranslationEvaluation(n=len(src))
        ev.predictions = self.predict(src, beam_size=beam_size, progress=progress)
        ev.results["lstm"] = translation_scores(ev.predictions, refs)
        if getattr(self, "baseline_", None) is not None:
            try:
                ev.results["nearest_neighbour"] = translation_scores(self.baseline_.predict(src), refs)
            except ConfigError as e:  # a model saved where scikit-learn was installed, loaded where it is not
                log.warning("no nearest-neighbour baseline: %s", e)
        ev.results["copy_source"] = translation_scores(src, refs)
        return ev

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write the tokenizers, ``weights.safetensors``, ``baseline.json`` (+ ``metrics.json``) and last
        ``config.json`` into ``path``, each atomically."""
        self._check_fitted()
        path = _common.save_dir(path)
        atomic_write_json(path / "source_tokenizer.json", self.source_tokenizer_.to_dict())
        atomic_write_json(path / "target_tokenizer.json", self.target_tokenizer_.to_dict())
        if self.baseline_ is not None:
            atomic_write_json(path / "baseline.json", self.baseline_.to_dict())
        digest = atomic_save_tensors(path / "weights.safetensors", _common.prefixed(self.net_, "net."))
        config = {
            **_common.format_header(FORMAT, FORMAT_VERSION),
            "params": self.get_params(), "net": self.net_.cfg.to_dict(), "baseline": self.baseline_ is not None,
            "max_target_length": self.max_target_length_, "weights_sha256": digest,
            "fit_seconds": getattr(self, "fit_seconds_", None), "n_train": getattr(self, "n_train_", None),
            "n_val": getattr(self, "n_val_", None), "val_metrics": getattr(self, "val_metrics_", None),
        }  # fmt: skip
        return _common.finish_save(path, config, metrics)

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """Rebuild a fitted Translator from a directory written by :meth:`save` (no pickle involved)."""
        path = Path(path)
        cfg, tensors = read_model_dir(path, FORMAT, FORMAT_VERSION, "translator", "translate fit")
        with _common.reading_model_dir(path):
            self = cls(**cfg["params"])
            self.source_tokenizer_ = tokenizer_from_dict(read_json(path / "source_tokenizer.json", "source tokenizer"))
            self.target_tokenizer_ = tokenizer_from_dict(read_json(path / "target_tokenizer.json", "target tokenizer"))
            self.net_ = _common.load_prefixed(Seq2SeqNet(Seq2SeqNetConfig(**cfg["net"])), tensors, "net.")
            self.max_target_length_ = int(cfg["max_target_length"])
            self.baseline_ = None
            if cfg.get("baseline"):
                self.baseline_ = NearestNeighbourBaseline.from_dict(read_json(path / "baseline.json", "baseline"))
            for k in ("fit_seconds", "n_train", "n_val", "val_metrics"):
                setattr(self, f"{k}_", cfg.get(k))
        return self


_PARAMS = [
    "tokenizer", "target_tokenizer", "vocab_size", "min_freq", "lowercase", "max_length", "embed_dim",
    "hidden_size", "num_layers", "dropout", "label_smoothing", "beam_size", "length_penalty", "epochs", "steps",
    "batch_size", "lr", "weight_decay", "clip", "val_fraction", "patience", "baseline", "seed",
]  # fmt: skip


def _teacher_forcing(tgt_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs ``<bos> y`` and outputs ``y <eos>``, right-padded (N, T+1) each."""
    T = max(len(s) for s in tgt_ids) + 1
    tgt_in = torch.full((len(tgt_ids), T), PAD_ID, dtype=torch.int64)
    tgt_out = torch.full((len(tgt_ids), T), PAD_ID, dtype=torch.int64)
    for i, s in enumerate(tgt_ids):
        tgt_in[i, : len(s) + 1] = torch.tensor([BOS_ID, *s], dtype=torch.int64)
        tgt_out[i, : len(s) + 1] = torch.tensor([*s, EOS_ID], dtype=torch.int64)
    return tgt_in, tgt_out


def _bar(total: int, desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="text", leave=False, dynamic_ncols=True, disable=None)
