"""``TextClassifier``: a bidirectional LSTM text classifier, scikit-learn style, with its baselines beside it.

What ``fit(texts, labels)`` does:

1. checks the data (no empty texts or missing labels, at least two classes) and holds out a stratified
   ``val_fraction`` for early stopping;
2. fits the tokenizer (``word`` / ``char`` / ``bpe``) on the training texts, optionally initialises the
   embeddings from a word2vec/GloVe text file;
3. trains :class:`~lstmkit.models.classifier_net.ClassifierNet` with the shared step-based loop
   (:func:`lstmkit.training.loop.train`) on cross-entropy, optionally class-weighted (``"balanced"`` weighs
   each class by ``N / (C · N_c)`` so rare classes count), keeping the epoch with the best validation loss;
4. fits the baseline — TF-IDF (word 1–2-grams) + logistic regression (scikit-learn, imported here only) —
   on exactly the same training texts, so ``evaluate`` can score both on the same held-out data.

``save`` writes ``config.json`` + ``tokenizer.json`` + ``weights.safetensors`` (network and baseline
weights) + ``baseline.json`` (the TF-IDF terms); nothing is pickled.
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
from lstmkit.models.classifier_net import POOLINGS, ClassifierNet, ClassifierNetConfig
from lstmkit.tasks import _common
from lstmkit.text.tokenizers import KINDS, make_tokenizer, tokenizer_from_dict
from lstmkit.text.vocab import Batch, init_embedding, pad_batch, read_vectors
from lstmkit.training.checkpoint import (
    atomic_save_tensors,
    atomic_write_json,
    read_json,
    read_model_dir,
)

log = logging.getLogger(__name__)

FORMAT = "lstmkit.text_classifier"
FORMAT_VERSION = 1
PREDICT_BATCH = 256
# The baseline's settings: the best of the usual grid on the tweet corpus (REFERENCES.md: 0.755 / 0.730).
TFIDF_PARAMS = {"ngram_range": [1, 2], "sublinear_tf": True, "min_df": 2}
LR_C = 4.0


# ------------------------------------------------------------------------------------------ metrics
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class index, column = predicted class index."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def scores(cm: np.ndarray) -> dict:
    """Accuracy and macro-F1 (the unweighted mean of per-class F1; a class never predicted nor present counts 0)."""
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    f1 = np.divide(2 * tp, pred + true, out=np.zeros_like(tp), where=(pred + true) > 0)
    return {"accuracy": float(tp.sum() / max(1, cm.sum())), "macro_f1": float(f1.mean()), "f1": f1.tolist()}


@dataclass
class Evaluation:
    """Scores of the LSTM and the baselines on one labelled set."""

    classes: list[str]
    n: int
    results: dict[str, dict] = field(default_factory=dict)  # model -> {accuracy, macro_f1, f1, confusion}

    def table(self) -> pd.DataFrame:
        rows = [{"model": m, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"],
                 **{f"f1_{c}": v for c, v in zip(self.classes, r["f1"])}} for m, r in self.results.items()]  # fmt: skip
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {"classes": self.classes, "n": self.n, "results": self.results}


# ------------------------------------------------------------------------------------------ baseline
class TfidfBaseline:
    """TF-IDF (word 1–2-grams, sublinear tf) + multinomial logistic regression, storable without pickle."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.vectorizer = vectorizer
        self.coef = coef.astype(np.float32)  # (C or 1, F)
        self.intercept = intercept.astype(np.float32)

    @staticmethod
    def _sklearn():
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise ConfigError("the TF-IDF baseline needs scikit-learn; pip install scikit-learn (or lstmkit[text]), or pass baseline=False / --no-baseline") from None
        return TfidfVectorizer, LogisticRegression

    @classmethod
    def fit(cls, texts: list[str], y: np.ndarray, n_classes: int, seed: int = 0) -> TfidfBaseline:
        TfidfVectorizer, LogisticRegression = cls._sklearn()
        params = dict(TFIDF_PARAMS, ngram_range=tuple(TFIDF_PARAMS["ngram_range"]))
        try:
            vec = TfidfVectorizer(**params)
            X = vec.fit_transform(texts)
        except ValueError:  # a tiny corpus where no term occurs twice
            vec = TfidfVectorizer(**dict(params, min_df=1))
            X = vec.fit_transform(texts)
        lr = LogisticRegression(C=LR_C, max_iter=1000, random_state=seed).fit(X, y)
        coef, intercept = lr.coef_, lr.intercept_
        if len(lr.classes_) != n_classes:  # should not happen (every class is in the training part)
            full_c = np.zeros((n_classes, coef.shape[1]))
            full_i = np.full(n_classes, -1e4)
            full_c[lr.classes_], full_i[lr.classes_] = coef, intercept
            coef, intercept = full_c, full_i
        return cls(vec, coef, intercept)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        X = self.vectorizer.transform(texts)
        z = np.asarray(X @ self.coef.T) + self.intercept  # (N, C) or (N, 1) for two classes
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        vocab = self.vectorizer.vocabulary_
        terms = [""] * len(vocab)
        for t, i in vocab.items():
            terms[i] = t
        params = {k: v for k, v in self.vectorizer.get_params().items() if k in ("ngram_range", "sublinear_tf", "min_df", "lowercase")}
        meta = {"params": params, "terms": terms}
        tensors = {"baseline.idf": torch.from_numpy(self.vectorizer.idf_.astype(np.float64)),
                   "baseline.coef": torch.from_numpy(self.coef), "baseline.intercept": torch.from_numpy(self.intercept)}  # fmt: skip
        return meta, tensors

    @classmethod
    def from_state(cls, meta: dict, tensors: dict[str, torch.Tensor]) -> TfidfBaseline:
        TfidfVectorizer, _ = cls._sklearn()
        params = dict(meta["params"])
        params["ngram_range"] = tuple(params["ngram_range"])
        vec = TfidfVectorizer(**params, vocabulary={t: i for i, t in enumerate(meta["terms"])})
        vec.idf_ = tensors["baseline.idf"].numpy().astype(np.float64)
        return cls(vec, tensors["baseline.coef"].numpy(), tensors["baseline.intercept"].numpy())


