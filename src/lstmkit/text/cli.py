"""``lstmkit classify fit | predict | evaluate``: text classification from the command line.

    lstmkit classify fit DATA --text COL --label COL --out MODEL_DIR [--encoding latin-1]
    lstmkit classify predict MODEL_DIR (--data FILE | --text "..." [--text "..."]) [--out FILE]
    lstmkit classify evaluate MODEL_DIR --data FILE [--out DIR]

DATA is a CSV / TSV / Parquet table, or a .txt file with one text per line (predict only). ``fit`` saves
the model directory (config.json, tokenizer.json, weights.safetensors, baseline.json, metrics.json,
training.png, confusion_matrix.png) and prints the validation scores of the LSTM beside TF-IDF + logistic
regression fitted on the same texts. ``predict`` writes the inputs plus ``prediction`` and one
``prob_<class>`` column per class. ``evaluate`` scores the LSTM and the baselines on labelled data and
draws the confusion matrices.

Mistakes end as one line ``error: …`` on stderr with exit code 2, and nothing half-written.
:func:`register` adds the commands to the ``lstmkit`` parser; :func:`main` runs them on their own.
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

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".gz")
OUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".gz")


def register(subparsers) -> None:
    """Add ``classify fit|predict|evaluate`` to the ``lstmkit`` command's sub-parsers."""
    cl = subparsers.add_parser("classify", help="text classification: a bidirectional LSTM beside TF-IDF + logistic regression")
    csub = cl.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = csub.add_parser("fit", help="train on DATA and save a model directory")
    p.add_argument("data", metavar="DATA", help="CSV / TSV / Parquet file with a text and a label column")
    p.add_argument("--text", required=True, metavar="COL", help="column holding the texts")
    p.add_argument("--label", required=True, metavar="COL", help="column holding the classes")
    p.add_argument("--encoding", default="utf-8", help="text encoding of DATA (default: utf-8; e.g. latin-1, cp1252)")
    g = p.add_argument_group("model (unset flags keep the TextClassifier's defaults)")
    g.add_argument("--tokenizer", choices=("word", "char", "bpe"), help="token unit (default: word)")
    g.add_argument("--vocab-size", type=args_.vocab_size, metavar="N", help="largest vocabulary (bpe: its trained size)")
    g.add_argument("--max-length", type=_positive_int, metavar="N", help="tokens kept from the start of each text (default: 128)")
    g.add_argument("--pooling", choices=("max", "attention", "mean", "max_mean", "last"), help="how the LSTM's steps become one vector (default: max)")
    g.add_argument("--hidden-size", "--hidden", dest="hidden_size", type=_positive_int, metavar="N", help="LSTM units per direction (default: 128)")
    g.add_argument("--num-layers", "--layers", dest="num_layers", type=_positive_int, metavar="N", help="stacked LSTM layers (default: 1)")
    g.add_argument("--embed-dim", "--embed", dest="embed_dim", type=_positive_int, metavar="N",
                   help="embedding size (default: 128; the file's with --vectors)")
    g.add_argument("--class-weight", choices=("balanced", "sqrt", "none"),
                   help="weigh classes by inverse frequency, its square root, or not at all (default: none)")
    g.add_argument("--vectors", metavar="FILE", help="word2vec / GloVe text file to initialise the word embeddings")
    args_.add_schedule(g, epochs_help="passes over the training texts (default: 6)",
                       val_help="share held out for early stopping (default: 0.1)")
    g.add_argument("--batch-size", "--batch", dest="batch_size", type=_positive_int, metavar="N", help="texts per optimiser step (default: 64)")
    g.add_argument("--no-baseline", action="store_true", help="skip TF-IDF + logistic regression")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoints after an interruption")
    args_.add_quiet(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.set_defaults(func=cmd_fit)

    p = csub.add_parser("predict", help="classify texts with a saved model")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit classify fit`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="FILE", help="CSV / TSV / Parquet with the text column, or .txt with one text per line")
    src.add_argument("--text", action="append", metavar='"..."', help="a text to classify (repeat for several)")
    p.add_argument("--text-column", metavar="COL", help="text column of --data (default: the one used at fit)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of --data (default: utf-8)")
    p.add_argument("--out", metavar="FILE", help="write the predictions here (.csv/.tsv/.parquet); default: print CSV")
    args_.add_quiet(p)
    p.set_defaults(func=cmd_predict)

    p = csub.add_parser("evaluate", help="score the LSTM and the baselines on labelled data; confusion-matrix plot")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit classify fit`")
    p.add_argument("--data", required=True, metavar="FILE", help="labelled CSV / TSV / Parquet file (held out from fit)")
    p.add_argument("--text-column", metavar="COL", help="text column (default: the one used at fit)")
    p.add_argument("--label", metavar="COL", help="label column (default: the one used at fit)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of --data (default: utf-8)")
    p.add_argument("--out", metavar="DIR", help="write metrics.json/csv and confusion_matrix.png here (default: MODEL_DIR/evaluation)")
    args_.add_quiet(p)
    p.set_defaults(func=cmd_evaluate)


# ------------------------------------------------------------------------------------------ data
def read_texts(path: str | Path, encoding: str = "utf-8", flag: str = "DATA"):
    """A DataFrame of strings from a CSV / TSV / Parquet file, or a .txt file's lines (column ``text``)."""
    import pandas as pd

    from lstmkit.tasks._common import check_encoding, check_input_file

    p = check_input_file(path, flag, "a CSV, TSV, Parquet or .txt file")
    suffix = p.suffix.lower()
    if suffix not in TEXT_SUFFIXES + ("",):
        raise DataError(f"{flag} file {str(p)!r} has suffix {suffix!r}; pass a .csv, .tsv, .parquet or .txt file")
    check_encoding(encoding)
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p).astype(object)
        if suffix == ".txt":
            data = p.read_bytes()
            if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
                data = data[3:]
            lines = data.decode(encoding).splitlines()
            kept = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
            if len(kept) < len(lines):
                blank = [i for i, line in enumerate(lines, start=1) if not line.strip()]
                shown = ", ".join(map(str, blank[:5])) + (", …" if len(blank) > 5 else "")
                print(f"note: skipped {len(blank)} blank line(s) of {str(p)!r} (line(s) {shown})", file=sys.stderr)
            df = pd.DataFrame({"text": [line for _, line in kept]})
            df.attrs["lines"] = [i for i, _ in kept]
            return df
        return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", encoding=encoding, dtype=str,
                           keep_default_na=False, na_values=[""])  # fmt: skip
    except UnicodeDecodeError as e:
        other = "latin-1" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
        raise DataError(
            f"{flag} file {str(p)!r} is not valid {encoding} text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
            f"pass its encoding with --encoding, e.g. --encoding {other} (or cp1252), or convert the file to UTF-8"
        ) from None
    except ImportError as e:
        raise DataError(f"reading {str(p)!r} needs an optional package ({e}); pip install pyarrow") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read {str(p)!r} as a table ({first}); pass a CSV with a header row, a TSV or a Parquet file") from None


