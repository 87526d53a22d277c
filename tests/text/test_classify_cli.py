"""`lstmkit classify fit | predict | evaluate` (run through lstmkit.text.cli.main): the round trip, and every
bad input of issue 5 ending as one line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit.text.cli import main

FAST = ["--steps", "80", "--lr", "0.01", "--hidden-size", "8", "--embed-dim", "8", "--no-progress"]
WORDS = {"pos": ["great", "love", "happy", "excellent"], "neg": ["awful", "hate", "sad", "terrible"], "neu": ["ok", "fine", "maybe"]}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")


def sentiment(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        y = ["pos", "neg", "neu"][i % 3]
        words = list(rng.choice(WORDS[y], 2)) + list(rng.choice(["the", "café", "was", "é"], 3))
        rng.shuffle(words)
        rows.append({"id": i, "tweet": " ".join(words), "sentiment": y})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tweets.csv"
    sentiment().to_csv(path, index=False, encoding="latin-1")  # "café", "é": not valid UTF-8 in latin-1
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data_csv) -> Path:
    out = tmp_path_factory.mktemp("models") / "m"
    rc = main(["classify", "fit", str(data_csv), "--text", "tweet", "--label", "sentiment", "--encoding", "latin-1", *FAST, "--out", str(out)])
    assert rc == 0
    return out


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_fit_writes_a_complete_model_dir(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "tokenizer.json", "weights.safetensors", "baseline.json", "metrics.json"} <= names
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["columns"] == {"text": "tweet", "label": "sentiment"}
    assert set(metrics["validation"]["results"]) == {"lstm", "tfidf_lr", "majority"}
    assert not [n for n in names if n.startswith(".")]  # no temp files left


def test_predict_text_and_file(model_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(["classify", "predict", str(model_dir), "--text", "great love happy", "--text", "awful hate sad"]) == 0
    out = capsys.readouterr().out
    df = pd.read_csv(pd.io.common.StringIO(out))
    assert list(df.columns) == ["tweet", "prediction", "prob_neg", "prob_neu", "prob_pos"]
    assert list(df["prediction"]) == ["pos", "neg"]
    np.testing.assert_allclose(df[["prob_neg", "prob_neu", "prob_pos"]].sum(axis=1), 1.0, atol=1e-5)

    new = tmp_path / "new.csv"
    sentiment(30, seed=1).drop(columns="sentiment").to_csv(new, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["classify", "predict", str(model_dir), "--data", str(new), "--out", str(pred)]) == 0
    got = pd.read_csv(pred)
    assert list(got.columns) == ["id", "tweet", "prediction", "prob_neg", "prob_neu", "prob_pos"] and len(got) == 30
    truth = sentiment(30, seed=1)["sentiment"]
    assert (got["prediction"] == truth).mean() > 0.8

    txt = tmp_path / "lines.txt"
    txt.write_text("happy excellent\nterrible sad\n")
    assert main(["classify", "predict", str(model_dir), "--data", str(txt), "--out", str(tmp_path / "p2.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "p2.csv")["prediction"]) == ["pos", "neg"]


def test_evaluate_prints_metrics_and_writes_the_plot(model_dir, tmp_path, capsys):
    test = tmp_path / "test.csv"
    sentiment(60, seed=2).to_csv(test, index=False)
    out = tmp_path / "eval"
    capsys.readouterr()
    assert main(["classify", "evaluate", str(model_dir), "--data", str(test), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lstm" in printed and "tfidf_lr" in printed and "majority" in printed
    assert {p.name for p in out.iterdir()} == {"metrics.csv", "metrics.json", "confusion_matrix.png"}
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 60 and m["results"]["lstm"]["accuracy"] > 0.8
    assert np.asarray(m["results"]["lstm"]["confusion"]).sum() == 60
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fit_fails(tmp_path, capsys, df_or_path, *extra, needles=()):
    if isinstance(df_or_path, pd.DataFrame):
        path = tmp_path / "bad.csv"
        df_or_path.to_csv(path, index=False)
    else:
        path = df_or_path
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["classify", "fit", str(path), "--text", "tweet", "--label", "sentiment", *FAST, "--out", str(out), *extra])
    assert rc == 2
    one_line_error(capsys, *needles)
    assert not out.exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_non_utf8_file_says_which_encoding_option(data_csv, tmp_path, capsys):
    _fit_fails(tmp_path, capsys, data_csv, needles=("not valid utf-8", "--encoding latin-1"))


def test_missing_label_column(tmp_path, capsys):
    _fit_fails(tmp_path, capsys, sentiment(30).drop(columns="sentiment"), needles=("no column 'sentiment'", "--label", "'tweet'"))


def test_single_class(tmp_path, capsys):
    _fit_fails(tmp_path, capsys, sentiment(30).assign(sentiment="pos"), needles=("single class", "'pos'"))


def test_empty_texts(tmp_path, capsys):
    df = sentiment(30)
    df.loc[[4, 9], "tweet"] = ""
    _fit_fails(tmp_path, capsys, df, needles=("2 empty or missing text(s)", "row(s) 5, 10"))


def test_missing_labels_unknown_encoding_and_bad_flags(tmp_path, capsys):
    df = sentiment(30)
    df.loc[3, "sentiment"] = ""
    _fit_fails(tmp_path, capsys, df, needles=("missing label", "row(s) 4"))
    _fit_fails(tmp_path, capsys, sentiment(30), "--encoding", "klingon", needles=("--encoding 'klingon'",))
    _fit_fails(tmp_path, capsys, sentiment(30), "--tokenizer", "sentencepiece", needles=("--tokenizer",))
    _fit_fails(tmp_path, capsys, tmp_path / "nope.csv", needles=("does not exist",))


def test_predict_and_evaluate_bad_inputs(model_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(["classify", "predict", str(tmp_path / "no_model"), "--text", "hi"]) == 2
    one_line_error(capsys, "does not exist")
    empty = tmp_path / "e.csv"
    pd.DataFrame({"tweet": ["fine", ""]}).to_csv(empty, index=False)
    assert main(["classify", "predict", str(model_dir), "--data", str(empty), "--out", str(tmp_path / "p.csv")]) == 2
    one_line_error(capsys, "empty", "row(s) 2")
    assert not (tmp_path / "p.csv").exists()
    nolabel = tmp_path / "n.csv"
    sentiment(10).drop(columns="sentiment").to_csv(nolabel, index=False)
    assert main(["classify", "evaluate", str(model_dir), "--data", str(nolabel), "--out", str(tmp_path / "ev")]) == 2
    one_line_error(capsys, "no column 'sentiment'", "--label")
    assert not (tmp_path / "ev").exists()
    assert main(["classify", "predict", str(model_dir)]) == 2
    one_line_error(capsys, "--data", "--text")
    # characters outside the vocabulary are handled, not a crash
    assert main(["classify", "predict", str(model_dir), "--text", "日本語 ✓ 😀"]) == 0


def test_resume_with_other_data_is_one_line_error(model_dir, tmp_path, capsys):
    out = tmp_path / "m"
    shutil.copytree(model_dir, out)
    before = (out / "config.json").read_bytes()
    other = tmp_path / "other.csv"
    pd.DataFrame({"tweet": [f"w{i} x{i % 7} y{i % 5}" for i in range(90)], "sentiment": ["a", "b", "c"] * 30}).to_csv(other, index=False)
    rc = main(["classify", "fit", str(other), "--text", "tweet", "--label", "sentiment", *FAST, "--out", str(out), "--resume"])
    assert rc == 2
    one_line_error(capsys, str(out / "checkpoints"), "differ from the checkpoint", "new --out", "--resume")
    assert (out / "config.json").read_bytes() == before



@pytest.mark.parametrize(("flag", "value", "needle"), [("--epochs", "nan", "--epochs: expected a finite number, got 'nan'"),
                                                       ("--epochs", "inf", "--epochs: expected a finite number, got 'inf'"),
                                                       ("--seed", "-1", "--seed must be a non-negative integer")])  # fmt: skip
def test_non_finite_epochs_and_negative_seed_are_one_line(data_csv, tmp_path, capsys, flag, value, needle):
    out = tmp_path / "m"
    rc = main(["classify", "fit", str(data_csv), "--text", "tweet", "--label", "sentiment", "--encoding", "latin-1",
               "--no-progress", flag, value, "--out", str(out)])  # fmt: skip
    assert rc == 2
    one_line_error(capsys, needle)
    assert not out.exists()
