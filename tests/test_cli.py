"""The `lstmkit` command: fit → predict round trip, evaluate, datasets, and every bad input of issue 3.

Every bad input must end with exit code 2, exactly one line ``error: …`` on stderr naming the
file / column / row and the fix, no traceback, and no output file left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import build_parser, main

H = 4
FAST = ["--horizon", str(H), "--steps", "30", "--hidden-size", "8", "--no-progress"]
IDS = [f"s{i}" for i in range(20)]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")  # the suite's convention (see conftest.py)


def seasonal(n_series=20, length=40, seed=0) -> pd.DataFrame:
    """Positive quarterly series with a season of 4, noise, and lengths 33–40."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_series):
        n = length - int(rng.integers(0, 8))
        t = np.arange(n)
        y = 100 * (1 + 0.3 * np.sin(2 * np.pi * (t + s) / 4)) * rng.lognormal(0, 0.05, n)
        ds = pd.date_range("2015-01-01", periods=n, freq="QS")
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": ds, "y": y, "grp": "a" if s % 2 else "b"}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sales.csv"
    seasonal().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data_csv) -> Path:
    out = tmp_path_factory.mktemp("models") / "m"
    assert main(["forecast", "fit", str(data_csv), *FAST, "--out", str(out)]) == 0
    return out