def _column(df, name: str, flag: str, label: str):
    if name not in df.columns:
        cols = ", ".join(map(repr, map(str, df.columns[:20])))
        raise DataError(f"{label} has no column {name!r} ({flag}); its columns are {cols} — pass {flag} with one of them")
    return df[name]


def _check_column_texts(texts: list, df, where: str, column: str, flag: str, what: str = "text") -> list:
    """The texts (``what="label"``: labels) of ``column``, none empty or missing; the errors name the file, the
    column and the rows as the user sees them (data rows of a table, lines of a .txt file)."""
    import math

    lines = df.attrs.get("lines")
    if not texts:
        if lines is not None:
            raise DataError(f"{where} holds no texts (only blank lines); pass a file with one text per line")
        raise DataError(f"{where} has no data rows (only a header), so column {column!r} ({flag}) holds no texts; "
                        "pass a file with at least one row under the header")  # fmt: skip
    bad = [i for i, v in enumerate(texts) if v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip()]
    if bad:
        if lines is not None:
            unit, nums = "line(s)", [lines[i] for i in bad]
        else:
            unit, nums = "data row(s)", [i + 1 for i in bad]
        shown = ", ".join(map(str, nums[:5])) + (f", … ({len(nums)} in all)" if len(nums) > 5 else "")
        extra = "" if lines is not None else " (counting the first row under the header as 1; file line = row + 1 where no text spans lines)"
        fix = "remove those rows or label them" if what == "label" else "remove those rows or fill them in"
        raise DataError(f"{where} column {column!r} ({flag}) has {len(bad)} empty or missing {what}(s) at {unit} {shown}{extra}; "
                        f"{fix}")  # fmt: skip
    return texts if what == "label" else [str(v) for v in texts]


def _check_out_suffix(path: str) -> None:
    if not str(path).lower().endswith(OUT_SUFFIXES):
        raise ConfigError(f"--out {path!r} must end in .csv, .tsv or .parquet (the suffix picks the format)")


