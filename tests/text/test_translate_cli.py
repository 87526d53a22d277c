"""`lstmkit translate fit | predict | evaluate | demo` (through lstmkit.text.translate_cli.main): the round
trip, and bad inputs ending as one line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit.text.translate_cli import main

FAST = ["--steps", "150", "--lr", "0.01", "--hidden-size", "32", "--embed-dim", "16", "--dropout", "0", "--batch-size", "32", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")


def reverse_lines(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    src = ["".join(rng.choice(list("abcdé"), rng.integers(2, 6))) for _ in range(n)]
    return "".join(f"{s}\t{s[::-1]}\n" for s in src)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("data")
    (d / "train.tsv").write_text(reverse_lines(1500, 0), encoding="utf-8")
    (d / "test.tsv").write_text(reverse_lines(100, 1), encoding="utf-8")
    return {"train": d / "train.tsv", "test": d / "test.tsv", "dir": d}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("models") / "m"
    assert main(["translate", "fit", str(data["train"]), *FAST, "--beam", "3", "--out", str(out)]) == 0
    return out


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


# ------------------------------------------------------------------------------------------ round trip
def test_fit_writes_a_complete_model_dir(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "source_tokenizer.json", "target_tokenizer.json", "weights.safetensors", "baseline.json", "metrics.json"} <= names
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["params"]["beam_size"] == 3 and cfg["params"]["hidden_size"] == 32
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["validation"]["results"]["lstm"]["exact_match"] >= 0.9


def test_predict_text_prints_tsv(model_dir, capsys):
    assert main(["translate", "predict", str(model_dir), "--text", "abcd", "--text", "éda"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "source\tprediction"
    assert out[1:] == ["abcd\tdcba", "éda\tadé"]


def test_predict_data_writes_inputs_plus_prediction(model_dir, data, tmp_path, capsys):
    for name, sep in (("p.tsv", "\t"), ("p.csv", ",")):
        assert main(["translate", "predict", str(model_dir), "--data", str(data["test"]), "--out", str(tmp_path / name)]) == 0
        df = pd.read_csv(tmp_path / name, sep=sep, dtype=str, keep_default_na=False)
        assert list(df.columns) == ["source", "target", "prediction"] and len(df) == 100
        assert (df["prediction"] == df["target"]).mean() >= 0.9
        assert f"{name} — 100 texts" in capsys.readouterr().out
    (tmp_path / "plain.txt").write_text("abc\n\nbad\n", encoding="utf-8")
    assert main(["translate", "predict", str(model_dir), "--data", str(tmp_path / "plain.txt"), "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["source\tprediction", "abc\tcba", "bad\tdab"]


def test_evaluate_prints_a_table_and_writes_metrics(model_dir, data, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["translate", "evaluate", str(model_dir), "--data", str(data["test"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exact match" in text and "nearest_neighbour" in text and "copy_source" in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["beam_size"] == 3 and m["n"] == 100 and m["results"]["lstm"]["exact_match"] >= 0.9
    assert {p.name for p in out.iterdir()} == {"metrics.json", "metrics.csv", "predictions.tsv"}


def test_unknown_characters_warn_on_one_line_and_still_translate(model_dir, capsys):
    assert main(["translate", "predict", str(model_dir), "--text", "abΩ"]) == 0
    cap = capsys.readouterr()
    assert len(cap.out.splitlines()) == 2
    warn = [line for line in cap.err.splitlines() if line.strip()]
    assert len(warn) == 1 and warn[0].startswith("WARNING") and "'Ω'" in warn[0]


def test_demo_export_and_demo_data_in_fit_and_evaluate(tmp_path, capsys):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    assert main(["translate", "demo", "dates", "--out", str(train), "--n", "300"]) == 0
    assert main(["translate", "demo", "dates", "--out", str(test), "--n", "50", "--split", "test"]) == 0
    tr = [line.split("\t") for line in train.read_text(encoding="utf-8").splitlines()]
    te = [line.split("\t") for line in test.read_text(encoding="utf-8").splitlines()]
    assert len(tr) == 300 and len(te) == 50 and all(len(p) == 2 for p in tr + te)
    assert not {s for s, _ in tr} & {s for s, _ in te}
    assert "300 train pairs of dates" in capsys.readouterr().out
    out = tmp_path / "m"
    assert main(["translate", "fit", "demo:numbers-pt", "--n", "200", "--steps", "3", "--hidden", "8", "--quiet", "--out", str(out)]) == 0
    got = capsys.readouterr()
    assert (out / "config.json").exists() and got.out.startswith("model:") and "INFO" not in got.err  # --quiet: results only
    assert main(["translate", "evaluate", str(out), "--data", "demo:numbers-pt", "--n", "20", "--beam", "1"]) == 0
    assert "20 pairs" in capsys.readouterr().out


def test_resume_continues_from_the_checkpoints(data, tmp_path):
    out = tmp_path / "m"
    args = ["translate", "fit", str(data["train"]), "--hidden", "8", "--batch-size", "64", "--no-progress", "--out", str(out)]
    assert main([*args, "--steps", "60"]) == 0  # epochs of 50 steps: validations at steps 50 and 60
    assert (out / "checkpoints" / "checkpoint.json").exists()
    assert main([*args, "--steps", "120", "--resume"]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    # Continued from step 60 (a fresh run would validate at 50, 100, 120 only).
    assert [row["step"] for row in history] == [50, 60, 100, 120]


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "content,needles",
    [
        (b"abc\tcba\nno tab here\n", ["line 2", "no tab"]),
        ("ab\tba\nc\u00e9\t\u00e9c\n".encode("latin-1"), ["line 2", "not valid utf-8", "--encoding"]),
        (b"ab\tba\ncd\t\n", ["empty target", "line(s) 2"]),
        (b"", ["holds no pairs"]),
    ],
)  # fmt: skip
def test_fit_bad_pairs_file(tmp_path, capsys, content, needles):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(content)
    out = tmp_path / "m"
    assert main(["translate", "fit", str(bad), *FAST, "--out", str(out)]) == 2
    one_line_error(capsys, "bad.tsv", *needles)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["translate", "fit", "missing.tsv", "--out", "{tmp}/m"], ["does not exist"]),
        (["translate", "fit", "demo:klingon", "--out", "{tmp}/m"], ["unknown translation demo", "dates"]),
        (["translate", "fit", "{train}", "--lr", "-1", "--out", "{tmp}/m"], ["lr"]),
        (["translate", "fit", "{train}", "--steps", "0", "--out", "{tmp}/m"], ["--steps", "positive integer"]),
        (["translate", "fit", "{train}", "--out", "{train}"], ["is a file"]),
        (["translate", "predict", "{tmp}/nowhere", "--text", "ab"], ["does not exist"]),
        (["translate", "predict", "{model}", "--text", "ab", "--out", "{tmp}/p.json"], [".tsv or .csv"]),
        (["translate", "predict", "{model}", "--text", "  "], ["empty"]),
        (["translate", "predict", "{model}"], ["--data", "--text"]),
        (["translate", "evaluate", "{model}", "--data", "{tmp}/missing.tsv"], ["does not exist"]),
        (["translate", "demo", "numbers", "--out", "{tmp}/d.tsv"], ["unknown translation demo"]),
        (["translate", "demo", "dates", "--out", "{tmp}/d.csv"], [".tsv"]),
    ],
)  # fmt: skip
def test_bad_arguments_end_as_one_line_and_exit_2(argv, needles, model_dir, data, tmp_path, capsys):
    subst = {"{tmp}": str(tmp_path), "{train}": str(data["train"]), "{model}": str(model_dir)}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        args.append(a)
    assert main(args) == 2
    one_line_error(capsys, *needles)
    assert not (tmp_path / "m").exists() and not (tmp_path / "p.json").exists() and not (tmp_path / "d.csv").exists()


def test_evaluate_with_a_non_utf8_file_names_the_line(model_dir, tmp_path, capsys):
    bad = tmp_path / "test.tsv"
    bad.write_bytes("ab\tba\n\nc\u00e9\t\u00e9c\n".encode("cp1252"))
    out = tmp_path / "ev"
    assert main(["translate", "evaluate", str(model_dir), "--data", str(bad), "--out", str(out)]) == 2
    one_line_error(capsys, "test.tsv", "line 3")
    assert not out.exists()
    assert main(["translate", "evaluate", str(model_dir), "--data", str(bad), "--encoding", "cp1252", "--out", str(out)]) == 0


def test_resume_with_other_pairs_is_one_line_error(model_dir, tmp_path, capsys):
    out = tmp_path / "m"
    shutil.copytree(model_dir, out)
    before = (out / "config.json").read_bytes()
    other = tmp_path / "other.tsv"
    other.write_text("".join(f"{i}\tn{i * 7}xyzw\n" for i in range(300)), encoding="utf-8")  # other characters
    assert main(["translate", "fit", str(other), *FAST, "--out", str(out), "--resume"]) == 2
    one_line_error(capsys, str(out / "checkpoints"), "differ from the checkpoint", "new --out", "--resume")
    assert (out / "config.json").read_bytes() == before



@pytest.mark.parametrize(("flag", "value", "needle"), [("--epochs", "nan", "--epochs: expected a finite number, got 'nan'"),
                                                       ("--epochs", "inf", "--epochs: expected a finite number, got 'inf'"),
                                                       ("--seed", "-1", "--seed must be a non-negative integer")])  # fmt: skip
def test_non_finite_epochs_and_negative_seed_are_one_line(data, tmp_path, capsys, flag, value, needle):
    out = tmp_path / "m"
    assert main(["translate", "fit", str(data["train"]), "--no-progress", flag, value, "--out", str(out)]) == 2
    one_line_error(capsys, needle)
    assert not out.exists()
