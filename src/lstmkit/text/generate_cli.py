"""``lstmkit generate fit | sample | evaluate | inspect``: character language models from the command line.

    lstmkit generate fit (TEXTFILE | DIR | stdlib:python) --out MODEL_DIR [--steps N | --epochs E] [--hidden-size N]
                         [--num-layers N] [--seq-len T] [--batch-size B] [--tokenizer char|bpe] [--resume] [--quiet]
    lstmkit generate sample MODEL_DIR --prompt "..." [--temperature 0.8] [--top-k K] [--length N] [--seed S]
    lstmkit generate evaluate MODEL_DIR --data (FILE | DIR | stdlib:python) [--json FILE]
    lstmkit generate inspect MODEL_DIR --text "..." --out view.html [--units 3,17]

``fit`` reads a UTF-8 text file or every file of a folder (sorted; ``--glob`` narrows it), holds out the
end for validation, trains the LSTM with stateful truncated BPTT and the Kneser–Ney character n-gram on
the same characters, prints both validation bits per character side by side and saves both in the model
directory. ``stdlib:python`` is the demo corpus: the running Python's standard-library sources, split by
file into training, validation and test (``fit`` then also prints the test scores). ``sample`` continues a
prompt; ``evaluate`` scores the LSTM and the n-gram on a text; ``inspect`` writes Karpathy et al.'s
per-character cell-activation view (HTML, or PNG by the suffix).

Mistakes end as one line ``error: …`` on stderr with exit code 2, and nothing half-written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lstmkit.errors import ConfigError, DataError
from lstmkit.text import _cli_args as args_
from lstmkit.text import _cli_common as common

log = logging.getLogger("lstmkit.cli")

_positive_int, _number = common.positive_int, common.finite_number  # argument types

# The demo's defaults (flags given on the command line win): one layer, short chunks, small batches —
# the fastest to a low bits per character on a CPU (benchmarks/textgen.py); 8,000 steps: ~3 min on a quiet core.
DEMO_PARAMS = {"num_layers": 1, "hidden_size": 256, "seq_len": 64, "batch_size": 32, "lr": 4e-3, "dropout": 0.1, "steps": 8000,
               "precision": "auto"}
DEMO_FLAGS = {"num-layers": 1, "hidden-size": 256, "seq-len": 64, "batch-size": 32, "lr": 0.004, "dropout": 0.1, "steps": 8000, "precision": "auto"}


def _temperature(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number (e.g. 0.8; lower = more conservative), got {text!r}")
    return v


def _orders(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            if lo > hi:
                raise argparse.ArgumentTypeError(f"expected a range low-high such as 3-8, got {text!r} (high below low)")
            orders = tuple(range(lo, hi + 1))
        else:
            orders = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected orders like 3-7 or 3,5,7, got {text!r}") from None
    if not orders or not all(1 <= o <= 10 for o in orders):
        raise argparse.ArgumentTypeError(f"expected orders between 1 and 10 such as 3-8 or 3,5,7, got {text!r}")
    return orders


def _units(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected unit numbers like 3,17,40, got {text!r}") from None


def register(subparsers) -> None:
    """Add ``generate fit|sample|evaluate|inspect`` to the ``lstmkit`` command's sub-parsers."""
    from lstmkit.tasks.generator import DEMO

    gp = subparsers.add_parser("generate", help="text generation: a character LSTM beside a Kneser–Ney n-gram")
    gsub = gp.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = gsub.add_parser("fit", help="train on a text file or folder and save a model directory")
    p.add_argument("data", metavar="DATA", help=f"UTF-8 text file, a folder of them, or {DEMO} (the demo corpus; its defaults: "
                   + " ".join(f"--{k} {v}" for k, v in DEMO_FLAGS.items()) + ")")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--glob", default="**/*", metavar="PATTERN", help="files of a DATA folder to read (default: all, recursively; e.g. '*.txt')")
    g = p.add_argument_group("model (unset flags keep the TextGenerator's defaults)")
    g.add_argument("--tokenizer", choices=("char", "bpe"), help="token unit (default: char)")
    g.add_argument("--vocab-size", type=args_.vocab_size, metavar="N", help="bpe: vocabulary size (default 2000; at least 260)")
    g.add_argument("--hidden-size", "--hidden", dest="hidden", type=_positive_int, metavar="N", help="LSTM units per layer (default: 256)")
    g.add_argument("--num-layers", "--layers", dest="layers", type=_positive_int, metavar="N", help="stacked LSTM layers (default: 2)")
    g.add_argument("--embed-dim", "--embed", dest="embed", type=_positive_int, metavar="N", help="embedding size (default: 64)")
    g.add_argument("--dropout", type=args_.unit_fraction, metavar="P", help="dropout between layers and before the output (default: 0)")
    g.add_argument("--seq-len", type=_positive_int, metavar="T", help="truncated-BPTT length (default: 64)")
    g.add_argument("--batch-size", "--batch", dest="batch", type=_positive_int, metavar="B", help="parallel text streams (default: 32)")
    args_.add_schedule(g, epochs_help="passes over the training text (default: 10)",
                       val_help="end of the text held out for validation (default: 0.1)")
    g.add_argument("--orders", type=_orders, metavar="3-8", help="n-gram orders to try on validation (default: 3-8, as far as 64-bit keys allow)")
    g.add_argument("--precision", choices=("fp32", "bf16", "auto"),
                   help="bf16: training passes in bfloat16 autocast (faster on CPUs with AVX-512 BF16/AMX); auto: bf16 where supported (default: fp32)")
    g.add_argument("--no-baseline", action="store_true", help="skip the n-gram")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoints after an interruption")
    args_.add_quiet(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit)

    p = gsub.add_parser("sample", help="continue a prompt with a saved model")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit generate fit`")
    p.add_argument("--prompt", default="", help='text to continue (default: none, start from scratch)')
    p.add_argument("--length", type=int, default=300, metavar="N", help="tokens to generate (characters for char models; default 300)")
    p.add_argument("--temperature", type=_temperature, default=0.8, metavar="T", help="> 0; lower is more conservative (default 0.8)")
    p.add_argument("--top-k", type=_positive_int, metavar="K", help="sample among the K most probable tokens only")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0; same seed ⇒ same text)")
    p.add_argument("--model", choices=("lstm", "ngram"), default="lstm", help="which model samples (default: lstm)")
    p.set_defaults(func=cmd_sample)

    p = gsub.add_parser("evaluate", help="bits per character and perplexity of the LSTM and the n-gram on a text")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit generate fit`")
    p.add_argument("--data", required=True, metavar="DATA", help=f"UTF-8 text file, folder, or {DEMO} (its test files)")
    p.add_argument("--glob", default="**/*", metavar="PATTERN", help="files of a --data folder to read (default: all)")
    p.add_argument("--json", metavar="FILE", help="also write the scores to this JSON file")
    args_.add_quiet(p)
    p.set_defaults(func=cmd_evaluate)

    p = gsub.add_parser("inspect", help="per-character cell activations (Karpathy et al. 2015) as HTML or PNG")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit generate fit`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar='"..."', help="text to read through the LSTM")
    src.add_argument("--data", metavar="FILE", help="UTF-8 text file to read (its first --max-chars characters)")
    p.add_argument("--max-chars", type=_positive_int, default=2000, metavar="N", help="characters shown (default 2000)")
    p.add_argument("--units", type=_units, metavar="3,17", help="cell units to show (default: the --top most varying)")
    p.add_argument("--top", type=_positive_int, default=8, metavar="N", help="how many units when --units is not given (default 8)")
    p.add_argument("--layer", type=int, default=-1, metavar="K", help="LSTM layer (default -1, the last)")
    p.add_argument("--out", required=True, metavar="FILE", help="view.html or view.png")
    p.set_defaults(func=cmd_inspect)


# ------------------------------------------------------------------------------------------ helpers
def _source(data: str, flag: str):
    """A path (checked) or the demo corpus (``None``)."""
    from lstmkit.tasks.generator import DEMO

    if data == DEMO:
        return None
    p = Path(data)
    if not p.exists():
        raise DataError(f"{flag} {data!r} does not exist; pass a UTF-8 text file, a folder of them, or {DEMO}")
    return p


def _params(args) -> dict:
    names = {"tokenizer": "tokenizer", "vocab_size": "vocab_size", "hidden": "hidden_size", "layers": "num_layers",
             "embed": "embed_dim", "dropout": "dropout", "seq_len": "seq_len", "batch": "batch_size", "epochs": "epochs",
             "steps": "steps", "lr": "lr", "val_fraction": "val_fraction", "patience": "patience", "orders": "ngram_orders",
             "precision": "precision", "seed": "seed"}  # fmt: skip
    kw = {param: getattr(args, flag) for flag, param in names.items() if getattr(args, flag) is not None}
    if args.no_baseline:
        kw["baseline"] = False
    return kw


def _table(ev: dict) -> str:
    rows = [("model", "bits/char", "perplexity", "per")]
    for name, r in ev["results"].items():
        label = f"n-gram (order {r['order']})" if name == "ngram" else "LSTM"
        rows.append((label, f"{r['bpc']:.4f}", f"{r['perplexity']:.3f}", r["per"]))
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    return "\n".join(f"  {r[0].ljust(w[0])}  {r[1].rjust(w[1])}  {r[2].rjust(w[2])}  {r[3]}" for r in rows)


def _describe(ev: dict) -> str:
    unk = f", {ev['unknown_chars']} unseen at fit (scored as <unk> by both)" if ev["unknown_chars"] else ""
    return f"{ev['n_chars']:,} characters{unk}"


# ------------------------------------------------------------------------------------------ commands
def cmd_fit(args) -> int:
    from lstmkit.cli import _set_threads, _Staging
    from lstmkit.tasks.generator import (
        BPE_MIN_VOCAB,
        DEMO,
        TextGenerator,
        stdlib_corpus,
    )

    progress = common.fit_progress(args) and not args_.quiet(args)
    out = common.check_model_out(args.out, args)
    src = _source(args.data, "DATA")
    params = _params(args)
    if src is None:  # the demo: 170 s of training on a quiet core (benchmarks/textgen.py)
        params = {**DEMO_PARAMS, **({"steps": None} if "epochs" in params else {}), **params}
    model = TextGenerator(**params)
    with args_.flag_names({"ngram_orders": "--orders"}):
        model._check_params()
    if model.tokenizer == "bpe" and model.vocab_size is not None and model.vocab_size < BPE_MIN_VOCAB:
        log.warning("--vocab-size %d is below the %d ids a byte-level BPE starts from (256 bytes + 4 special); the "
                    "vocabulary will have at least %d", model.vocab_size, BPE_MIN_VOCAB, BPE_MIN_VOCAB)  # fmt: skip
    corpus = None
    if src is None:
        corpus = stdlib_corpus()
        train_data, val_data = [Path(p) for p in corpus.train], [Path(p) for p in corpus.validation]
        log.info("demo corpus %s: %d training, %d validation, %d test files from %s", DEMO, len(corpus.train),
                 len(corpus.validation), len(corpus.test), corpus.root)  # fmt: skip
    else:
        train_data, val_data = src, None
    ckpt = common.checkpoints(out, args.resume)
    _set_threads()
    model.fit(train_data, validation=val_data, glob=args.glob, progress=progress, checkpoint_dir=ckpt, resume=args.resume)
    test = model.evaluate(corpus.text("test")).to_dict() if corpus is not None else None
    summary = {
        "data": args.data, "glob": args.glob, "n_train_chars": model.n_train_chars_, "n_val_chars": model.n_val_chars_,
        "vocab_size": model.tokenizer_.vocab_size, "fit_seconds": round(model.fit_seconds_, 3),
        "ngram_seconds": None if model.ngram_seconds_ is None else round(model.ngram_seconds_, 3),
        "validation": model.val_metrics_, "test": test, "history": model.history_,
    }  # fmt: skip
    if corpus is not None:
        summary["demo_files"] = {"root": corpus.root, "train": corpus.train, "validation": corpus.validation, "test": corpus.test}
    with _Staging(out) as stage:
        model.save(stage.dir, metrics=summary)
        stage.publish(last="config.json")
    print(f"model:      {out}/ (config.json, tokenizer.json, weights.safetensors) — {model.n_train_chars_:,} training "
          f"characters, vocabulary {model.tokenizer_.vocab_size}, fitted in {model.fit_seconds_:.1f} s")  # fmt: skip
    if model.val_metrics_ is not None:
        where = "validation files" if corpus is not None else "the end of the text, held out"
        print(f"validation: {_describe(model.val_metrics_)} ({where})")
        print(_table(model.val_metrics_))
    if test is not None:
        print(f"test:       {_describe(test)} (the demo's test files)")
        print(_table(test))
    print(f'next:       lstmkit generate sample {out} --prompt "..."   |   lstmkit generate evaluate {out} --data FILE')
    return 0


def cmd_sample(args) -> int:
    from lstmkit.cli import _set_threads
    from lstmkit.tasks.generator import TextGenerator

    if args.length < 0:
        raise ConfigError(f"--length must be a non-negative integer, got {args.length}")
    model = TextGenerator.load(args.model_dir)
    _set_threads()
    text = model.sample(args.prompt, args.length, temperature=args.temperature, top_k=args.top_k, seed=args.seed, model=args.model)
    sys.stdout.write(args.prompt + text + ("" if (args.prompt + text).endswith("\n") else "\n"))
    return 0


def cmd_evaluate(args) -> int:
    from lstmkit.cli import _set_threads
    from lstmkit.tasks.generator import TextGenerator, read_corpus, stdlib_corpus
    from lstmkit.training.checkpoint import atomic_write_json

    args_.quiet(args)
    if args.json is not None and Path(args.json).is_dir():
        raise ConfigError(f"--json {args.json!r} is a folder; pass a file name such as scores.json")
    model = TextGenerator.load(args.model_dir)
    src = _source(args.data, "--data")
    text = stdlib_corpus().text("test") if src is None else read_corpus(src, args.glob)
    _set_threads()
    ev = model.evaluate(text).to_dict()
    print(f"{args.data}: {_describe(ev)} — the LSTM beside the n-gram fitted on the model's training text")
    print(_table(ev))
    if args.json is not None:
        atomic_write_json(args.json, {"data": args.data, **ev})
        print(f"wrote:      {args.json}")
    return 0


def cmd_inspect(args) -> int:
    from lstmkit.diagnostics.gates import (
        plot_cell_activations,
        render_cell_activations_html,
    )
    from lstmkit.tasks.generator import TextGenerator, read_text_file

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".html", ".htm", ".png"):
        raise ConfigError(f"--out {args.out!r} must end in .html or .png (the suffix picks the format)")
    model = TextGenerator.load(args.model_dir)
    text = args.text if args.text is not None else read_text_file(args.data)
    text = text[: args.max_chars]
    H, L = model.net_.cfg.hidden_size, model.net_.cfg.num_layers
    if not -L <= args.layer < L:
        raise ConfigError(f"--layer {args.layer} is out of range: the model has {L} layer(s) (0…{L - 1}, or -1 for the last)")
    bad = [u for u in (args.units or []) if not 0 <= u < H]
    if bad:
        raise ConfigError(f"--units {bad} are out of range: the model has {H} units per layer (0…{H - 1})")
    view = model.cell_view(text, args.units, top=args.top, layer=args.layer)
    if suffix == ".png":
        plot_cell_activations(view, args.out)
    else:
        render_cell_activations_html(view, args.out)
    print(f"wrote:      {args.out} — units {sorted(set(view['unit'].tolist()))} of layer {args.layer % L}, {len(text)} characters")
    return 0


# ------------------------------------------------------------------------------------------ standalone
def main(argv: list[str] | None = None) -> int:
    """Run ``generate …`` through ``lstmkit.cli.main`` (same error handling); returns the exit code."""
    return common.run(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