def _write_predictions(df, path: str | Path) -> Path:
    """CSV / Parquet through the forecast commands' writer; TSV here (atomically: temp file, renamed)."""
    from lstmkit.cli import _write_table

    path = Path(path)
    if path.suffix.lower() == ".tsv":
        from lstmkit.training.checkpoint import atomic_write_bytes

        atomic_write_bytes(path, df.to_csv(index=False, sep="\t").encode())
        return path
    return _write_table(df, path)


def _model_columns(model_dir: Path) -> dict:
    try:
        return json.loads((model_dir / "metrics.json").read_text()).get("columns", {})
    except (OSError, ValueError):
        return {}


def _params(args) -> dict:
    kw = {}
    for flag in ("tokenizer", "vocab_size", "max_length", "pooling", "hidden_size", "num_layers", "embed_dim", "vectors", "epochs",
                 "steps", "batch_size", "lr", "val_fraction", "patience", "seed"):  # fmt: skip
        v = getattr(args, flag)
        if v is not None:
            kw[flag] = v
    if args.class_weight is not None:
        kw["class_weight"] = None if args.class_weight == "none" else args.class_weight
    if args.no_baseline:
        kw["baseline"] = False
    return kw


# ------------------------------------------------------------------------------------------ commands
def cmd_fit(args) -> int:
    from lstmkit.cli import _set_threads, _Staging
    from lstmkit.tasks.classifier import TextClassifier

    out = common.check_model_out(args.out, args)
    progress = common.fit_progress(args) and not args_.quiet(args)
    model = TextClassifier(**_params(args))
    with args_.flag_names():
        model._check_params()
    df = read_texts(args.data, args.encoding)
    texts = _column(df, args.text, "--text", f"DATA {args.data!r}").tolist()
    labels = _column(df, args.label, "--label", f"DATA {args.data!r}").tolist()
    texts = _check_column_texts(texts, df, f"DATA file {str(args.data)!r}", args.text, "--text")
    labels = _check_column_texts(labels, df, f"DATA file {str(args.data)!r}", args.label, "--label", "label")
    ckpt = common.checkpoints(out, args.resume)
    _set_threads()
    model.fit(texts, labels, progress=progress, checkpoint_dir=ckpt, resume=args.resume)
    val = model.val_metrics_
    summary = {
        "data": str(args.data), "columns": {"text": args.text, "label": args.label}, "encoding": args.encoding,
        "n_texts": len(texts), "n_train": model.n_train_, "n_val": model.n_val_, "classes": model.classes_,
        "vocab_size": model.tokenizer_.vocab_size, "fit_seconds": round(model.fit_seconds_, 3),
        "baseline_seconds": None if model.baseline_seconds_ is None else round(model.baseline_seconds_, 3),
        "validation": val, "history": model.history_,
    }  # fmt: skip
    with _Staging(out) as stage:
        model.save(stage.dir, metrics=summary)
        plots = _plots(model.history_, val, stage.dir)
        stage.publish(last="config.json")
    print(f"model:   {out}/ (config.json, tokenizer.json, weights.safetensors) — {len(texts)} texts, "
          f"{len(model.classes_)} classes, vocabulary {model.tokenizer_.vocab_size}, fitted in {model.fit_seconds_:.1f} s")  # fmt: skip
    if val is not None:
        print(f"validation ({model.n_val_} texts held out from training):")
        print(_format(val))
    for name in plots:
        print(f"plot:    {out / name}")
    print(f"next:    lstmkit classify predict {out} --text \"...\"   |   lstmkit classify evaluate {out} --data TEST.csv")
    return 0


def _plots(history, evaluation: dict | None, folder: Path) -> list[str]:
    """training.png and confusion_matrix.png; skipped with a warning where matplotlib is missing."""
    made = common.training_plot(history, folder)
    if made and evaluation is not None:  # no training plot: matplotlib is missing, and the warning was given
        try:
            made.append(plot_confusion(evaluation, folder / "confusion_matrix.png").name)
        except ConfigError as e:
            log.warning("no plots: %s", e)
    return made