def write(tmp_path: Path, df: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def fails(capsys, argv: list[str], *needles: str, absent: Path | None = None) -> str:
    """Run argv; assert exit 2, one `error:` line on stderr containing every needle, nothing written."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    if absent is not None:
        assert not absent.exists(), f"{absent} was written"
        leftovers = [p.name for p in absent.parent.iterdir() if p.name.startswith(f".{absent.name}")]
        assert not leftovers, leftovers
    return lines[0]


# ------------------------------------------------------------------------------------ happy paths
def test_fit_writes_model_plots_report_and_says_where(model_dir, capsys):
    for name in ("config.json", "weights.safetensors", "metrics.json", "forecasts.png", "training.png", "report.html"):
        assert (model_dir / name).is_file(), name
    assert (model_dir / "checkpoints" / "member0" / "checkpoint.json").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["n_series"] == 20 and metrics["horizon"] == H
    html = (model_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<link" not in html
    assert not [p for p in model_dir.parent.iterdir() if ".staging-" in p.name]


def test_predict_round_trip_columns(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "fc.csv"
    assert main(["forecast", "predict", str(model_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["unique_id", "ds", "forecast", "forecast_q0.1", "forecast_q0.5", "forecast_q0.9"]
    assert len(fc) == 20 * H and sorted(fc.unique_id.unique()) == sorted(IDS)
    assert np.isfinite(fc["forecast"]).all() and (fc["forecast"] > 0).all()
    last = seasonal().groupby("unique_id").ds.max()
    first = pd.to_datetime(fc.groupby("unique_id").ds.min())
    assert (first == last.loc[first.index] + pd.offsets.QuarterBegin(startingMonth=1)).all()
    # --data continues the given series; the same data as at fit gives the same forecasts
    out2 = tmp_path / "fc2.parquet"
    assert main(["forecast", "predict", str(model_dir), "--data", str(data_csv), "--out", str(out2)]) == 0
    np.testing.assert_allclose(pd.read_parquet(out2)["forecast"], fc["forecast"], rtol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_evaluate_prints_table_against_baselines_and_writes_outputs(data_csv, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["forecast", "evaluate", data_csv, *FAST, "--baselines", "naive,seasonal_naive", "--group", "grp", "--out", out]
    assert main([str(a) for a in argv]) == 0
    text = capsys.readouterr().out
    for word in ("sMAPE", "MASE", "MAE", "RMSE", "CRPS", "coverage_80", "lstm", "seasonal_naive", "*"):
        assert word in text, word
    for name in ("metrics.csv", "metrics.json", "backtest_forecasts.csv", "forecasts.png", "metrics.png", "report.html"):
        assert (out / name).is_file() and str(out / name) in text, name
    table = pd.read_csv(out / "metrics.csv")
    assert set(table["group"]) == {"all", "a", "b"} and set(table["model"]) == {"lstm", "naive", "seasonal_naive"}
    bt = pd.read_csv(out / "backtest_forecasts.csv")
    assert len(bt) == 20 * H and {"actual", "lstm", "naive", "lstm_q0.9"} <= set(bt.columns)
    assert json.loads((out / "metrics.json").read_text())["metrics"][0]["model"] == "lstm"


def test_evaluate_bundled_dataset_takes_its_defaults(capsys):
    argv = ["forecast", "evaluate", "dataset:airpassengers", "--steps", "30", "--hidden-size", "8", "--no-progress",
            "--baselines", "naive,seasonal_naive", "--quantiles", "none"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "horizon 12" in text and "seasonal_naive" in text and "CRPS" not in text


def test_datasets_list_show_export(tmp_path, capsys):
    assert main(["datasets", "list"]) == 0
    text = capsys.readouterr().out
    assert "m3-monthly" in text and "airpassengers" in text
    assert main(["datasets", "show", "airpassengers"]) == 0
    assert "horizon" in capsys.readouterr().out
    out = tmp_path / "air.csv"
    assert main(["datasets", "export", "airpassengers", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 132
    test = tmp_path / "air_test.parquet"
    assert main(["datasets", "export", "airpassengers", "--test", "--out", str(test)]) == 0
    assert len(pd.read_parquet(test)) == 12
    fails(capsys, ["datasets", "export", "sine", "--test", "--out", tmp_path / "s.csv"], "no held-out", absent=tmp_path / "s.csv")


def test_one_constant_series_among_others_is_fine(tmp_path, capsys):
    df = seasonal()
    df.loc[df.unique_id == "s3", "y"] = 42.0
    out = tmp_path / "m"
    assert main(["forecast", "fit", str(write(tmp_path, df)), *FAST, "--out", str(out)]) == 0
    assert (out / "config.json").is_file()


# ------------------------------------------------------------------------------------ bad input
def test_missing_file(tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", tmp_path / "nope.csv", *FAST, "--out", out], "nope.csv", "does not exist", absent=out)


def test_unknown_column(data_csv, tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--target", "sales", "--out", out], "'sales'", "--target", absent=out)
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--past-covariates", "price", "--out", out], "'price'", absent=out)


def test_non_numeric_target(tmp_path, capsys):
    df = seasonal().astype({"y": object})
    df.loc[7, "y"] = "n/a?"
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "numeric", "row 7", absent=out)


def test_all_nan_series(tmp_path, capsys):
    df = seasonal()
    df.loc[df.unique_id == "s5", "y"] = np.nan
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "'s5'", "drop", absent=out)


def test_all_constant_data(tmp_path, capsys):
    df = seasonal().assign(y=3.0)
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "constant", absent=out)


def test_duplicate_timestamps(tmp_path, capsys):
    df = seasonal()
    df = pd.concat([df, df.iloc[[10]]], ignore_index=True)
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "duplicate", "'s0'", absent=out)


def test_unsortable_time(tmp_path, capsys):
    df = seasonal().astype({"ds": object})
    df.loc[12, "ds"] = "last tuesday"
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "'ds'", "row 12", absent=out)


def daily(lengths=(30, 30, 25)) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.concat(
        [pd.DataFrame({"unique_id": f"d{i}", "ds": pd.date_range("2021-03-01", periods=n, freq="D"),
                       "y": 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 7) + rng.normal(0, 1, n)})
         for i, n in enumerate(lengths)],
        ignore_index=True,
    )  # fmt: skip


def test_irregular_time(tmp_path, capsys):
    df = daily()
    df.loc[df.index[-3], "ds"] += pd.Timedelta(hours=7)  # one reading of series d2 off the daily grid
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "irregular", "'d2'", "--freq", absent=out)
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--freq", "D", "--out", out], "irregular", absent=out)


def test_two_rows_in_one_calendar_step(tmp_path, capsys):
    df = seasonal().assign(ds=lambda d: d.ds.dt.to_period("Q").dt.start_time)
    extra = df[df.unique_id == "s1"].iloc[[5]].assign(ds=lambda d: d.ds + pd.Timedelta(days=20), y=1e6)
    out = tmp_path / "m"
    path = write(tmp_path, pd.concat([df, extra], ignore_index=True))
    fails(capsys, ["forecast", "fit", path, *FAST, "--freq", "QS", "--out", out], "'s1'", absent=out)


def test_fractional_numeric_time(tmp_path, capsys):
    df = daily().assign(ds=lambda d: d.groupby("unique_id").cumcount() + 0.5)
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", write(tmp_path, df), *FAST, "--out", out], "'ds'", absent=out)


@pytest.mark.parametrize("h", ["0", "-3"])
def test_horizon_not_positive(data_csv, tmp_path, capsys, h):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--horizon", h, "--out", out], "horizon", absent=out)


def test_horizon_longer_than_histories(data_csv, tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--horizon", "60", "--out", out], "horizon", "shorter", absent=out)
    fails(capsys, ["forecast", "evaluate", data_csv, *FAST, "--horizon", "30", "--windows", "2", "--out", out],
          "windows", absent=out)  # fmt: skip


def test_lookback_longer_than_every_series(data_csv, tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--lookback", "60", "--out", out], "lookback", absent=out)


def test_unknown_dataset(tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", "dataset:m3-montly", *FAST, "--out", out], "unknown dataset", "m3-monthly", absent=out)
    fails(capsys, ["datasets", "show", "nope"], "unknown dataset")


def test_future_covariates_missing_over_the_horizon(tmp_path, capsys):
    df = seasonal().assign(promo=lambda d: (d.ds.dt.month == 1).astype(float))
    path = write(tmp_path, df)
    model = tmp_path / "m"
    # fitting is fine (covariates may come with `predict --data`); the forecast plot is skipped with a warning
    assert main(["forecast", "fit", str(path), *FAST, "--future-covariates", "promo", "--out", str(model)]) == 0
    assert "future covariates" in capsys.readouterr().err
    out = tmp_path / "fc.csv"
    fails(capsys, ["forecast", "predict", model, "--out", out], "future covariates", absent=out)
    fails(capsys, ["forecast", "predict", model, "--data", path, "--out", out], "future covariates", absent=out)
    # given over the horizon (rows with an empty target), predict works
    last = df.groupby("unique_id").ds.max()
    ahead = [pd.DataFrame({"unique_id": i, "ds": pd.date_range(t, periods=H + 1, freq="QS")[1:], "y": np.nan})
             for i, t in last.items()]  # fmt: skip
    full = pd.concat([df, *ahead], ignore_index=True).assign(promo=lambda d: (d.ds.dt.month == 1).astype(float))
    assert main(["forecast", "predict", str(model), "--data", str(write(tmp_path, full, "full.csv")), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 20 * H


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(model_dir, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


def test_model_dir_missing_or_incomplete(model_dir, tmp_path, capsys):
    out = tmp_path / "fc.csv"
    fails(capsys, ["forecast", "predict", tmp_path / "nomodel", "--out", out], "does not exist", absent=out)
    m = _copy(model_dir, tmp_path)
    (m / "weights.safetensors").unlink()
    fails(capsys, ["forecast", "predict", m, "--out", out], "weights.safetensors", "missing", absent=out)
    (m / "config.json").unlink()
    fails(capsys, ["forecast", "predict", m, "--out", out], "config.json", "missing", absent=out)


def test_model_dir_from_incompatible_version(model_dir, tmp_path, capsys):
    m = _copy(model_dir, tmp_path)
    cfg = json.loads((m / "config.json").read_text())
    cfg["format_version"] = 99
    (m / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "fc.csv"
    fails(capsys, ["forecast", "predict", m, "--out", out], "format 99", "refit", absent=out)


def test_model_dir_tampered(model_dir, tmp_path, capsys):
    m = _copy(model_dir, tmp_path)
    raw = bytearray((m / "weights.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (m / "weights.safetensors").write_bytes(bytes(raw))
    out = tmp_path / "fc.csv"
    fails(capsys, ["forecast", "predict", m, "--out", out], "checksum", "weights.safetensors", absent=out)


def test_bad_flags_are_one_line_too(data_csv, tmp_path, capsys):
    out = tmp_path / "m"
    fails(capsys, ["forecast", "fit", data_csv, "--horizon", "4"], "--out")
    fails(capsys, ["forecast", "fit", data_csv, "--out", out], "--horizon", absent=out)
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--quantiles", "0.1,abc", "--out", out], "--quantiles", absent=out)
    fails(capsys, ["forecast", "fit", data_csv, *FAST, "--quantiles", "0.1,1.5", "--out", out], "quantiles", absent=out)
    fails(capsys, ["forecast", "evaluate", data_csv, *FAST, "--baselines", "prophet"], "prophet")
    fails(capsys, ["forecast", "predict", tmp_path, "--out", tmp_path / "fc.xlsx"], ".csv")
    fails(capsys, ["forecast"], "required")


def test_subprocess_exit_code_and_single_line(tmp_path):
    env = {**os.environ, "LSTMKIT_THREADS": "1"}
    cmd = [sys.executable, "-m", "lstmkit", "forecast", "fit", str(tmp_path / "missing.csv"), "--horizon", "4",
           "--out", str(tmp_path / "m")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.csv" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "m").exists()


def _commands_with_resume() -> set[str]:
    """``COMMAND ACTION`` of every sub-command of the parser that takes --resume."""
    found = set()
    for group in build_parser()._subparsers._group_actions:
        for command, parser in group.choices.items():
            for sub in parser._subparsers._group_actions if parser._subparsers else []:
                for action, p in sub.choices.items():
                    if any("--resume" in a.option_strings for a in p._actions):
                        found.add(f"{command} {action}")
    return found


def test_interrupt_names_every_command_that_resumes(monkeypatch, capsys):
    import lstmkit.text.generate_cli

    resumable = _commands_with_resume()
    assert resumable == {"forecast fit", "classify fit", "generate fit", "translate fit"}

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(lstmkit.text.generate_cli, "cmd_fit", interrupted)
    assert main(["generate", "fit", "x.txt", "--out", "m"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("error: interrupted") and err.count("\n") == 1 and "--resume" in err, err
    for command in resumable:
        assert f"`{command}`" in err, err


def test_resume_with_other_covariates_is_one_line_error(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "m"
    shutil.copytree(model_dir, out)
    before = (out / "config.json").read_bytes()
    df = pd.read_csv(data_csv)
    other = write(tmp_path, df.assign(price=np.arange(len(df), dtype=float)), "with_price.csv")
    fails(capsys, ["forecast", "fit", other, *FAST, "--past-covariates", "price", "--out", out, "--resume"],
          str(out / "checkpoints"), "differ from the checkpoint", "new --out")  # fmt: skip
    assert (out / "config.json").read_bytes() == before


@pytest.mark.parametrize("argv", [["forecast", "fit", "d.csv", "--out", "m"], ["forecast", "predict", "m", "--out", "f.csv"],
                                  ["forecast", "evaluate", "d.csv"]])  # fmt: skip
def test_forecast_subcommands_take_quiet_like_the_text_ones(argv):
    from lstmkit.cli import build_parser

    assert build_parser().parse_args([*argv, "--quiet"]).fit_quiet is True
    assert build_parser().parse_args(argv).fit_quiet is False
