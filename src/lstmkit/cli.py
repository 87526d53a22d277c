"""The ``lstmkit`` command: parse, build, call — the work happens in the estimators.

    lstmkit forecast fit DATA --horizon H --out MODEL_DIR     train, save, plot, report
    lstmkit forecast predict MODEL_DIR [--data DATA] --out forecasts.csv
    lstmkit forecast evaluate DATA [--horizon H] [--windows K] [--out DIR]
    lstmkit datasets list | show NAME | export NAME --out FILE [--test]

DATA is a CSV / Parquet file in long format (``unique_id, ds, y`` + covariates; other names via
``--id/--time/--target``) or a single series, or ``dataset:NAME`` for a bundled dataset, whose horizon,
season length, frequency and group column are then the defaults.

Every user mistake (a :class:`lstmkit.UserError`, or a bad flag) ends as one line ``error: …`` on stderr
and exit code 2, with no traceback. Outputs are written to temporary names and renamed into place, so a
failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lstmkit.errors import ConfigError, DataError, UserError

log = logging.getLogger("lstmkit.cli")

DATASET_PREFIX = "dataset:"
# The CLI asks for an 80% interval by default so every forecast and report shows its uncertainty;
# `--quantiles none` trains a point forecaster only.
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
BASELINES = ("naive", "seasonal_naive", "naive2", "theta", "ets")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".gz")
# The commands that checkpoint as they train and take --resume (tests/test_cli.py checks the list is complete).
RESUMABLE = "`forecast fit`, `classify fit`, `generate fit` and `translate fit`"


# ------------------------------------------------------------------------------------------ parsing
class _ArgError(Exception):
    """A command-line mistake found by argparse (reported like a UserError)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + exits; we want one line and exit code 2
        raise _ArgError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):
        # argparse reports unknown arguments from the top-level parser; point to the sub-command's help.
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            raise _ArgError(f"unrecognized arguments: {' '.join(extras)} (see `{_chosen(self, ns).prog} --help`)")
        return ns


