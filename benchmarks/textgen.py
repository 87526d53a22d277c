"""Text-generation benchmark: ``TextGenerator`` (character LSTM) vs the Kneser–Ney character n-gram on the
Python standard library's sources (the demo corpus, :func:`lstmkit.tasks.generator.stdlib_corpus`).

Both models train on the same training files; the LSTM early-stops and the n-gram picks its order on the
same validation files; both are scored on the same held-out test files, in bits per character.
The LSTM gets a wall-clock budget: a short probe times one training step, and the number of steps is set
so that training (validations included) fits ``--budget`` seconds.

    python benchmarks/textgen.py [--budget 240] [--threads auto] [--hidden-size 256] [--json out.json]

Prints both test bpc, a few samples and the machine's load; ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

PROMPTS = ["def ", "class ", "import "]


def probe_step_seconds(gen, vocab_size: int, repeats: int = 4) -> float:
    """Seconds per training step (forward + backward + Adam) of ``gen``'s network shape on random ids."""
    from lstmkit.tasks.generator import LMNet, LMNetConfig

    net = LMNet(LMNetConfig(vocab_size, gen.embed_dim, gen.hidden_size, gen.num_layers, gen.dropout))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randint(4, vocab_size, (gen.batch_size, gen.seq_len))
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=gen.precision == "bf16"):
            logits, _ = net(x)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab_size), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> dict:
    from lstmkit.tasks.generator import TextGenerator, cpu_has_bf16, stdlib_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=250.0, help="seconds of LSTM training, validations included (default 250)")
    ap.add_argument("--threads", default="auto", help="torch threads; auto: 2 when the 1-minute load is under 0.5, else 1")
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=1)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--max-bytes", type=int, default=1_600_000, help="size of the demo corpus selection")
    ap.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"),
                    help="training forward passes in bfloat16 autocast; auto: where the CPU has AVX-512 BF16 / AMX")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    precision = args.precision if args.precision != "auto" else ("bf16" if cpu_has_bf16() else "fp32")
    load_before = os.getloadavg()
    threads = (2 if load_before[0] < 0.5 else 1) if args.threads == "auto" else int(args.threads)
    torch.set_num_threads(threads)
    t_all = time.perf_counter()
    corpus = stdlib_corpus(max_bytes=args.max_bytes)
    train_text, val_text, test_text = corpus.text("train"), corpus.text("validation"), corpus.text("test")

    gen = TextGenerator(hidden_size=args.hidden_size, num_layers=args.num_layers, embed_dim=args.embed_dim,
                        seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr, seed=args.seed, steps=1,
                        precision=precision, dropout=args.dropout)  # fmt: skip
    V = len(set(train_text)) + 4
    step_s = probe_step_seconds(gen, V)
    tokens_per_pass = len(train_text)
    steps_per_pass = max(1, tokens_per_pass // (args.batch_size * args.seq_len))
    # one validation per pass costs about a third of a training pass over the validation characters
    val_s = step_s / 3 * len(val_text) / (args.batch_size * args.seq_len)
    per_step = step_s + val_s / steps_per_pass
    gen.steps = max(10, int(args.budget / per_step))
    print(f"corpus: {len(corpus.train)}/{len(corpus.validation)}/{len(corpus.test)} files, "
          f"{len(train_text):,}/{len(val_text):,}/{len(test_text):,} characters (train/validation/test) from {corpus.root}")  # fmt: skip
    print(f"threads {threads}, {precision}, load {load_before[0]:.2f}; probe {step_s * 1000:.0f} ms/step -> {gen.steps} steps "
          f"({gen.steps / steps_per_pass:.1f} passes) for a {args.budget:.0f} s budget")  # fmt: skip

    gen.fit(train_text, validation=val_text, progress=True)
    ev = gen.evaluate(test_text)
    lstm, ngram = ev.results["lstm"], ev.results["ngram"]
    samples = {p: p + gen.sample(p, 160, temperature=0.7, seed=args.seed) for p in PROMPTS}
    wall = time.perf_counter() - t_all
    load_after = os.getloadavg()
    out = {
        "corpus": {"root": corpus.root, "files": [len(corpus.train), len(corpus.validation), len(corpus.test)],
                   "chars": [len(train_text), len(val_text), len(test_text)], "max_bytes": args.max_bytes},
        "model": {k: getattr(gen, k) for k in ("hidden_size", "num_layers", "embed_dim", "seq_len", "batch_size", "lr", "steps",
                                               "dropout", "precision", "seed")},
        "test": {"n_chars": ev.n_chars, "unknown_chars": ev.unknown_chars, "lstm_bpc": lstm["bpc"], "ngram_bpc": ngram["bpc"],
                 "ngram_order": ngram["order"], "lstm_perplexity": lstm["perplexity"], "ngram_perplexity": ngram["perplexity"]},
        "validation": gen.val_metrics_["results"],
        "ngram_order_scores_val_bpc": gen.ngram_.order_scores_,
        "lstm_fit_seconds": gen.fit_seconds_, "ngram_fit_seconds": gen.ngram_seconds_, "wall_seconds": wall,
        "history": gen.history_, "samples": samples,
        "machine": {"threads": threads, "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
                    "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()},
    }  # fmt: skip
    print(f"test bpc ({ev.n_chars:,} characters, {ev.unknown_chars} unknown): LSTM {lstm['bpc']:.3f}   "
          f"n-gram (order {ngram['order']}) {ngram['bpc']:.3f}")  # fmt: skip
    print(f"LSTM trained {gen.fit_seconds_:.0f} s ({len(gen.history_)} validations), n-gram {gen.ngram_seconds_:.1f} s; "
          f"wall {wall:.0f} s; load {load_before[0]:.2f} -> {load_after[0]:.2f}")  # fmt: skip
    for text in samples.values():
        print("-" * 60)
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