def plot_confusion(evaluation: dict, path: Path, models: tuple[str, ...] = ("lstm", "tfidf_lr")) -> Path:
    """Row-normalised confusion matrices (counts in the cells) of the LSTM and the TF-IDF baseline, side by side."""
    import numpy as np

    from lstmkit.reports.plots import _pyplot, _save

    plt = _pyplot()
    classes = evaluation["classes"]
    shown = [m for m in models if m in evaluation["results"]]
    C = len(classes)
    size = max(3.2, 0.55 * C + 2.2)
    fig, axes = plt.subplots(1, len(shown), figsize=(size * len(shown), size), squeeze=False)
    for ax, m in zip(axes[0], shown):
        r = evaluation["results"][m]
        cm = np.asarray(r["confusion"], dtype=float)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        if C <= 20:
            for i in range(C):
                for j in range(C):
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(C), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(C), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{m}: acc {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _format(evaluation: dict) -> str:
    rows = [("model", "accuracy", "macro-F1")]
    for m, r in evaluation["results"].items():
        rows.append((m, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}"))
    w = [max(len(r[k]) for r in rows) for k in range(3)]
    return "\n".join(f"  {r[0].ljust(w[0])}  {r[1].rjust(w[1])}  {r[2].rjust(w[2])}" for r in rows)


def cmd_predict(args) -> int:
    import pandas as pd

    from lstmkit.cli import _set_threads
    from lstmkit.tasks.classifier import TextClassifier

    args_.quiet(args)
    if args.out is not None:
        _check_out_suffix(args.out)
    model_dir = Path(args.model_dir)
    model = TextClassifier.load(model_dir)
    if args.data is not None:
        df = read_texts(args.data, args.encoding, "--data")
        col = args.text_column or ("text" if Path(args.data).suffix.lower() == ".txt" else _model_columns(model_dir).get("text", "text"))
        texts = _column(df, col, "--text-column", f"--data {args.data!r}").tolist()
        texts = _check_column_texts(texts, df, f"--data file {str(args.data)!r}", col, "--text-column")
    else:
        col = _model_columns(model_dir).get("text", "text")
        texts = list(args.text)
        blank = [i + 1 for i, t in enumerate(texts) if not t.strip()]
        if blank:
            raise DataError(f"--text number {', '.join(map(str, blank))} (of {len(texts)}) is empty; pass a non-empty text")
        df = pd.DataFrame({col: texts})
    _set_threads()
    pred = model.predict_frame(texts)
    pred.index = df.index
    clash = [c for c in pred.columns if c in df.columns]
    result = pd.concat([df.drop(columns=clash), pred], axis=1)
    if args.out is None:
        result.to_csv(sys.stdout, index=False)
        return 0
    path = _write_predictions(result, args.out)
    counts = pred["prediction"].value_counts()
    print(f"predictions: {path} — {len(result)} texts; " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def cmd_evaluate(args) -> int:
    from lstmkit.cli import _set_threads, _Staging, _write_table
    from lstmkit.tasks.classifier import TextClassifier

    args_.quiet(args)
    model_dir = Path(args.model_dir)
    out = common.evaluation_out(args.out, model_dir)
    model = TextClassifier.load(model_dir)
    cols = _model_columns(model_dir)
    df = read_texts(args.data, args.encoding, "--data")
    label = f"--data {args.data!r}"
    text_col = args.text_column or cols.get("text", "text")
    texts = _column(df, text_col, "--text-column", label).tolist()
    texts = _check_column_texts(texts, df, f"--data file {str(args.data)!r}", text_col, "--text-column")
    label_col = args.label or cols.get("label", "label")
    labels = _column(df, label_col, "--label", label).tolist()
    labels = _check_column_texts(labels, df, f"--data file {str(args.data)!r}", label_col, "--label", "label")
    _set_threads()
    ev = model.evaluate(texts, labels)
    result = ev.to_dict()
    print(f"{args.data}: {ev.n} texts, {len(ev.classes)} classes — LSTM beside TF-IDF + logistic regression "
          "(fitted on the model's training texts) and the majority class")  # fmt: skip
    print(_format(result))
    table = ev.table()
    with _Staging(out) as stage:
        _write_table(table, stage.dir / "metrics.csv")
        (stage.dir / "metrics.json").write_text(json.dumps({"data": str(args.data), **result}, indent=2) + "\n")
        try:
            plot_confusion(result, stage.dir / "confusion_matrix.png")
        except ConfigError as e:
            log.warning("no confusion-matrix plot: %s", e)
        common.publish_listed(stage, out)
    return 0


# ------------------------------------------------------------------------------------------ standalone
def main(argv: list[str] | None = None) -> int:
    """Run ``classify …`` through ``lstmkit.cli.main`` (same error handling); returns the exit code."""
    return common.run(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
