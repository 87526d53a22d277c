"""Translation benchmark: ``Translator`` (attention LSTM) on both demos, beside two baselines, on held-out pairs.

For each demo (``dates``: Babel-formatted dates in 6 locales → ISO; ``numbers-pt``: digits → Portuguese words
by num2words), generate ``--n-train`` training pairs and ``--n-test`` test pairs from the disjoint test part
(no test date or number occurs in training), train, and score exact match, corpus BLEU and chrF (sacrebleu)
with beam search and with greedy decoding. Beside it, in the same run and on the same test pairs:

- nearest neighbour: the target of the training source most similar in character 1–3-grams (TF-IDF
  cosine) — what memorising the training pairs gives;
- copy-the-source: the source itself.

    python benchmarks/translation.py [--threads 1] [--demos dates numbers-pt] [--json results.json]

Targets (issue 5): dates exact match ≥ 99%, numbers ≥ 95%, each demo trained in ≤ 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

# Per demo: the training-set size and the Translator's settings (everything else at its defaults). The steps
# are the demos' own (translation_demo.DEMOS[name].steps), which `lstmkit translate fit demo:NAME` uses too.
SETTINGS = {
    "dates": {"n_train": 30_000, "params": {"steps": 800, "batch_size": 64, "hidden_size": 128, "lr": 3e-3}},
    "numbers-pt": {"n_train": 30_000, "params": {"steps": 1000, "batch_size": 64, "hidden_size": 128, "lr": 3e-3}},
}


def run_demo(name: str, n_train: int, n_test: int, params: dict, seed: int) -> dict:
    from lstmkit.data.translation_demo import make_pairs
    from lstmkit.tasks.translator import Translator

    t0 = time.perf_counter()
    train = make_pairs(name, n_train, split="train", seed=seed)
    test = make_pairs(name, n_test, split="test", seed=seed)
    data_s = time.perf_counter() - t0
    overlap = len({s for s, _ in test} & {s for s, _ in train})
    load_before = os.getloadavg()
    t1, c1 = time.perf_counter(), time.process_time()
    model = Translator(seed=seed, **params).fit([s for s, _ in train], [t for _, t in train])
    fit_s, fit_cpu = time.perf_counter() - t1, time.process_time() - c1
    src, ref = [s for s, _ in test], [t for _, t in test]
    t2 = time.perf_counter()
    beam = model.evaluate(src, ref)
    beam_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    greedy = model.evaluate(src, ref, beam_size=1)
    greedy_s = time.perf_counter() - t3
    errors = [(s, r, p) for s, r, p in zip(src, ref, beam.predictions) if p != r][:10]
    return {
        "demo": name, "n_train": n_train, "n_test": n_test, "test_sources_in_train": overlap,
        "params": params, "data_seconds": round(data_s, 2), "fit_seconds": round(fit_s, 2),
        "fit_cpu_seconds": round(fit_cpu, 2),
        "steps": params.get("steps"), "predict_seconds_beam": round(beam_s, 2), "predict_seconds_greedy": round(greedy_s, 2),
        "lstm_beam": beam.results["lstm"], "lstm_greedy": greedy.results["lstm"],
        "nearest_neighbour": beam.results.get("nearest_neighbour"), "copy_source": beam.results["copy_source"],
        "beam_size": model.beam_size, "loadavg_before_fit": load_before, "loadavg_after": os.getloadavg(),
        "example_errors": errors,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a 2-core machine shared with other work)")
    ap.add_argument("--demos", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--steps", type=int, help="override the optimiser steps of every demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
               "threads": torch.get_num_threads(), "platform": platform.platform()}  # fmt: skip
    results = []
    for name in args.demos:
        params = dict(SETTINGS[name]["params"])
        if args.steps:
            params["steps"] = args.steps
        r = run_demo(name, SETTINGS[name]["n_train"], args.n_test, params, args.seed)
        r["machine"] = machine
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "example_errors"}, indent=1), flush=True)
        b, g, nn, cp = r["lstm_beam"], r["lstm_greedy"], r["nearest_neighbour"] or {}, r["copy_source"]
        print(f"| {name} | {r['n_train']} / {r['n_test']} | {b['exact_match']:.4f} / {b['bleu']:.2f} / {b['chrf']:.2f} | "
              f"{g['exact_match']:.4f} | {nn.get('exact_match', float('nan')):.4f} / {nn.get('bleu', float('nan')):.2f} / "
              f"{nn.get('chrf', float('nan')):.2f} | {cp['exact_match']:.4f} / {cp['bleu']:.2f} / {cp['chrf']:.2f} | "
              f"{r['fit_seconds']:.0f} s | {machine['threads']} |", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
