"""The folders the commands write into and read from: a ``fit`` never overwrites another task's model or
someone's files (``--resume`` / ``--force`` for its own model only), an ``evaluate`` never writes into a
model or a foreign folder, a MODEL_DIR that is not a model says so, ``| head`` ends quietly with 0, and an
unknown flag points to the sub-command's help. Each refusal: exit 2, one ``error:`` line, the folder's
files byte-identical afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lstmkit.cli import main

GEN_FAST = ["--steps", "5", "--hidden", "8", "--layers", "1", "--embed", "4", "--seq-len", "16", "--batch", "4",
            "--orders", "2-3", "--no-progress"]  # fmt: skip
CLF_FAST = ["--steps", "5", "--hidden-size", "4", "--embed-dim", "4", "--no-progress", "--no-baseline"]
CODE = "def add(a, b):\n    return a + b\n\n\nclass Point:\n    x = 0\n    y = 0\n\n" * 12


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("LSTMKIT_THREADS", "1")  # the suite's convention (see conftest.py)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("data")
    (d / "code.txt").write_text(CODE, encoding="utf-8")
    rows = ["text,label"] + [f"{w} {w} thing,{lab}" for i in range(30) for w, lab in [(("good", "bad")[i % 2], ("pos", "neg")[i % 2])]]
    (d / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"text": d / "code.txt", "csv": d / "reviews.csv", "dir": d}


@pytest.fixture(scope="module")
def models(tmp_path_factory, data) -> dict[str, Path]:
    """A real text generator and a real text classifier (never modified by the tests: they copy them)."""
    root = tmp_path_factory.mktemp("models")
    assert main(["-q", "generate", "fit", str(data["text"]), *GEN_FAST, "--out", str(root / "gen")]) == 0
    assert main(["-q", "classify", "fit", str(data["csv"]), "--text", "text", "--label", "label", *CLF_FAST,
                 "--out", str(root / "clf")]) == 0  # fmt: skip
    return {"gen": root / "gen", "clf": root / "clf"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def refused(capsys, argv: list, *needles: str, untouched: Path | None = None) -> str:
    """Run argv: exit 2, one `error:` line holding every needle; `untouched` byte-identical, nothing beside it."""
    before = snapshot(untouched) if untouched is not None else None
    siblings = sorted(p.name for p in untouched.parent.iterdir()) if untouched is not None else None
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    if untouched is not None:
        assert snapshot(untouched) == before, f"{untouched} was modified"
        assert sorted(p.name for p in untouched.parent.iterdir()) == siblings, "something was written beside it"
    return lines[0]


# ------------------------------------------------------------------------------------------ 1. fit --out
def test_fit_refuses_a_folder_holding_another_tasks_model(models, data, tmp_path, capsys):
    clf = copy(models["clf"], tmp_path / "clf")
    line = refused(capsys, ["generate", "fit", data["text"], *GEN_FAST, "--out", clf],
                   "--out", "already holds an lstmkit text classifier", "new folder", untouched=clf)  # fmt: skip
    assert "never another task's model" in line
    # --force and --resume replace / continue only a model of the same task
    for flag in ("--force", "--resume"):
        refused(capsys, ["generate", "fit", data["text"], *GEN_FAST, flag, "--out", clf],
                "already holds an lstmkit text classifier", untouched=clf)  # fmt: skip
    gen = copy(models["gen"], tmp_path / "gen")
    refused(capsys, ["classify", "fit", data["csv"], "--text", "text", "--label", "label", *CLF_FAST, "--force", "--out", gen],
            "already holds an lstmkit text generator", untouched=gen)  # fmt: skip


@pytest.mark.parametrize("task", ["forecast", "classify", "generate", "translate"])
def test_every_fit_refuses_other_models_and_foreign_files(task, tmp_path, capsys):
    """Refused before the data is read (DATA does not even exist): the check is the same for the four fits."""
    other = {"forecast": "lstmkit.text_generator"}.get(task, "lstmkit.forecaster")
    words = {"lstmkit.text_generator": "text generator", "lstmkit.forecaster": "forecaster"}[other]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": other, "format_version": 1}))
    (folder / "weights.safetensors").write_bytes(b"not really")
    extra = ["--text", "t", "--label", "l"] if task == "classify" else []
    refused(capsys, [task, "fit", tmp_path / "nope.csv", *extra, "--force", "--out", folder],
            f"already holds an lstmkit {words}", untouched=folder)  # fmt: skip

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"learning_rate": 0.1}\n')  # the user's own config.json
    (mine / "notes.txt").write_text("mine\n")
    refused(capsys, [task, "fit", tmp_path / "nope.csv", *extra, "--force", "--out", mine],
            "not an lstmkit model", untouched=mine)  # fmt: skip
    (mine / "config.json").unlink()
    (mine / "metrics.json").write_text('{"mine": 1}\n')
    refused(capsys, [task, "fit", tmp_path / "nope.csv", *extra, "--force", "--out", mine],
            "is not empty and holds no lstmkit model", "metrics.json", untouched=mine)  # fmt: skip


def test_fit_over_its_own_model_needs_resume_or_force(models, data, tmp_path, capsys):
    gen = copy(models["gen"], tmp_path / "gen")
    refused(capsys, ["generate", "fit", data["text"], *GEN_FAST, "--out", gen],
            f"--out '{gen}' already holds an lstmkit text generator; pass a new folder, --resume to continue its "
            "training, or --force to replace it", untouched=gen)  # fmt: skip
    old = (gen / "weights.safetensors").read_bytes()
    assert main(["-q", "generate", "fit", str(data["text"]), *GEN_FAST, "--seed", "7", "--force", "--out", str(gen)]) == 0
    assert (gen / "weights.safetensors").read_bytes() != old
    assert json.loads((gen / "config.json").read_text())["format"] == "lstmkit.text_generator"
    capsys.readouterr()
    assert main(["-q", "generate", "fit", str(data["text"]), *GEN_FAST, "--resume", "--out", str(gen)]) == 0


def test_force_leaves_no_file_of_the_old_model(data, tmp_path, capsys):
    clf = tmp_path / "clf"
    fit = ["-q", "classify", "fit", str(data["csv"]), "--text", "text", "--label", "label", *CLF_FAST[:-1], "--out", str(clf)]
    assert main(fit) == 0  # with the TF-IDF baseline: baseline.json
    assert (clf / "baseline.json").is_file()
    (clf / "notes.txt").write_text("mine\n")
    assert main([*fit, "--no-baseline", "--force"]) == 0
    names = {p.name for p in clf.iterdir()}
    assert "baseline.json" not in names and {"config.json", "weights.safetensors", "notes.txt"} <= names
    capsys.readouterr()
    assert main(["classify", "predict", str(clf), "--text", "good good thing"]) == 0


def test_fit_into_new_or_empty_folder_and_interrupted_checkpoints(tmp_path, capsys):
    from argparse import Namespace

    from lstmkit.text._cli_common import check_model_out

    args = Namespace(command="generate", action="fit", resume=False, force=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_model_out(empty, args) == empty
    assert check_model_out(tmp_path / "new", args) == tmp_path / "new"
    interrupted = tmp_path / "interrupted"
    (interrupted / "checkpoints").mkdir(parents=True)
    (interrupted / "checkpoints" / "checkpoint.json").write_text("{}")
    refused(capsys, ["generate", "fit", tmp_path / "nope.txt", "--out", interrupted],
            "checkpoints of an interrupted training", "--resume", untouched=interrupted)  # fmt: skip
    for flag in ("resume", "force"):
        assert check_model_out(interrupted, Namespace(**{**vars(args), flag: True})) == interrupted


def test_the_four_fits_take_force(capsys):
    for task in ("forecast", "classify", "generate", "translate"):
        with pytest.raises(SystemExit):
            main([task, "fit", "--help"])
        assert "--force" in capsys.readouterr().out, task


# ------------------------------------------------------------------------------------------ 2. evaluate --out
def test_evaluate_never_writes_into_a_model_or_foreign_folder(models, data, tmp_path, capsys):
    gen = copy(models["gen"], tmp_path / "genX")
    argv = ["classify", "evaluate", models["clf"], "--data", data["csv"]]
    refused(capsys, [*argv, "--out", gen], "holds an lstmkit text generator", untouched=gen)
    own = copy(models["clf"], tmp_path / "clf")
    refused(capsys, ["classify", "evaluate", own, "--data", data["csv"], "--out", own], "holds an lstmkit text classifier", untouched=own)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"mine": 1}\n')
    refused(capsys, [*argv, "--out", mine], "not an lstmkit evaluation", untouched=mine)
    (mine / "metrics.json").unlink()
    (mine / "notes.txt").write_text("mine\n")
    refused(capsys, [*argv, "--out", mine], "notes.txt", untouched=mine)
    # forecast evaluate has the same guard
    refused(capsys, ["forecast", "evaluate", tmp_path / "nope.csv", "--horizon", "2", "--out", gen],
            "holds an lstmkit text generator", untouched=gen)  # fmt: skip

    # an earlier evaluation is replaced, as before
    ev = tmp_path / "ev"
    assert main(["-q", *map(str, argv), "--out", str(ev)]) == 0
    assert main(["-q", *map(str, argv), "--out", str(ev)]) == 0
    assert {"metrics.json", "metrics.csv"} <= {p.name for p in ev.iterdir()}


# ------------------------------------------------------------------------------------------ 3. MODEL_DIR messages
def test_model_dir_that_is_not_a_model_says_what_it_is(models, data, capsys):
    refused(capsys, ["classify", "predict", data["csv"], "--text", "hi"],
            f"'{data['csv']}' is a file, not a model directory; pass the --out folder of `lstmkit classify fit`")  # fmt: skip
    line = refused(capsys, ["classify", "predict", data["dir"], "--text", "hi"],
                   f"'{data['dir']}' is not an lstmkit model directory")  # fmt: skip
    assert "incomplete" not in line and "fit the model again" not in line
    gen = models["gen"]
    refused(capsys, ["classify", "predict", gen, "--text", "hi"],
            f"'{gen}' holds an lstmkit text generator, not a text classifier; use `lstmkit generate sample {gen}`")  # fmt: skip
    clf = models["clf"]
    refused(capsys, ["generate", "sample", clf], f"'{clf}' holds an lstmkit text classifier, not a text generator; use `lstmkit classify predict {clf}")


# ------------------------------------------------------------------------------------------ 4. | head
def test_broken_pipe_exits_quietly_with_0(monkeypatch, capsys):
    from lstmkit import cli

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_datasets_list", closed_pipe)
    assert main(["datasets", "list"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("lines", [3, 200_000])  # flushed at the end / broken mid-way
def test_piping_into_head_exits_0_without_a_traceback(lines):
    child = textwrap.dedent(f"""
        import sys, time
        import lstmkit.cli as cli

        def spew(args):
            time.sleep(0.5)  # the reader has left by now
            for i in range({lines}):
                print("line", i)

        cli.cmd_datasets_list = spew
        sys.exit(cli.main(["datasets", "list"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    proc.stdout.close()  # like `head` that has read what it wanted
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err


# ------------------------------------------------------------------------------------------ 5. unknown flags
@pytest.mark.parametrize(
    ("argv", "help_of"),
    [
        (["generate", "fit", "x.txt", "--out", "m", "--bogus", "3"], "lstmkit generate fit"),
        (["classify", "predict", "m", "--text", "a", "--nope"], "lstmkit classify predict"),
        (["datasets", "list", "extra"], "lstmkit datasets list"),
    ],
)
def test_unknown_arguments_point_to_the_sub_commands_help(argv, help_of, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, argv, "unrecognized arguments:", f"(see `{help_of} --help`)")
    assert "`lstmkit --help`" not in line
    assert not (tmp_path / "m").exists()