def _chosen(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> argparse.ArgumentParser:
    """The deepest sub-command parser that ``ns`` went through (``lstmkit generate fit``)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(ns, subs[0].dest, None) if subs else None
        if name not in (subs[0].choices if subs else {}):
            return parser
        parser = subs[0].choices[name]


def _fit_parsers(sub: argparse._SubParsersAction):
    """The ``fit`` parser of each task (``forecast fit``, ``classify fit``, …)."""
    for task in sub.choices.values():
        for action in task._actions:
            if isinstance(action, argparse._SubParsersAction) and "fit" in action.choices:
                yield action.choices["fit"]


def _integer(text: str) -> int:
    """Any integer: the forecaster checks each value's range and names the option in its message."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _quantiles(text: str) -> tuple[float, ...]:
    if text.strip().lower() in ("", "none", "off"):
        return ()
    try:
        return tuple(float(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated levels like 0.1,0.5,0.9, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _freq(text: str) -> str | int:
    return int(text) if text.strip().isdigit() else text.strip()


def _add_columns(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns (long format: one row per series × time step)")
    g.add_argument("--target", default="y", help="target column (default: y)")
    g.add_argument("--time", default="ds", help="time column: dates or integers (default: ds)")
    g.add_argument("--id", default="unique_id", help="series id column; absent means one series (default: unique_id)")
    g.add_argument("--freq", type=_freq, help="time step: pandas alias (D, W, MS, QS, h, 30min) or integer step; default: inferred")
    g.add_argument("--past-covariates", type=_names, default=[], metavar="A,B", help="columns known up to the forecast origin")
    g.add_argument("--future-covariates", type=_names, default=[], metavar="C", help="columns known over the horizon too")
    g.add_argument("--static-covariates", type=_names, default=[], metavar="D", help="per-series numeric columns")


def _add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (unset flags keep the Forecaster's defaults)")
    g.add_argument("--horizon", type=_integer, metavar="H", help="steps to forecast (default for dataset:NAME: its horizon)")
    g.add_argument("--lookback", type=_integer, metavar="L", help="input window length (default: 2m for seasonal data, else 2H; at least 8)")
    g.add_argument("--quantiles", type=_quantiles, default=DEFAULT_QUANTILES, metavar="Q,Q,Q",
                   help="quantile levels for intervals (default: 0.1,0.5,0.9; 'none' for point forecasts only)")  # fmt: skip
    g.add_argument("--season-length", type=_integer, metavar="M", help="seasonal period (default: from the frequency or dataset)")
    g.add_argument("--steps", type=_integer, metavar="N", help="optimiser steps per model")
    g.add_argument("--hidden-size", type=_integer, metavar="N", help="LSTM hidden units")
    g.add_argument("--ensemble", type=_integer, metavar="N", help="models (seeds × lookbacks) whose median is the forecast")
    g.add_argument("--val-size", type=_integer, metavar="N", help="last steps of each series held out for early stopping")
    g.add_argument("--patience", type=_integer, metavar="N", help="epochs without validation improvement before stopping")
    g.add_argument("--seed", type=_integer, metavar="S", help="random seed (same seed + machine + CPU ⇒ same numbers)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from lstmkit import __version__

    parser = _Parser(
        prog="lstmkit",
        description="LSTM networks made practical: forecasting, bundled datasets, the papers' experiments, and a look inside the cell.",
    )
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fc = sub.add_parser("forecast", help="fit, predict and evaluate a global LSTM forecaster")
    fsub = fc.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = fsub.add_parser("fit", help="train on DATA and save a model directory with plots and a report")
    p.add_argument("data", metavar="DATA", help="CSV / Parquet file, or dataset:NAME")
    _add_model(p)
    _add_columns(p)
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoints after an interruption")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write (new or empty)")
    p.set_defaults(func=cmd_fit)

    p = fsub.add_parser("predict", help="forecast the next H steps of every series with a saved model")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `lstmkit forecast fit`")
    p.add_argument("--data", metavar="DATA", help="series to continue (default: the series the model was fitted on)")
    p.add_argument("--out", required=True, metavar="FILE", help="forecasts file (.csv or .parquet)")
    p.set_defaults(func=cmd_predict)

    p = fsub.add_parser("evaluate", help="backtest: hold out the last H steps, refit, score against baselines")
    p.add_argument("data", metavar="DATA", help="CSV / Parquet file, or dataset:NAME")
    p.add_argument("--windows", type=_integer, default=1, metavar="K", help="rolling origins (default: 1)")
    p.add_argument("--group", metavar="COL", help="column splitting the metrics per group (default for datasets: group)")
    p.add_argument("--baselines", type=_names, default=list(BASELINES), metavar="NAMES",
                   help=f"comma-separated, from {','.join(BASELINES)} (theta/ets need statsforecast; default: all)")  # fmt: skip
    _add_model(p)
    _add_columns(p)
    p.add_argument("--out", metavar="DIR", help="write metrics.csv/json, backtest forecasts, plots and report.html here")
    p.set_defaults(func=cmd_evaluate)
    from lstmkit.text._cli_args import add_quiet

    for action in fsub.choices.values():  # --quiet means what it means in the text commands
        add_quiet(action)

    ds = sub.add_parser("datasets", help="bundled real datasets (read from installed packages)")
    dsub = ds.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = dsub.add_parser("list", help="names, sizes and sources")
    p.set_defaults(func=cmd_datasets_list)
    p = dsub.add_parser("show", help="describe one dataset")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_datasets_show)
    p = dsub.add_parser("export", help="write a dataset as CSV or Parquet (by the --out suffix)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--test", action="store_true", help="export the held-out test part instead of the history")
    p.set_defaults(func=cmd_datasets_export)
    from lstmkit.diagnostics.cli import register as register_inspect
    from lstmkit.experiments.cli import register as register_experiment
    from lstmkit.text.cli import register as register_classify
    from lstmkit.text.generate_cli import register as register_generate
    from lstmkit.text.translate_cli import register as register_translate

    register_classify(sub)
    register_generate(sub)  # generate fit|sample|evaluate|inspect
    register_translate(sub)  # translate fit|predict|evaluate|demo
    register_experiment(sub)
    register_inspect(sub)
    from lstmkit.text._cli_common import add_force_flag

    for fit in _fit_parsers(sub):  # --force: replace a model of the same task (checked in main, before the fit)
        add_force_flag(fit)
    return parser


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _setup_logging(args.quiet or getattr(args, "fit_quiet", False))  # global -q or a sub-command's --quiet
        from lstmkit.text._cli_common import guard_fit_out

        guard_fit_out(args)  # a fit's --out: refused before its data is even read
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return rc
    except (_ArgError, UserError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lstmkit ... | head`: the reader left, as it may; exit quietly with 0
        _stdout_to_devnull()
        return 0
    except KeyboardInterrupt:
        print(f"error: interrupted ({RESUMABLE} continue from their checkpoints with --resume)", file=sys.stderr)
        return 130


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so Python's flush at exit finds no closed pipe (Python's own recipe for
    SIGPIPE: https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a test runner's capture: nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it between calls)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 — logging must never break the command
            self.handleError(record)


def _setup_logging(quiet: bool) -> None:
    root = logging.getLogger("lstmkit")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(h)
    root.setLevel(logging.WARNING if quiet else logging.INFO)


def _set_threads() -> None:
    import torch

    env = os.environ.get("LSTMKIT_THREADS")
    if env:
        try:
            n = int(env)
            assert n >= 1
        except (ValueError, AssertionError):
            raise ConfigError(f"LSTMKIT_THREADS must be a positive integer, got {env!r}; unset it or set e.g. 2") from None
    else:
        # Half the cores, at most 4: small recurrent steps gain little from intra-op threads, and
        # threads that compete for busy cores are ruinous (M3 monthly on a loaded 2-core machine:
        # 83 steps/s with 1 thread, under 1 step/s with 2).
        n = max(1, min(4, (os.cpu_count() or 1) // 2))
    torch.set_num_threads(n)


# ------------------------------------------------------------------------------------------ data
@dataclass
class _Data:
    df: object  # pandas DataFrame
    label: str
    dataset: object | None = None  # lstmkit.data.datasets.Dataset


def _load_data(spec: str, *, full: bool = False, future_covariates: list[str] = (), target: str = "y") -> _Data:
    """Read DATA: a file, or ``dataset:NAME`` (history; with ``full`` history + test; with future
    covariates, the test rows are appended with an empty target so the covariates cover the horizon)."""
    import pandas as pd

    if spec.startswith(DATASET_PREFIX):
        from lstmkit.data import datasets

        name = spec[len(DATASET_PREFIX):]
        ds = datasets.load(name)
        if full:
            df = ds.full()
        elif future_covariates and ds.test is not None:
            df = pd.concat([ds.df, ds.test.assign(**{target: float("nan")})], ignore_index=True)
        else:
            df = ds.df
        return _Data(df, spec, ds)
    from lstmkit.data.panel import read_table

    return _Data(read_table(spec), spec)


def _check_table_suffix(path: str, flag: str = "--out") -> None:
    if not str(path).lower().endswith(TABLE_SUFFIXES):
        raise ConfigError(f"{flag} {path!r} must end in .csv or .parquet (the suffix picks the format)")


def _write_table(df, path: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet (by suffix) atomically: a temp file in the same folder, renamed.

    ``df`` may also be an iterable of frames (streamed forecasts): CSV is then appended chunk by chunk,
    so memory stays bounded; Parquet is assembled in memory."""
    path = Path(path)
    _check_table_suffix(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        name = path.name.lower()
        if not hasattr(df, "to_csv"):
            chunks = iter(df)
            if name.endswith((".parquet", ".pq")):
                import pandas as pd

                df = pd.concat(list(chunks), ignore_index=True)
            else:
                gz = "gzip" if name.endswith(".gz") else None
                first = True
                for chunk in chunks:
                    chunk.to_csv(tmp, index=False, header=first, mode="w" if first else "a", compression=gz)
                    first = False
        if not hasattr(df, "to_csv"):
            pass  # streamed to CSV above
        elif name.endswith((".parquet", ".pq")):
            try:
                df.to_parquet(tmp, index=False)
            except ImportError as e:
                raise ConfigError(f"writing Parquet needs pyarrow ({e}); pip install pyarrow, or use a .csv name") from None
        else:
            df.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes files private (0600); outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


# The files a fit writes into its model directory (any task); a refit with --force removes the old ones it
# does not write again, so the folder never mixes two models. Other files, checkpoints/ and evaluation/ stay.
_MODEL_FILES = frozenset({
    "config.json", "weights.safetensors", "metrics.json", "tokenizer.json", "char_tokenizer.json",
    "source_tokenizer.json", "target_tokenizer.json", "baseline.json", "training.png", "confusion_matrix.png",
    "forecasts.png", "report.html",
})


class _Staging:
    """A temp folder beside ``target``; ``publish()`` moves its files into ``target`` (``last`` last)."""

    def __init__(self, target: Path):
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))

    def publish(self, last: str | None = None) -> None:
        self.target.mkdir(parents=True, exist_ok=True)
        if last is not None:
            (self.target / last).unlink(missing_ok=True)  # the old marker goes first: never a mixed "complete" dir
        if last == "config.json":  # a model replaced (fit --force): the old model's files that the new one lacks go
            new = {p.name for p in self.dir.iterdir()}
            for name in sorted(_MODEL_FILES - new):
                if (self.target / name).is_file():
                    (self.target / name).unlink()
        files = sorted(self.dir.iterdir(), key=lambda p: p.name == last)
        for f in files:
            os.chmod(f, _FILE_MODE)  # temp files are created private (0600)
            os.replace(f, self.target / f.name)

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------ forecast
def _horizon(args, data: _Data) -> int:
    if args.horizon is not None:
        return args.horizon
    if data.dataset is not None:
        if data.dataset.horizon is None:
            raise ConfigError(
                f"dataset {data.dataset.name!r} mixes horizons; pass --horizon H or use one of its subsets "
                f"(e.g. {data.dataset.name}-{data.dataset.info.groups[0].lower()})"
                if data.dataset.info.groups else f"dataset {data.dataset.name!r} has no horizon; pass --horizon H"
            )
        return int(data.dataset.horizon)
    raise ConfigError(f"--horizon is required for {data.label!r}: how many steps to forecast, e.g. --horizon 12")


def _forecaster(args, horizon: int, data: _Data):
    from lstmkit.tasks.forecaster import Forecaster

    kw = {"quantiles": args.quantiles}
    for flag in ("lookback", "steps", "hidden_size", "ensemble", "val_size", "patience", "seed"):
        v = getattr(args, flag)
        if v is not None:
            kw[flag] = v
    season = args.season_length
    if season is None and data.dataset is not None:
        season = data.dataset.season_length
    if season is not None:
        kw["season_length"] = season
    return Forecaster(horizon, **kw)


def _columns(args, data: _Data) -> dict:
    freq = args.freq
    if freq is None and data.dataset is not None:
        freq = data.dataset.freq
    return dict(target=args.target, time=args.time, id=args.id, freq=freq, past_covariates=args.past_covariates,
                future_covariates=args.future_covariates, static_covariates=args.static_covariates)  # fmt: skip


def cmd_fit(args) -> int:
    from lstmkit.text._cli_common import check_model_out, checkpoints, fit_progress

    out = check_model_out(args.out, args)
    data = _load_data(args.data, future_covariates=args.future_covariates, target=args.target)
    model = _forecaster(args, _horizon(args, data), data)
    ckpt = checkpoints(out, args.resume)
    _set_threads()
    model.fit(data.df, **_columns(args, data), checkpoint_dir=ckpt, resume=args.resume, progress=fit_progress(args))

    last = [h[-1] for h in model.history_ if h]
    summary = {
        "data": data.label, "n_series": int(model.panel_.n_series), "horizon": model.horizon,
        "lookback": model.lookback_, "season_length": model.season_, "quantiles": list(model.quantiles),
        "fit_seconds": round(model.fit_seconds_, 3), "final_train_loss": [r["train_loss"] for r in last],
        "final_val_loss": [r["val_loss"] for r in last if "val_loss" in r], "history": model.history_,
    }  # fmt: skip
    from lstmkit.reports import plot_forecasts, plot_training, write_report

    with _Staging(out) as stage:
        model.save(stage.dir, metrics=summary)
        images = {"Training curve": plot_training(model.history_, stage.dir / "training.png")}
        try:
            pred = model.predict(output="array")
        except DataError as e:  # e.g. future covariates not given past the history: predict --data supplies them
            log.warning("no forecast plot: %s", _one_line(e))
        else:
            q = pred[..., 1:] if model.quantiles else None
            images = {"Forecasts": plot_forecasts(model.panel_, pred[..., 0], q, path=stage.dir / "forecasts.png",
                                                  levels=model.quantiles), **images}  # fmt: skip
        notes = [
            f"data: {data.label} — {summary['n_series']} series, horizon {model.horizon}, lookback {model.lookback_}, "
            f"season length {model.season_}",
            f"trained in {model.fit_seconds_:.1f} s; final training loss {', '.join(f'{v:.4g}' for v in summary['final_train_loss'])}",
            f"model directory: {out} (config.json, weights.safetensors, metrics.json)",
            f"forecast with: lstmkit forecast predict {out} --out forecasts.csv",
        ]
        write_report(stage.dir / "report.html", f"lstmkit forecast fit — {data.label}", None, images, notes)
        stage.publish(last="config.json")
    print(f"model:   {out}/ (config.json, weights.safetensors, metrics.json) — {summary['n_series']} series, "
          f"horizon {model.horizon}, fitted in {model.fit_seconds_:.1f} s")  # fmt: skip
    for img in images.values():
        print(f"plot:    {out / Path(img).name}")
    print(f"report:  {out / 'report.html'}")
    print(f"next:    lstmkit forecast predict {out} --out forecasts.csv")
    return 0


def cmd_predict(args) -> int:
    from lstmkit.tasks.forecaster import Forecaster, NotContiguousError

    _check_table_suffix(args.out)
    _set_threads()
    model = Forecaster.load(args.model_dir)
    names = model.fitted_.names
    if args.data is not None and not args.data.startswith(DATASET_PREFIX):
        from lstmkit.data.panel import iter_table

        # A file is forecast in chunks of complete series, so memory does not grow with their number.
        counted = {"series": 0, "columns": []}

        def chunks():
            for fc in model.predict_stream(iter_table(args.data)):
                counted["series"] += len(fc) // model.horizon
                counted["columns"] = list(fc.columns)
                yield fc

        try:
            path = _write_table(chunks(), args.out)
            n_series, columns = counted["series"], counted["columns"]
        except NotContiguousError as e:
            log.info("%s — reading the whole file instead of chunks", e)
            fc = model.predict(_load_data(args.data).df)
            path = _write_table(fc, args.out)
            n_series, columns = len(fc) // model.horizon, list(fc.columns)
    else:
        df = None
        if args.data is not None:
            df = _load_data(args.data, future_covariates=names["future"], target=names["target"]).df
        fc = model.predict(df)
        path = _write_table(fc, args.out)
        n_series, columns = len(fc) // model.horizon, list(fc.columns)
    print(f"forecasts: {path} — {n_series} series × {model.horizon} steps; columns {', '.join(columns)}")
    return 0


def cmd_evaluate(args) -> int:
    unknown = [b for b in args.baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"--baselines: unknown {', '.join(map(repr, unknown))}; choose from {','.join(BASELINES)}")
    if args.out is not None:
        from lstmkit.text._cli_common import check_evaluation_out

        check_evaluation_out(args.out)  # a new or empty folder, or an earlier evaluation; never a model's
    data = _load_data(args.data, full=True)
    H = _horizon(args, data)
    model = _forecaster(args, H, data)
    group = args.group
    if group is None and data.dataset is not None and len(data.dataset.info.groups) > 1 and "group" in data.df.columns:
        group = "group"
    columns = _columns(args, data)
    _set_threads()
    bt = model.backtest(data.df, windows=args.windows, group=group, baselines=tuple(args.baselines),
                        progress=not (args.no_progress or args.fit_quiet), **columns)  # fmt: skip
    table = bt.table()
    n = len(bt.ids)
    header = (f"{data.label}: {n} series, horizon {H}, {args.windows} window(s) — lower is better, "
              "* marks the best per group")  # fmt: skip
    print(header)
    print(format_table(table))
    cov = [c for c in table.columns if c.startswith("coverage_")]
    if cov:
        print(f"{cov[0]}: share of actuals inside the LSTM's {cov[0].split('_')[1]}% interval (ideally about that share)")
    if args.out is None:
        return 0

    from lstmkit.data.panel import to_panel
    from lstmkit.reports import plot_forecasts, plot_metrics, write_report

    out = Path(args.out)
    panel = to_panel(data.df, **columns)
    with _Staging(out) as stage:
        d = stage.dir
        _write_table(table, d / "metrics.csv")
        (d / "metrics.json").write_text(json.dumps({"data": data.label, "horizon": H, "windows": args.windows,
                                                    "metrics": _records(table)}, indent=2) + "\n")  # fmt: skip
        _write_table(_backtest_frame(bt, panel, H), d / "backtest_forecasts.csv")
        last = panel.truncate(H)
        q = bt.quantiles[-1] if bt.quantiles is not None else None
        images = {
            "sMAPE per model": plot_metrics(table, d / "metrics.png"),
            "Last backtest window (dashed: actual)": plot_forecasts(
                last, bt.forecasts["lstm"][-1], q, path=d / "forecasts.png", levels=model.quantiles, actual=bt.actual[-1]
            ),
        }
        notes = [header, f"settings: {model.get_params()}", f"outputs: {out}/metrics.csv, metrics.json, backtest_forecasts.csv"]
        write_report(d / "report.html", f"lstmkit forecast evaluate — {data.label}", table, images, notes)
        names = sorted(p.name for p in d.iterdir())
        stage.publish()
    for name in names:
        print(f"wrote:   {out / name}")
    return 0


def _records(table) -> list[dict]:
    import math

    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in table.to_dict("records")]


def _backtest_frame(bt, panel, H: int):
    """Long table of every window: id, window, time, actual, one column per model (+ LSTM quantiles)."""
    import numpy as np
    import pandas as pd

    K, N = bt.actual.shape[:2]
    id_name = panel.names.get("id") or "unique_id"
    frames = []
    for k in range(K):
        times = panel.truncate((K - k) * H).future_times(H)  # (N, H)
        cols = {id_name: np.repeat(bt.ids, H), "window": k + 1, panel.names["time"]: times.reshape(-1),
                "actual": bt.actual[k].reshape(-1)}  # fmt: skip
        for m, f in bt.forecasts.items():
            cols[m] = f[k].reshape(-1)
        if bt.quantiles is not None:
            for j, lev in enumerate(bt.levels):
                cols[f"lstm_q{lev:g}"] = bt.quantiles[k][..., j].reshape(-1)
        frame = pd.DataFrame(cols)
        frames.append(frame if panel.names.get("id") else frame.drop(columns=id_name))  # one series: no id, as in predict
    return pd.concat(frames, ignore_index=True)


def format_table(table) -> str:
    """The metrics table as fixed-width text; ``*`` after the best lower-is-better value per group."""
    import numpy as np
    import pandas as pd

    from lstmkit.reports.html import best_mask

    mask = best_mask(table)
    cols = [c for c in table.columns if not (c == "group" and set(table["group"]) == {"all"}) and c != "seconds"]
    cols += ["seconds"] if "seconds" in table.columns else []
    cells: dict[str, list[str]] = {}
    for c in cols:
        col = table[c]
        if pd.api.types.is_float_dtype(col):
            if c.startswith("coverage"):
                cells[c] = ["–" if np.isnan(v) else f"{100 * v:.1f}%" for v in col]
                continue
            mag = np.nanmax(np.abs(col.to_numpy(float))) if col.notna().any() else 0.0
            dec = 3 if mag < 10 else 2 if mag < 1000 else 1 if mag < 1e5 else 0
            cells[c] = [("–" if np.isnan(v) else f"{v:,.{dec}f}") + ("*" if mask.at[i, c] else " ") for i, v in col.items()]
        else:
            cells[c] = [str(v) for v in col]
    widths = {c: max(len(c), *(len(s) for s in cells[c])) for c in cols}
    left = {c for c in cols if not pd.api.types.is_numeric_dtype(table[c])}

    def line(values: dict[str, str]) -> str:
        return "  ".join(values[c].ljust(widths[c]) if c in left else values[c].rjust(widths[c]) for c in cols).rstrip()

    head = line({c: c + ("" if c in left or not pd.api.types.is_float_dtype(table[c]) or c.startswith("coverage") else " ")
                 for c in cols})  # fmt: skip
    rows = [head, "-" * len(head)]
    prev = None
    for i in range(len(table)):
        g = table["group"].iloc[i] if "group" in table.columns else None
        if prev is not None and g != prev:
            rows.append("")
        values = {c: cells[c][i] for c in cols}
        if "group" in values and g == prev:
            values["group"] = ""  # the group's name once, on its first row
        prev = g
        rows.append(line(values))
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------ datasets
def cmd_datasets_list(args) -> int:
    from lstmkit.data import datasets

    rows = []
    for name in datasets.list_datasets():
        i = datasets.info(name)
        desc = " ".join(i.description.split())
        rows.append((name, str(i.n_series), i.interval, _dash(i.horizon), _dash(i.season_length),
                     "yes" if i.has_test else "no", i.package, desc[:70] + ("…" if len(desc) > 70 else "")))  # fmt: skip
    head = ("name", "series", "step", "horizon", "season", "test", "package", "description")
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
    right = {1, 3, 4}
    for r in [head, *rows]:
        print("  ".join(v.rjust(w) if k in right else v.ljust(w) for k, (v, w) in enumerate(zip(r, widths))).rstrip())
    print(f"\nuse one as DATA with dataset:NAME, e.g. `lstmkit forecast evaluate dataset:{rows[0][0] if rows else 'NAME'}`")
    return 0


def _dash(v) -> str:
    return "–" if v is None else str(v)


def cmd_datasets_show(args) -> int:
    from lstmkit.data import datasets

    i = datasets.info(args.name)
    ds = datasets.load(args.name)
    lengths = ds.df.groupby("unique_id", sort=False).size()
    print(f"{i.name}: {i.description}")
    fields = [
        ("source", f"{i.source}; needs `pip install {i.pip_name}`"),
        ("series", f"{ds.n_series}; history lengths {lengths.min()}–{lengths.max()} (median {int(lengths.median())})"),
        ("time step", f"{i.interval} (freq {i.freq})"),
        ("horizon", _dash(i.horizon)),
        ("season length", _dash(i.season_length)),
        ("test part", f"{len(ds.test)} rows" if ds.test is not None else "none"),
        ("groups", ", ".join(i.groups) or "–"),
        ("past covariates", ", ".join(i.past_covariates) or "–"),
        ("future covariates", ", ".join(i.future_covariates) or "–"),
        ("columns", ", ".join(map(str, ds.df.columns))),
    ]
    for k, v in fields:
        print(f"  {k:<18}{v}")
    print()
    print(ds.df.head(5).to_string(index=False))
    return 0


def cmd_datasets_export(args) -> int:
    from lstmkit.data import datasets

    _check_table_suffix(args.out)
    ds = datasets.load(args.name)
    df = ds.df
    if args.test:
        if ds.test is None:
            raise DataError(
                f"dataset {ds.name!r} has no held-out test part; export it without --test "
                "(then hold out the end yourself, or let `lstmkit forecast evaluate` do it)"
            )
        df = ds.test
    path = _write_table(df, args.out)
    print(f"wrote:   {path} — {len(df)} rows, {df['unique_id'].nunique()} series, columns {', '.join(map(str, df.columns))}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
