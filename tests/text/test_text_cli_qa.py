"""The QA pass over `lstmkit classify | generate | translate`: PAIRS files as `translate predict --data`,
errors naming files, columns and flags (not the estimators' parameters), blank lines of .txt input, the
same flag spellings and the same `--quiet` in the three commands, TSV predictions, and the warnings of
`generate` (BPE vocabulary, unseen characters, --glob only for folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.errors import ConfigError


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")


def one_line_error(capsys, *needles: str, absent: tuple[str, ...] = ()) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    for n in absent:
        assert n not in err, err
    return err


# ------------------------------------------------------------------------------------------ data and models
WORDS = {"pos": ["great", "love", "happy"], "neg": ["awful", "hate", "sad"]}
CLS_FAST = ["--steps", "20", "--lr", "0.01", "--no-progress"]
TR_FAST = ["--steps", "20", "--lr", "0.01", "--hidden-size", "8", "--embed-dim", "8", "--batch-size", "16", "--no-progress"]
GEN_FAST = ["--steps", "5", "--hidden-size", "8", "--num-layers", "1", "--embed-dim", "8", "--seq-len", "8", "--batch-size", "2",
            "--lr", "0.02", "--orders", "2-3", "--no-progress"]  # fmt: skip
CODE = "def add(a, b):\n    return a + b\n\n" * 20


def tweets(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"tweet": " ".join(rng.choice(WORDS[y], 3)), "sentiment": y} for y in ["pos", "neg"] * (n // 2)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qa")
    tweets().to_csv(d / "tweets.csv", index=False)
    rng = np.random.default_rng(1)
    src = ["".join(rng.choice(list("abcd"), rng.integers(2, 5))) for _ in range(200)]
    (d / "pairs.tsv").write_text("".join(f"{s}\t{s[::-1]}\n" for s in src), encoding="utf-8")
    (d / "code.py").write_text(CODE, encoding="utf-8")
    return {"dir": d, "csv": d / "tweets.csv", "pairs": d / "pairs.tsv", "code": d / "code.py"}


@pytest.fixture(scope="module")
def clf(tmp_path_factory, files) -> Path:
    out = tmp_path_factory.mktemp("models") / "clf"
    assert main(["classify", "fit", str(files["csv"]), "--text", "tweet", "--label", "sentiment", *CLS_FAST,
                 "--hidden", "8", "--embed", "8", "--batch", "16", "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tr(tmp_path_factory, files) -> Path:
    out = tmp_path_factory.mktemp("models") / "tr"
    assert main(["translate", "fit", str(files["pairs"]), *TR_FAST, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def gen(tmp_path_factory, files) -> Path:
    out = tmp_path_factory.mktemp("models") / "gen"
    assert main(["generate", "fit", str(files["code"]), *GEN_FAST, "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------------------ 3, 4: translate predict --data
def test_translate_predict_skips_the_pairs_header_and_keeps_targets(tr, tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    data.write_text("source\ttarget\nabc\tcba\n\ndab\tbad\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", "predict", str(tr), "--data", str(data)]) == 0
    df = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), sep="\t", dtype=str)
    assert list(df.columns) == ["source", "target", "prediction"]
    assert list(df["source"]) == ["abc", "dab"] and list(df["target"]) == ["cba", "bad"]


@pytest.mark.parametrize(("line", "needle"), [("seven\t7\textra", "line 3 has 2 tabs"), ("seven", "line 3 has no tab")])
def test_translate_predict_bad_pairs_line_is_an_error_naming_the_line(tr, tmp_path, capsys, line, needle):
    data = tmp_path / "pairs.tsv"
    data.write_text(f"abc\tcba\ndab\tbad\n{line}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", "predict", str(tr), "--data", str(data)]) == 2
    one_line_error(capsys, "--data file", str(data), needle)


def test_translate_predict_one_column_file_is_sources_only(tr, tmp_path, capsys):
    data = tmp_path / "src.txt"
    data.write_text("abc\n\ndab\n", encoding="utf-8")
    out = tmp_path / "pred.tsv"
    assert main(["translate", "predict", str(tr), "--data", str(data), "--out", str(out)]) == 0
    df = pd.read_csv(out, sep="\t", dtype=str)
    assert list(df.columns) == ["source", "prediction"] and list(df["source"]) == ["abc", "dab"]


# ------------------------------------------------------------------------------------------ 8: messages name files, columns, flags
def test_header_only_csv_names_the_file_and_column(tmp_path, capsys):
    data = tmp_path / "empty.csv"
    data.write_text("tweet,sentiment\n", encoding="utf-8")
    assert main(["classify", "fit", str(data), "--text", "tweet", "--label", "sentiment", "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, str(data), "'tweet'", "--text", "no data rows", absent=("texts is empty",))


def test_empty_texts_and_labels_name_the_file_column_and_data_rows(tmp_path, capsys):
    df = tweets(20)
    df.loc[[5, 6], "tweet"] = ""
    data = tmp_path / "gaps.csv"
    df.to_csv(data, index=False)
    assert main(["classify", "fit", str(data), "--text", "tweet", "--label", "sentiment", "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, str(data), "column 'tweet' (--text)", "2 empty or missing text(s) at data row(s) 6, 7", "file line",
                   absent=("texts has",))  # fmt: skip
    df = tweets(20)
    df.loc[3, "sentiment"] = ""
    df.to_csv(data, index=False)
    assert main(["classify", "fit", str(data), "--text", "tweet", "--label", "sentiment", "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, str(data), "column 'sentiment' (--label)", "missing label(s) at data row(s) 4")


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--val-fraction", "1", "--val-fraction: expected a number in [0, 0.5), got '1'"),
    ("--epochs", "0", "--epochs: expected a positive number, got '0'"),
    ("--lr", "-1", "--lr: expected a positive number, got '-1'"),
    ("--vocab-size", "5", "--vocab-size: expected an integer of at least 8"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["classify", "translate", "generate"])
def test_bad_numbers_are_reported_with_their_flag(files, tmp_path, capsys, command, flag, value, needle):
    data = {"classify": [str(files["csv"]), "--text", "tweet", "--label", "sentiment"], "translate": [str(files["pairs"])],
            "generate": [str(files["code"])]}[command]  # fmt: skip
    out = tmp_path / "m"
    assert main([command, "fit", *data, flag, value, "--out", str(out)]) == 2
    one_line_error(capsys, needle, absent=("val_fraction", "vocab_size", "lr and epochs"))
    assert not out.exists()


@pytest.mark.parametrize("orders", ["9-3", "0-4", "3,12"])
def test_generate_bad_orders_name_the_flag(files, tmp_path, capsys, orders):
    assert main(["generate", "fit", str(files["code"]), "--orders", orders, "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, "--orders", repr(orders), absent=("ngram_orders", "()"))


def test_estimator_errors_reaching_the_cli_use_flags_but_python_keeps_parameter_names(files, tmp_path, capsys):
    from lstmkit.tasks.classifier import TextClassifier
    from lstmkit.tasks.generator import TextGenerator
    from lstmkit.text._cli_args import to_flags

    with pytest.raises(ConfigError, match=r"^val_fraction must be in \[0, 0.5\)"):
        TextClassifier(val_fraction=1)._check_params()
    with pytest.raises(ConfigError, match="ngram_orders must be integers"):
        TextGenerator(ngram_orders=())._check_params()
    assert to_flags("lr and epochs must be positive, got lr=-1, epochs=0") == "--lr and --epochs must be positive, got --lr=-1, --epochs=0"
    assert to_flags("ngram_orders must be…; target_tokenizer, tokenizer") == "--orders must be…; --target-tokenizer, --tokenizer"
    assert main(["translate", "fit", str(files["pairs"]), "--seed", "-1", "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, "--seed must be a non-negative integer")


# ------------------------------------------------------------------------------------------ 9: --glob only for folders
def test_non_utf8_single_file_does_not_suggest_glob(gen, tmp_path, capsys):
    latin = tmp_path / "diary_latin1.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 20)
    assert main(["generate", "fit", str(latin), "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, "not UTF-8", "iconv", absent=("--glob",))
    assert main(["generate", "evaluate", str(gen), "--data", str(latin)]) == 2
    one_line_error(capsys, "not UTF-8", absent=("--glob",))
    assert main(["generate", "inspect", str(gen), "--data", str(latin), "--out", str(tmp_path / "v.html")]) == 2
    one_line_error(capsys, "not UTF-8", absent=("--glob",))
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(CODE, encoding="utf-8")
    (folder / "b.dat").write_bytes(latin.read_bytes())
    assert main(["generate", "fit", str(folder), "--out", str(tmp_path / "m")]) == 2
    one_line_error(capsys, "b.dat", "--glob")


# ------------------------------------------------------------------------------------------ 10, 13: classify predict inputs and outputs
def test_classify_predict_skips_blank_lines_of_a_txt_file(clf, tmp_path, capsys):
    data = tmp_path / "texts.txt"
    data.write_text("great love\nawful hate\n\n   \nhappy happy\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["classify", "predict", str(clf), "--data", str(data), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 blank line(s)" in err and "3, 4" in err
    assert list(pd.read_csv(out)["text"]) == ["great love", "awful hate", "happy happy"]


def test_classify_predict_empty_text_flag_names_the_flag(clf, capsys):
    assert main(["classify", "predict", str(clf), "--text", "great", "--text", " "]) == 2
    one_line_error(capsys, "--text number 2 (of 2) is empty", absent=("texts has",))


def test_classify_predict_writes_tsv(clf, tmp_path):
    out = tmp_path / "pred.tsv"
    assert main(["classify", "predict", str(clf), "--text", "great love", "--text", "awful", "--out", str(out)]) == 0
    df = pd.read_csv(out, sep="\t")
    assert list(df.columns)[:2] == ["tweet", "prediction"] and {"prob_neg", "prob_pos"} <= set(df.columns)


def test_classify_predict_rejects_other_suffixes(clf, tmp_path, capsys):
    assert main(["classify", "predict", str(clf), "--text", "great", "--out", str(tmp_path / "p.json")]) == 2
    one_line_error(capsys, ".csv, .tsv or .parquet")


# ------------------------------------------------------------------------------------------ 11: flag spellings and --quiet
@pytest.mark.parametrize("command", ["classify", "translate", "generate"])
def test_both_flag_spellings_are_accepted(command):
    from lstmkit.cli import build_parser

    extra = ["--text", "t", "--label", "y"] if command == "classify" else []
    for spelling in (["--hidden-size", "12", "--num-layers", "2", "--embed-dim", "6", "--batch-size", "3"],
                     ["--hidden", "12", "--layers", "2", "--embed", "6", "--batch", "3"]):  # fmt: skip
        a = build_parser().parse_args([command, "fit", "DATA", *extra, *spelling, "--out", "m"])
        got = {k: getattr(a, k, None) for k in ("hidden_size", "num_layers", "embed_dim", "batch_size", "hidden", "layers", "embed", "batch")}
        assert sorted(v for v in got.values() if v is not None) == [2, 3, 6, 12], got


def test_generate_fit_takes_hidden_size(gen):
    cfg = json.loads((gen / "config.json").read_text())
    assert cfg["params"]["hidden_size"] == 8 and cfg["params"]["embed_dim"] == 8 and cfg["params"]["batch_size"] == 2


@pytest.mark.parametrize("command", ["classify", "translate", "generate"])
def test_quiet_fit_prints_results_but_no_progress_or_info(files, tmp_path, capsys, command):
    data = {"classify": [str(files["csv"]), "--text", "tweet", "--label", "sentiment", *CLS_FAST], "translate": [str(files["pairs"]), *TR_FAST],
            "generate": [str(files["code"]), *GEN_FAST]}[command]  # fmt: skip
    capsys.readouterr()
    assert main([command, "fit", *data, "--quiet", "--out", str(tmp_path / "m")]) == 0
    got = capsys.readouterr()
    assert got.out.startswith("model:") and "INFO" not in got.err and "%|" not in got.err, got


def test_quiet_predict_and_evaluate_of_the_three(clf, tr, gen, files, tmp_path, capsys):
    capsys.readouterr()
    assert main(["classify", "predict", str(clf), "--text", "great", "--quiet"]) == 0
    assert main(["classify", "evaluate", str(clf), "--data", str(files["csv"]), "--out", str(tmp_path / "e1"), "--quiet"]) == 0
    assert main(["translate", "predict", str(tr), "--text", "abc", "--quiet"]) == 0
    assert main(["translate", "evaluate", str(tr), "--data", str(files["pairs"]), "--out", str(tmp_path / "e2"), "--quiet"]) == 0
    assert main(["generate", "evaluate", str(gen), "--data", str(files["code"]), "--quiet"]) == 0
    got = capsys.readouterr()
    assert "prediction" in got.out and "accuracy" in got.out and "BLEU" in got.out and "bits/char" in got.out
    assert "INFO" not in got.err, got.err


# ------------------------------------------------------------------------------------------ 13: generate warnings
def test_generate_bpe_vocab_below_260_warns(files, tmp_path, capsys):
    pytest.importorskip("tokenizers")
    out = tmp_path / "bpe"
    assert main(["generate", "fit", str(files["code"]), *GEN_FAST, "--tokenizer", "bpe", "--vocab-size", "10", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--vocab-size 10 is below the 260" in err


def test_generate_inspect_warns_about_unseen_characters(gen, tmp_path, capsys):
    capsys.readouterr()
    assert main(["generate", "inspect", str(gen), "--text", "def add(a, b): Ñ", "--out", str(tmp_path / "v.html")]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "never saw" in err and "'Ñ'" in err
