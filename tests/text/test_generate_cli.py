"""`lstmkit generate fit | sample | evaluate | inspect` (through lstmkit.text.generate_cli.main): the round
trip, and every bad input ending as one line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import pytest

from lstmkit.text.generate_cli import main

FAST = ["--steps", "30", "--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch", "4",
        "--lr", "0.02", "--orders", "2-4", "--no-progress"]  # fmt: skip
CODE = "def add(a, b):\n    return a + b\n\n\nclass Point:\n    x = 0\n    y = 0\n\n" * 12


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "code.py"
    path.write_text(CODE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, text_file) -> Path:
    out = tmp_path_factory.mktemp("models") / "gen"
    assert main(["generate", "fit", str(text_file), *FAST, "--out", str(out)]) == 0
    return out


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_fit_writes_the_model_dir_and_prints_both_models(model_dir, text_file, tmp_path, capsys):
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "tokenizer.json", "weights.safetensors", "metrics.json", "checkpoints"} <= names
    metrics = json.loads((model_dir / "metrics.json").read_text())
    val = metrics["validation"]["results"]
    assert set(val) == {"lstm", "ngram"} and val["ngram"]["order"] in (2, 3, 4)
    assert metrics["n_val_chars"] == round(0.1 * len(CODE))
    out = tmp_path / "again"
    assert main(["generate", "fit", str(text_file), *FAST, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "LSTM" in printed and "n-gram (order" in printed and "bits/char" in printed


def test_sample_is_deterministic_for_a_seed(model_dir, capsys):
    args = ["generate", "sample", str(model_dir), "--prompt", "def ", "--length", "40", "--seed", "7", "--top-k", "5"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("def ") and len(first.rstrip("\n")) >= 4 + 40 - first.count("\n")


def test_sample_with_unknown_prompt_characters_warns_and_succeeds(model_dir, capsys):
    assert main(["generate", "sample", str(model_dir), "--prompt", "déf ✓", "--length", "10"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("déf ✓")
    assert "never saw" in captured.err and "'é'" in captured.err and "Traceback" not in captured.err


def test_evaluate_prints_and_writes_both_scores(model_dir, text_file, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["generate", "evaluate", str(model_dir), "--data", str(text_file), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "LSTM" in printed and "n-gram" in printed
    scores = json.loads(out.read_text())
    assert scores["n_chars"] == len(CODE)
    assert scores["results"]["ngram"]["bpc"] < scores["results"]["lstm"]["bpc"] + 5  # both finite numbers
    assert 0 < scores["results"]["lstm"]["bpc"] < 10


def test_inspect_writes_the_cell_view(model_dir, tmp_path):
    out = tmp_path / "view.html"
    assert main(["generate", "inspect", str(model_dir), "--text", "class Point:", "--units", "0,3", "--out", str(out)]) == 0
    page = out.read_text()
    assert "unit 0" in page and "unit 3" in page
    assert page.count("<span") == 2 * len("class Point:")  # one coloured span per character and unit


def test_resume_continues_from_checkpoints(text_file, tmp_path):
    out = tmp_path / "r"
    assert main(["generate", "fit", str(text_file), *FAST, "--out", str(out)]) == 0
    first = json.loads((out / "config.json").read_text())["history"]
    assert main(["generate", "fit", str(text_file), *FAST, "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "config.json").read_text())["history"]
    assert again == first  # the checkpoint was already at the last step: nothing more to train


def bad_file(tmp_path: Path) -> Path:
    p = tmp_path / "latin1.txt"
    p.write_bytes("naïve".encode("latin-1"))
    return p


@pytest.mark.parametrize(
    "case, needles",
    [
        ("missing", ["does not exist"]),
        ("empty", ["empty"]),
        ("non_utf8", ["latin1.txt", "not UTF-8", "offset 2"]),
        ("out_is_file", ["is a file"]),
        ("bad_tokenizer", ["--tokenizer"]),
    ],
)
def test_fit_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, needles):
    out = tmp_path / "m"
    data = tmp_path / "x.txt"
    extra: list[str] = []
    if case == "missing":
        data = tmp_path / "nope.txt"
    elif case == "empty":
        data.write_text("  \n\n")
    elif case == "non_utf8":
        data = bad_file(tmp_path)
    elif case == "out_is_file":
        data.write_text(CODE)
        out.write_text("not a folder")
    else:
        data.write_text(CODE)
        extra = ["--tokenizer", "word"]
    assert main(["generate", "fit", str(data), *FAST, *extra, "--out", str(out)]) == 2
    one_line_error(capsys, *needles)
    assert not out.is_dir()
    assert not [p for p in tmp_path.iterdir() if ".staging" in p.name]


@pytest.mark.parametrize("temperature", ["0", "-0.5", "nan"])
def test_sample_non_positive_temperature(model_dir, capsys, temperature):
    assert main(["generate", "sample", str(model_dir), "--prompt", "def", "--temperature", temperature]) == 2
    one_line_error(capsys, "--temperature")


def test_missing_model_dir_and_data(model_dir, tmp_path, capsys):
    assert main(["generate", "sample", str(tmp_path / "nothing"), "--prompt", "x"]) == 2
    one_line_error(capsys, "does not exist")
    assert main(["generate", "evaluate", str(model_dir), "--data", str(tmp_path / "nope.txt")]) == 2
    one_line_error(capsys, "nope.txt", "does not exist")
    assert main(["generate", "evaluate", str(model_dir), "--data", str(bad_file(tmp_path))]) == 2
    one_line_error(capsys, "not UTF-8")
    assert main(["generate", "inspect", str(model_dir), "--text", "x", "--units", "99", "--out", str(tmp_path / "v.html")]) == 2
    one_line_error(capsys, "--units")
    assert not (tmp_path / "v.html").exists()


def test_resume_with_another_text_is_one_line_error(model_dir, tmp_path, capsys):
    out = tmp_path / "gen"
    shutil.copytree(model_dir, out)
    before = (out / "config.json").read_bytes()
    other = tmp_path / "other.txt"
    other.write_text("ΑΒΓΔ αβγδ ЖЗИЙ — 0123456789 !?\n" * 40, encoding="utf-8")  # another vocabulary
    assert main(["generate", "fit", str(other), *FAST, "--out", str(out), "--resume"]) == 2
    one_line_error(capsys, str(out / "checkpoints"), "differ from the checkpoint", "new --out", "--resume")
    assert (out / "config.json").read_bytes() == before



def test_resume_with_a_vocabulary_of_the_same_size_is_refused_too(model_dir, tmp_path, capsys):
    """Same parameter shapes, other meaning: rot13 maps the letters one to one, so the vocabulary has the same size."""
    out = tmp_path / "gen"
    shutil.copytree(model_dir, out)
    other = tmp_path / "rot13.py"
    other.write_text(codecs.encode(CODE, "rot13"), encoding="utf-8")
    assert main(["generate", "fit", str(other), *FAST, "--out", str(out), "--resume"]) == 2
    one_line_error(capsys, str(out / "checkpoints"), "differ from the checkpoint", "another vocabulary")