# ------------------------------------------------------------------------------------------ estimator
class TextClassifier:
    """A bidirectional LSTM text classifier.

    Args:
        tokenizer: ``"word"`` (default), ``"char"`` or ``"bpe"`` (see :mod:`lstmkit.text.tokenizers`).
        vocab_size: largest vocabulary (word/char: most frequent tokens; bpe: the trained size, default 8000).
        min_freq: a word/char token must occur this often in the training texts (default: word 2, char 1).
        lowercase: default: word yes, char and bpe no.
        max_length: tokens kept from the start of each text (longer texts are cut).
        embed_dim, hidden_size, num_layers, bidirectional, pooling, dropout: the network
            (pooling: ``"max"``, ``"attention"``, ``"mean"``, ``"max_mean"`` or ``"last"``).
        class_weight: ``None`` (default), ``"balanced"`` (``N / (C · N_c)``), ``"sqrt"`` (its square root: a
            milder push towards rare classes) or a ``{label: weight}`` dict. On the tweet corpus (classes
            2.3 : 2.2 : 1) no weighting scored best on accuracy *and* macro-F1 (0.762 / 0.743, vs sqrt
            0.757 / 0.741 and balanced 0.751 / 0.735); weights pay off when a class is much rarer.
        vectors: path of a word2vec/GloVe *text* file whose vectors initialise the embeddings of the tokens
            it has (word tokenizer; ``embed_dim`` becomes the file's dimension).
        epochs: passes over the training texts (``steps`` overrides it with a number of optimiser steps).
        batch_size, lr, weight_decay, clip, seed: training (see :class:`~lstmkit.training.loop.TrainConfig`).
        val_fraction: stratified share of the data held out for early stopping (0: none).
        patience: validations without improvement before stopping early (0: never).
        baseline: also fit TF-IDF + logistic regression on the same training texts (needs scikit-learn).
    """

    def __init__(
        self,
        *,
        tokenizer: str = "word",
        vocab_size: int | None = None,
        min_freq: int | None = None,
        lowercase: bool | None = None,
        max_length: int = 128,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        pooling: str = "max",
        dropout: float = 0.4,
        class_weight: str | dict | None = None,
        vectors: str | None = None,
        vectors_encoding: str = "utf-8",
        epochs: float = 6.0,
        steps: int | None = None,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        clip: float = 1.0,
        val_fraction: float = 0.1,
        patience: int = 0,
        baseline: bool = True,
        seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.min_freq = min_freq
        self.lowercase = lowercase
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.class_weight = class_weight
        self.vectors = vectors
        self.vectors_encoding = vectors_encoding
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
        if self.tokenizer not in KINDS:
            raise ConfigError(f"tokenizer must be one of {', '.join(KINDS)}, got {self.tokenizer!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        _common.check_text_params(self, ("max_length", "embed_dim", "hidden_size", "num_layers", "batch_size"))
        _common.check_val_fraction(self)
        _common.check_lr_epochs(self)
        _common.check_seed(self)
        if not (self.class_weight in (None, "balanced", "sqrt") or isinstance(self.class_weight, dict)):
            raise ConfigError(f"class_weight must be 'balanced', 'sqrt', None or a {{label: weight}} dict, got {self.class_weight!r}")
        if self.vectors is not None and self.tokenizer == "bpe":
            raise ConfigError("pretrained vectors are looked up by token: use tokenizer='word' (or 'char') with vectors=")

    # ------------------------------------------------------------------ fit
    def fit(self, texts: Sequence[str], labels: Sequence, *, progress: bool = False, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> TextClassifier:  # fmt: skip
        """Train on ``texts`` with their ``labels`` and return ``self``."""
        self._check_params()
        t0 = time.perf_counter()
        texts = check_texts(texts, "texts")
        y_raw = check_labels(labels, len(texts))
        self.classes_ = sorted(set(y_raw))
        if len(self.classes_) < 2:
            raise DataError(
                f"the labels hold a single class ({self.classes_[0]!r}); a classifier needs examples of at least two "
                "classes — check the --label column"
            )
        index = {c: i for i, c in enumerate(self.classes_)}
        y = np.asarray([index[v] for v in y_raw], dtype=np.int64)
        tr, va = stratified_split(y, self.val_fraction, self.seed)
        train_texts = [texts[i] for i in tr]

        self.tokenizer_ = make_tokenizer(self.tokenizer, lowercase=self.lowercase, min_freq=self.min_freq, vocab_size=self.vocab_size)
        self.tokenizer_.fit(train_texts)
        vectors, embed_dim = None, self.embed_dim
        if self.vectors is not None:
            vectors, found = read_vectors(self.vectors, self.tokenizer_.vocab, encoding=self.vectors_encoding)
            embed_dim = vectors.shape[1]
            log.info("pretrained vectors: %d of %d tokens found in %s (dimension %d)", found, self.tokenizer_.vocab_size, self.vectors, embed_dim)
            if found == 0:
                log.warning("no token of the vocabulary is in %s; the embeddings start random", self.vectors)
        batch = self._encode(texts)
        self.weights_ = self._class_weights(y[tr])
        self.class_counts_ = np.bincount(y[tr], minlength=len(self.classes_)).tolist()
        ratio = max(self.class_counts_) / max(1, min(self.class_counts_))
        if self.class_weight is None and ratio > 5:
            log.warning("the classes are imbalanced (largest / smallest = %.0f); class_weight='sqrt' or 'balanced' "
                        "(--class-weight) may raise macro-F1", ratio)  # fmt: skip

        torch.manual_seed(self.seed)
        cfg = ClassifierNetConfig(
            vocab_size=self.tokenizer_.vocab_size, n_classes=len(self.classes_), embed_dim=embed_dim,
            hidden_size=self.hidden_size, num_layers=self.num_layers, bidirectional=self.bidirectional,
            pooling=self.pooling, dropout=self.dropout,
        )  # fmt: skip
        self.net_ = ClassifierNet(cfg)
        if vectors is not None:
            init_embedding(self.net_.embedding.weight, vectors)
        self.history_ = self._train(batch, torch.from_numpy(y), tr, va, progress, checkpoint_dir, resume).history
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_train_, self.n_val_ = len(tr), len(va)

        self.baseline_ = None
        self.baseline_seconds_ = None
        if self.baseline:
            t1 = time.perf_counter()
            self.baseline_ = TfidfBaseline.fit(train_texts, y[tr], len(self.classes_), self.seed)
            self.baseline_seconds_ = time.perf_counter() - t1
        self.val_metrics_ = None
        if len(va):
            self.val_metrics_ = self.evaluate([texts[i] for i in va], [y_raw[i] for i in va]).to_dict()
        return self

    def _class_weights(self, y_train: np.ndarray) -> list[float]:
        C = len(self.classes_)
        if self.class_weight is None:
            return [1.0] * C
        if self.class_weight in ("balanced", "sqrt"):
            counts = np.bincount(y_train, minlength=C).astype(float)
            w = len(y_train) / (C * np.maximum(counts, 1.0))
            return (np.sqrt(w) if self.class_weight == "sqrt" else w).tolist()
        unknown = set(map(str, self.class_weight)) - set(self.classes_)
        if unknown:
            raise ConfigError(f"class_weight names labels {sorted(unknown)} that are not in the data; the labels are {self.classes_}")
        cw = {str(k): float(v) for k, v in self.class_weight.items()}
        return [cw.get(c, 1.0) for c in self.classes_]

    def _encode(self, texts: list[str]) -> Batch:
        return pad_batch(self.tokenizer_.encode_batch(texts), max_length=self.max_length)

    def _train(self, batch: Batch, y: torch.Tensor, tr: np.ndarray, va: np.ndarray, progress, ckpt, resume):
        net, B = self.net_, self.batch_size
        ids, lengths = batch.ids, batch.lengths
        tr_t = torch.from_numpy(tr)
        weight = torch.tensor(self.weights_, dtype=torch.float32)
        n = len(tr)
        steps, per_epoch = _common.epoch_schedule(self.steps, self.epochs, n, B)

        def batch_loss(gen: torch.Generator) -> torch.Tensor:
            idx = tr_t[torch.randint(0, n, (B,), generator=gen)]
            L = lengths[idx]
            logits = net(ids[idx, : int(L.max())], L)  # (B, C)
            return F.cross_entropy(logits, y[idx], weight=weight)

        validate = None
        if len(va):
            order = va[np.argsort(lengths[va].numpy(), kind="stable")]  # similar lengths together: less padding

            def validate() -> float:
                total = 0.0
                for s in range(0, len(order), PREDICT_BATCH):
                    idx = torch.from_numpy(order[s : s + PREDICT_BATCH])
                    L = lengths[idx]
                    logits = net(ids[idx, : int(L.max())], L)
                    total += float(F.cross_entropy(logits, y[idx], weight=weight, reduction="sum"))
                return total / float(weight[y[torch.from_numpy(va)]].sum())

        return _common.fit_network(self, net, batch_loss, validate, steps=steps, batch_size=B, steps_per_epoch=per_epoch,
                                   checkpoint_dir=ckpt, resume=resume, progress=progress, weight_decay=self.weight_decay,
                                   fingerprint=_common.data_fingerprint(self.tokenizer_.to_dict(), self.classes_,
                                                                        net.cfg.to_dict(), n))  # fmt: skip

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ConfigError("this TextClassifier is not fitted yet; call fit(texts, labels) first (or TextClassifier.load(dir))")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        texts = check_texts(texts, "texts")
        batch = self._encode(texts)
        order = np.argsort(batch.lengths.numpy(), kind="stable")
        out = np.empty((len(texts), len(self.classes_)), dtype=np.float32)
        self.net_.eval()
        with torch.no_grad():
            for s in range(0, len(order), PREDICT_BATCH):
                idx = torch.from_numpy(order[s : s + PREDICT_BATCH])
                L = batch.lengths[idx]
                logits = self.net_(batch.ids[idx, : int(L.max())], L)
                out[idx.numpy()] = torch.softmax(logits, dim=-1).numpy()
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable label of each text (an array of the label strings)."""
        p = self.predict_proba(texts)
        return np.asarray(self.classes_, dtype=object)[p.argmax(axis=1)]

    def predict_frame(self, texts: Sequence[str]) -> pd.DataFrame:
        """``prediction`` and one ``prob_<class>`` column per class, a row per text."""
        p = self.predict_proba(texts)
        df = pd.DataFrame({"prediction": np.asarray(self.classes_, dtype=object)[p.argmax(axis=1)]})
        for j, c in enumerate(self.classes_):
            df[f"prob_{c}"] = p[:, j]
        return df

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, texts: Sequence[str], labels: Sequence) -> Evaluation:
        """Accuracy, macro-F1, per-class F1 and the confusion matrix of the LSTM, the TF-IDF + logistic
        regression baseline (when fitted) and the majority class, on the same labelled texts."""
        self._check_fitted()
        texts = check_texts(texts, "texts")
        y_raw = check_labels(labels, len(texts))
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = sorted(set(y_raw) - set(index))
        if unknown:
            raise DataError(
                f"labels {unknown[:5]} were not seen at fit; the model knows {self.classes_} — check the --label column "
                "or refit on data that has them"
            )
        y = np.asarray([index[v] for v in y_raw])
        C = len(self.classes_)
        ev = Evaluation(classes=list(self.classes_), n=len(y))
        preds = {"lstm": self.predict_proba(texts).argmax(axis=1)}
        if getattr(self, "baseline_", None) is not None:
            preds["tfidf_lr"] = self.baseline_.predict_proba(texts).argmax(axis=1)
        preds["majority"] = np.full(len(y), int(np.argmax(self.class_counts_)))
        for name, p in preds.items():
            cm = confusion_matrix(y, p, C)
            ev.results[name] = {**scores(cm), "confusion": cm.tolist()}
        return ev

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write ``tokenizer.json``, ``weights.safetensors``, ``baseline.json`` (+ ``metrics.json``) and last
        ``config.json`` into ``path``, each atomically."""
        self._check_fitted()
        path = _common.save_dir(path)
        tensors = _common.prefixed(self.net_, "net.")
        base_meta = None
        if self.baseline_ is not None:
            base_meta, base_tensors = self.baseline_.to_state()
            tensors.update(base_tensors)
            atomic_write_json(path / "baseline.json", base_meta)
        atomic_write_json(path / "tokenizer.json", self.tokenizer_.to_dict())
        digest = atomic_save_tensors(path / "weights.safetensors", tensors)
        params = self.get_params()
        params["class_weight"] = self.class_weight if not isinstance(self.class_weight, dict) else {str(k): float(v) for k, v in self.class_weight.items()}
        config = {
            **_common.format_header(FORMAT, FORMAT_VERSION),
            "params": params, "classes": list(self.classes_), "class_weights": self.weights_,
            "class_counts": self.class_counts_,
            "net": self.net_.cfg.to_dict(), "baseline": self.baseline_ is not None,
            "weights_sha256": digest, "fit_seconds": getattr(self, "fit_seconds_", None),
            "baseline_seconds": getattr(self, "baseline_seconds_", None),
            "n_train": getattr(self, "n_train_", None), "n_val": getattr(self, "n_val_", None),
            "val_metrics": getattr(self, "val_metrics_", None),
        }  # fmt: skip
        return _common.finish_save(path, config, metrics)

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        """Rebuild a fitted TextClassifier from a directory written by :meth:`save` (no pickle involved)."""
        path = Path(path)
        cfg, tensors = read_model_dir(path, FORMAT, FORMAT_VERSION, "text classifier", "classify fit")
        with _common.reading_model_dir(path):
            self = cls(**cfg["params"])
            self.classes_ = list(cfg["classes"])
            self.weights_ = list(cfg["class_weights"])
            self.class_counts_ = list(cfg["class_counts"])
            self.tokenizer_ = tokenizer_from_dict(read_json(path / "tokenizer.json", "tokenizer"))
            self.net_ = _common.load_prefixed(ClassifierNet(ClassifierNetConfig(**cfg["net"])), tensors, "net.")
            self.baseline_ = None
            if cfg.get("baseline"):
                self.baseline_ = TfidfBaseline.from_state(read_json(path / "baseline.json", "baseline"), tensors)
            for k in ("fit_seconds", "baseline_seconds", "n_train", "n_val", "val_metrics"):
                setattr(self, f"{k}_", cfg.get(k))
        return self


_PARAMS = [
    "tokenizer", "vocab_size", "min_freq", "lowercase", "max_length", "embed_dim", "hidden_size", "num_layers",
    "bidirectional", "pooling", "dropout", "class_weight", "vectors", "vectors_encoding", "epochs", "steps",
    "batch_size", "lr", "weight_decay", "clip", "val_fraction", "patience", "baseline", "seed",
]  # fmt: skip


# ------------------------------------------------------------------------------------------ data checks
def _rows(positions: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i) + 1) for i in positions[:limit])
    return shown + (f", … ({len(positions)} in all)" if len(positions) > limit else "")


def check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    """``texts`` as a list of str; a :class:`DataError` naming the rows (1-based) of empty or missing texts."""
    if isinstance(texts, str):
        raise DataError(f"{what} must be a sequence of strings, got one string; wrap it in a list: [text]")
    values = list(texts)
    if not values:
        raise DataError(f"{what} is empty: there are no texts; pass at least one text")
    bad = np.flatnonzero([v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip() for v in values])
    if len(bad):
        raise DataError(
            f"{what} has {len(bad)} empty or missing text(s) at row(s) {_rows(bad)} (counting the first data row as 1); "
            "remove those rows or fill them in"
        )
    return [str(v) for v in values]


def check_labels(labels: Sequence, n: int) -> list[str]:
    values = list(labels)
    if len(values) != n:
        raise DataError(f"got {n} texts but {len(values)} labels; give one label per text")
    bad = np.flatnonzero([v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip() for v in values])
    if len(bad):
        raise DataError(f"{len(bad)} missing label(s) at row(s) {_rows(bad)} (counting the first data row as 1); remove those rows or label them")
    return [_label(v) for v in values]


def _label(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # a label column read as floats (1.0) names the class "1", as the user wrote it
    return str(v).strip()


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and validation positions; each class with ≥ 2 examples gives ``round(fraction · n_c)``
    (at least one) to validation."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        pos = np.flatnonzero(y == c)
        if len(pos) < 2:
            continue
        k = min(len(pos) - 1, max(1, round(fraction * len(pos))))
        val.append(rng.permutation(pos)[:k])
    va = np.sort(np.concatenate(val)) if val else np.arange(0)
    tr = np.setdiff1d(np.arange(len(y)), va)
    return tr, va
