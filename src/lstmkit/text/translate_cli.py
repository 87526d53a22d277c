"""``lstmkit translate fit | predict | evaluate | demo``: translation from the command line.

    lstmkit translate fit PAIRS --out MODEL_DIR [--epochs E | --steps N] [--hidden-size N] [--beam K] [--resume]
    lstmkit translate predict MODEL_DIR (--text "..." [--text "..."] | --data FILE) [--out FILE.tsv|.csv]
    lstmkit translate evaluate MODEL_DIR --data PAIRS [--out DIR]
    lstmkit translate demo NAME --out FILE.tsv [--n N] [--split train|test] [--seed S]

PAIRS is a UTF-8 TSV file with one ``source<TAB>target`` pair per line, or ``demo:NAME`` for generated
pairs (``demo:dates``, ``demo:numbers-pt``; ``fit`` takes the demo's train part, ``evaluate`` its
disjoint test part). ``predict --data`` reads one source per line, or a PAIRS file (read as ``fit`` reads
it; its targets are kept), and writes the inputs plus a ``prediction`` column. ``evaluate`` prints exact
match, BLEU and chrF of the LSTM beside the nearest-neighbour and copy-the-source baselines.

Mistakes end as one line ``error: …`` on stderr with exit code 2, and nothing half-written.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from lstmkit.errors import ConfigError, DataError
from lstmkit.text import _cli_args as args_
from lstmkit.text import _cli_common as common

log = logging.getLogger("lstmkit.cli")

_positive_int = common.positive_int  # argument type

DEMO_PREFIX = "demo:"
OUT_SUFFIXES = (".tsv", ".csv")
DEFAULT_DEMO_N = {"fit": 20_000, "evaluate": 2_000, "demo": 1_000}


def register(subparsers) -> None:
    """Add ``translate fit|predict|evaluate|demo`` to the ``lstmkit`` command's sub-parsers."""
    tr = subparsers.add_parser("translate", help="sequence-to-sequence translation: an attention LSTM beside nearest-neighbour and copy baselines")
    tsub = tr.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = tsub.add_parser("fit", help="train on PAIRS and save a model directory")
    p.add_argument("pairs", metavar="PAIRS", help="TSV file of source<TAB>target lines, or demo:dates / demo:numbers-pt")
    p.add_argument("--encoding", default="utf-8", help="text encoding of PAIRS (default: utf-8)")
    p.add_argument("--n", type=_positive_int, metavar="N", help=f"pairs generated for demo:NAME (default: {DEFAULT_DEMO_N['fit']})")
    g = p.add_argument_group("model (unset flags keep the Translator's defaults)")
    g.add_argument("--tokenizer", choices=("char", "word", "bpe"), help="token unit of the sources (default: char)")
    g.add_argument("--target-tokenizer", choices=("char", "word", "bpe"), help="token unit of the targets (default: as --tokenizer)")
    g.add_argument("--vocab-size", type=args_.vocab_size, metavar="N", help="largest vocabulary per side (bpe: its trained size)")
    g.add_argument("--hidden-size", "--hidden", dest="hidden_size", type=_positive_int, metavar="N", help="LSTM units (default: 128)")
    g.add_argument("--embed-dim", "--embed", dest="embed_dim", type=_positive_int, metavar="N", help="embedding size (default: 64)")
    g.add_argument("--num-layers", "--layers", dest="num_layers", type=_positive_int, metavar="N", help="encoder and decoder layers (default: 1)")
    g.add_argument("--dropout", type=args_.unit_fraction, metavar="P", help="dropout on embeddings and outputs (default: 0.1)")
    g.add_argument("--label-smoothing", type=args_.unit_fraction, metavar="E", help="label smoothing of the loss (default: 0)")
    g.add_argument("--beam", dest="beam_size", type=_positive_int, metavar="K", help="default beam width for predict/evaluate (default: 5; 1 = greedy)")
    args_.add_schedule(g, epochs_help="passes over the training pairs (default: 20; demo:NAME: the demo's tested number of steps)",
                       val_help="share held out for early stopping and scores (default: 0.05)",
                       seed_help="random seed (also of demo data; same seed + machine + CPU ⇒ same numbers)")
    g.add_argument("--batch-size", "--batch", dest="batch_size", type=_positive_int, metavar="N", help="pairs per optimiser step (default: 64)")
    g.add_argument("--no-baseline", action="store_true", help="do not keep training pairs for the nearest-neighbour baseline")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    args_.add_quiet(p)
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoints after an interruption")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.set_defaults(func=cmd_fit)

    p = tsub.add_parser("predict", help="translate texts with a saved model")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit translate fit`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="FILE", help="one source per line, or a PAIRS file (source<TAB>target lines: its targets are kept)")
    src.add_argument("--text", action="append", metavar='"..."', help="a text to translate (repeat for several)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of --data (default: utf-8)")
    p.add_argument("--beam", dest="beam_size", type=_positive_int, metavar="K", help="beam width (default: the model's; 1 = greedy)")
    p.add_argument("--max-len", type=_positive_int, metavar="N", help="most tokens per translation (default: 1.5 × the longest training target + 5)")
    p.add_argument("--out", metavar="FILE", help="write the inputs + prediction here (.tsv or .csv); default: print TSV")
    args_.add_quiet(p)
    p.set_defaults(func=cmd_predict)

    p = tsub.add_parser("evaluate", help="exact match, BLEU and chrF of the LSTM and the baselines on held-out pairs")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit translate fit`")
    p.add_argument("--data", required=True, metavar="PAIRS", help="TSV of source<TAB>target lines held out from fit, or demo:NAME (its test part)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of --data (default: utf-8)")
    p.add_argument("--n", type=_positive_int, metavar="N", help=f"test pairs generated for demo:NAME (default: {DEFAULT_DEMO_N['evaluate']})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the demo's test pairs (default: 0)")
    p.add_argument("--beam", dest="beam_size", type=_positive_int, metavar="K", help="beam width (default: the model's; 1 = greedy)")
    p.add_argument("--out", metavar="DIR", help="write metrics.json/csv and predictions.tsv here (default: MODEL_DIR/evaluation)")
    args_.add_quiet(p)
    p.set_defaults(func=cmd_evaluate)

    p = tsub.add_parser("demo", help="write a demo's pairs as TSV (dates, numbers-pt)")
    p.add_argument("name", metavar="NAME", help="dates or numbers-pt")
    p.add_argument("--out", required=True, metavar="FILE.tsv", help="TSV file to write (source<TAB>target lines)")
    p.add_argument("--n", type=_positive_int, default=DEFAULT_DEMO_N["demo"], metavar="N", help=f"pairs (default: {DEFAULT_DEMO_N['demo']})")
    p.add_argument("--split", choices=("train", "test"), default="train", help="the train part or the disjoint test part (default: train)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    p.set_defaults(func=cmd_demo)


# ------------------------------------------------------------------------------------------ data
def _demo(spec: str, split: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    from lstmkit.data.translation_demo import make_pairs

    pairs = make_pairs(spec[len(DEMO_PREFIX):], n, split=split, seed=seed)
    return [s for s, _ in pairs], [t for _, t in pairs]


def _pairs(spec: str, encoding: str, split: str, n: int | None, seed: int, flag: str) -> tuple[list[str], list[str]]:
    from lstmkit.tasks.translator import read_pairs

    if spec.startswith(DEMO_PREFIX):
        return _demo(spec, split, n or DEFAULT_DEMO_N["fit" if split == "train" else "evaluate"], seed)
    if n is not None:
        log.warning("--n applies to demo:NAME only; all pairs of %s are used", spec)
    return read_pairs(spec, encoding, flag)


def read_sources(path: str | Path, encoding: str = "utf-8") -> tuple[list[str], list[str] | None]:
    """Sources of a file with one per line (targets ``None``), or sources and targets of a PAIRS file.

    A file whose first non-blank line has a tab is a PAIRS file, read by :func:`read_pairs` as ``fit`` and
    ``evaluate`` read it (the ``source<TAB>target`` header skipped; a line without exactly one tab is an
    error naming the file and the line). Blank lines are skipped."""
    from lstmkit.tasks._common import check_encoding, check_input_file
    from lstmkit.tasks.translator import check_texts, read_pairs

    p = check_input_file(path, "--data", "a text file with one source per line")
    check_encoding(encoding)
    sources, lines = [], []
    data = p.read_bytes()
    if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        data = data[3:]
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode(encoding).rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataError(
                f"--data file {str(p)!r} line {lineno} is not valid {encoding} text (byte 0x{raw[e.start]:02x} at column "
                f"{e.start + 1}); convert it to UTF-8 or pass its encoding (--encoding latin-1)"
            ) from None
        if not line.strip():
            continue
        if "\t" in line:
            return read_pairs(p, encoding, "--data")
        sources.append(line)
        lines.append(lineno)
    if not sources:
        raise DataError(f"--data file {str(p)!r} holds no texts; expected one source per line")
    check_texts(sources, f"--data file {str(p)!r}", lines)
    return sources, None


def _check_out_suffix(path: str) -> None:
    if not str(path).lower().endswith(OUT_SUFFIXES):
        raise ConfigError(f"--out {path!r} must end in .tsv or .csv (the suffix picks the format)")


def _write_table(df, path: str | Path) -> Path:
    """``df`` as TSV or CSV (by suffix), atomically (temp file in the same folder, renamed)."""
    from lstmkit.training.checkpoint import atomic_write_bytes

    path = Path(path)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    atomic_write_bytes(path, df.to_csv(index=False, sep=sep).encode())
    return path


def _params(args) -> dict:
    kw = {}
    for flag in ("tokenizer", "target_tokenizer", "vocab_size", "hidden_size", "embed_dim", "num_layers", "dropout",
                 "label_smoothing", "beam_size", "epochs", "steps", "batch_size", "lr", "val_fraction", "patience", "seed"):  # fmt: skip
        v = getattr(args, flag)
        if v is not None:
            kw[flag] = v
    if args.no_baseline:
        kw["baseline"] = False
    return kw


def _format(results: dict) -> str:
    rows = [("model", "exact match", "BLEU", "chrF")]
    for m, r in results.items():
        rows.append((m, f"{r['exact_match']:.4f}", f"{r['bleu']:.2f}", f"{r['chrf']:.2f}"))
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    return "\n".join("  " + "  ".join(r[0].ljust(w[0]) if k == 0 else r[k].rjust(w[k]) for k in range(4)) for r in rows)


# ------------------------------------------------------------------------------------------ commands
def cmd_fit(args) -> int:
    from lstmkit.cli import _set_threads, _Staging
    from lstmkit.tasks.translator import Translator

    out = common.check_model_out(args.out, args)
    progress = common.fit_progress(args) and not args_.quiet(args)
    params = _params(args)
    if args.pairs.startswith(DEMO_PREFIX) and args.steps is None and args.epochs is None:
        from lstmkit.data.translation_demo import get_demo

        params["steps"] = get_demo(args.pairs[len(DEMO_PREFIX):]).steps  # the benchmark's setting, not 20 epochs
    model = Translator(**params)
    with args_.flag_names():
        model._check_params()
    sources, targets = _pairs(args.pairs, args.encoding, "train", args.n, model.seed, "PAIRS")
    ckpt = common.checkpoints(out, args.resume)
    _set_threads()
    model.fit(sources, targets, progress=progress, checkpoint_dir=ckpt, resume=args.resume)
    val = model.val_metrics_
    summary = {
        "data": str(args.pairs), "n_pairs": len(sources), "n_train": model.n_train_, "n_val": model.n_val_,
        "source_vocab_size": model.source_tokenizer_.vocab_size, "target_vocab_size": model.target_tokenizer_.vocab_size,
        "fit_seconds": round(model.fit_seconds_, 3), "validation": val, "history": model.history_,
    }  # fmt: skip
    with _Staging(out) as stage:
        model.save(stage.dir, metrics=summary)
        plots = common.training_plot(model.history_, stage.dir)
        stage.publish(last="config.json")
    print(f"model:   {out}/ (config.json, source/target_tokenizer.json, weights.safetensors) — {len(sources)} pairs, "
          f"vocabularies {model.source_tokenizer_.vocab_size} → {model.target_tokenizer_.vocab_size}, "
          f"fitted in {model.fit_seconds_:.1f} s")  # fmt: skip
    if val is not None:
        print(f"validation ({min(model.n_val_, val['n'])} pairs held out from training, greedy decoding):")
        print(_format(val["results"]))
    for name in plots:
        print(f"plot:    {out / name}")
    print(f"next:    lstmkit translate predict {out} --text \"...\"   |   lstmkit translate evaluate {out} --data TEST.tsv")
    return 0


def cmd_predict(args) -> int:
    import pandas as pd

    from lstmkit.cli import _set_threads
    from lstmkit.tasks.translator import Translator, check_texts

    quiet = args_.quiet(args)
    if args.out is not None:
        _check_out_suffix(args.out)
    model = Translator.load(Path(args.model_dir))
    if args.data is not None:
        sources, targets = read_sources(args.data, args.encoding)
    else:
        sources, targets = check_texts(args.text, "--text"), None
    _set_threads()
    pred = model.predict(sources, beam_size=args.beam_size, max_len=args.max_len, progress=len(sources) > 200 and not quiet)
    df = pd.DataFrame({"source": sources})
    if targets is not None:
        df["target"] = targets
    df["prediction"] = pred
    if args.out is None:
        df.to_csv(sys.stdout, index=False, sep="\t")
        return 0
    path = _write_table(df, args.out)
    print(f"predictions: {path} — {len(df)} texts")
    return 0


def cmd_evaluate(args) -> int:
    import pandas as pd

    from lstmkit.cli import _set_threads, _Staging
    from lstmkit.tasks.translator import Translator

    quiet = args_.quiet(args)
    model_dir = Path(args.model_dir)
    out = common.evaluation_out(args.out, model_dir)
    model = Translator.load(model_dir)
    sources, refs = _pairs(args.data, args.encoding, "test", args.n, args.seed, "--data")
    _set_threads()
    ev = model.evaluate(sources, refs, beam_size=args.beam_size, progress=len(sources) > 200 and not quiet)
    beam = model.beam_size if args.beam_size is None else args.beam_size
    print(f"{args.data}: {ev.n} pairs — LSTM (beam {beam}) beside the nearest training pair (character n-grams) and "
          "copy-the-source")  # fmt: skip
    print(_format(ev.results))
    with _Staging(out) as stage:
        _write_table(ev.table(), stage.dir / "metrics.csv")
        (stage.dir / "metrics.json").write_text(json.dumps({"data": str(args.data), "beam_size": beam, **ev.to_dict()}, indent=2) + "\n")
        _write_table(pd.DataFrame({"source": sources, "target": refs, "prediction": ev.predictions}), stage.dir / "predictions.tsv")
        common.publish_listed(stage, out)
    return 0


def cmd_demo(args) -> int:
    from lstmkit.data.translation_demo import get_demo
    from lstmkit.training.checkpoint import atomic_write_bytes

    get_demo(args.name)
    if not str(args.out).lower().endswith(".tsv"):
        raise ConfigError(f"--out {args.out!r} must end in .tsv (source<TAB>target lines, the format `translate fit` reads)")
    sources, targets = _demo(DEMO_PREFIX + args.name, args.split, args.n, args.seed)
    text = "".join(f"{s}\t{t}\n" for s, t in zip(sources, targets))
    atomic_write_bytes(args.out, text.encode())
    print(f"wrote:   {args.out} — {len(sources)} {args.split} pairs of {args.name} (seed {args.seed})")
    return 0


# ------------------------------------------------------------------------------------------ standalone
def main(argv: list[str] | None = None) -> int:
    """Run ``translate …`` through ``lstmkit.cli.main`` (same error handling); returns the exit code."""
    return common.run(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
