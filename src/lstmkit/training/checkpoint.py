"""Atomic, pickle-free files: JSON, safetensors, and training checkpoints that resume exactly.

Everything is written to a temporary file in the target's folder and renamed over the target, so a
crash (or ``kill -9``) never leaves a half-written file behind. Nothing is ever unpickled: tensors go to
safetensors, everything else to JSON.

A training checkpoint holds the model's parameters, the optimiser's state (Adam's moments and step
counts as tensors, its hyper-parameters as JSON), the random number generators' states and the loop's
counters — enough to continue as if never stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lstmkit.errors import ModelDirError


def _publishable(tmp: str) -> None:
    """mkstemp creates owner-only files; give the final file the usual mode (0666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publishable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """Write ``tensors`` as safetensors atomically; returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        digest = sha256_file(tmp)
        _publishable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json(path: str | Path, what: str = "file") -> dict:
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"{what} {str(path)!r} is missing; the model directory is incomplete — fit the model again")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(f"{what} {str(path)!r} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}); "
                            "it was damaged or edited — fit the model again") from None


def read_tensors(path: str | Path, what: str = "weights", sha256: str | None = None) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"{what} file {str(path)!r} is missing; the model directory is incomplete — fit again")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ModelDirError(
            f"{what} file {str(path)!r} does not match the checksum recorded when it was saved: it was modified "
            "or damaged; fit the model again or restore the original file"
        )
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ModelDirError(f"{what} file {str(path)!r} is not a valid safetensors file ({e}); fit again") from None


# ---------------------------------------------------------------------------------------- checkpoints
def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state dict into tensors (for safetensors) and plain values (for JSON)."""
    sd = opt.state_dict()
    tensors, plain_state = {}, {}
    for idx, st in sd["state"].items():
        plain_state[str(idx)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                plain_state[str(idx)][k] = v
    return tensors, {"state": plain_state, "param_groups": sd["param_groups"]}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict) -> None:
    state: dict[int, dict] = {int(i): dict(v) for i, v in plain["state"].items()}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    generator: torch.Generator,
    counters: dict,
) -> None:
    """Write ``checkpoint.safetensors`` + ``checkpoint.json`` (the JSON last: it marks completeness)."""
    folder = Path(folder)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_plain = optimizer_to_tensors(opt)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.sampler"] = generator.get_state()
    digest = atomic_save_tensors(folder / "checkpoint.safetensors", tensors)
    atomic_write_json(folder / "checkpoint.json", {"counters": counters, "optimizer": opt_plain, "sha256": digest})


def load_checkpoint(folder: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator) -> dict | None:
    """Restore a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none."""
    folder = Path(folder)
    if not (folder / "checkpoint.json").exists():
        return None
    meta = read_json(folder / "checkpoint.json", "checkpoint")
    tensors = read_tensors(folder / "checkpoint.safetensors", "checkpoint", meta.get("sha256"))
    try:
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer_from_tensors(opt, tensors, meta["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        # Another vocabulary, other covariates or other network options give other parameter shapes.
        raise checkpoint_mismatch(folder, f"{type(e).__name__}: {_first_line(e)}") from None
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.sampler"])
    return meta["counters"]


def checkpoint_mismatch(folder: str | Path, detail: str) -> ModelDirError:
    """The error for a ``--resume`` whose data or options are not those the checkpoint was written with."""
    return ModelDirError(
        f"cannot resume from the checkpoint in {str(folder)!r}: the data, vocabulary or configuration differ from "
        f"the checkpoint's ({detail}); resume with the same data and options, or train from the start with a new "
        "--out (or without --resume)"
    )


def _first_line(e: BaseException, limit: int = 200) -> str:
    """The telling line of an error (torch's load_state_dict opens with a heading that ends in ':')."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return (lines[0] if lines else type(e).__name__)[:limit]


# The model directories of the four ``fit`` commands, by the ``format`` field of their ``config.json``:
# (what it is in words, the command that writes it, a command that uses it with ``{dir}`` for the folder).
MODEL_FORMATS = {
    "lstmkit.forecaster": ("forecaster", "forecast fit", "lstmkit forecast predict {dir} --out forecasts.csv"),
    "lstmkit.text_classifier": ("text classifier", "classify fit", 'lstmkit classify predict {dir} --text "..."'),
    "lstmkit.text_generator": ("text generator", "generate fit", "lstmkit generate sample {dir}"),
    "lstmkit.translator": ("translator", "translate fit", 'lstmkit translate predict {dir} --text "..."'),
}


def model_format(path: str | Path) -> str | None:
    """The ``format`` in a folder's ``config.json`` where it is an lstmkit model's, else ``None``
    (no folder, no config.json, unreadable or someone else's config.json)."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    fmt = cfg.get("format") if isinstance(cfg, dict) else None
    return fmt if isinstance(fmt, str) and fmt.startswith("lstmkit.") else None


def model_words(fmt: str) -> str:
    """``fmt`` in words: ``"text generator"`` for ``"lstmkit.text_generator"``."""
    return MODEL_FORMATS.get(fmt, (fmt.removeprefix("lstmkit.").replace("_", " "),))[0]


def an(words: str) -> str:
    return ("an " if words[:1].lower() in "aeiou" else "a ") + words


def read_model_dir(path: str | Path, fmt: str, version: int, what: str, fit_command: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """A saved estimator's ``config.json`` (checked: format and version) and ``weights.safetensors``
    (checked against the checksum in the config); a :class:`ModelDirError` with the fix otherwise."""
    from lstmkit import __version__

    path = Path(path)
    if path.is_file():
        raise ModelDirError(f"{str(path)!r} is a file, not a model directory; pass the --out folder of `lstmkit {fit_command}`")
    if not path.is_dir():
        raise ModelDirError(f"model directory {str(path)!r} does not exist; pass the --out folder of `lstmkit {fit_command}`")
    if not (path / "config.json").exists() and not any((path / n).exists() for n in ("weights.safetensors", "checkpoints")):
        raise ModelDirError(
            f"{str(path)!r} is not an lstmkit model directory (it has no config.json); pass the --out folder of "
            f"`lstmkit {fit_command}`"
        )
    cfg = read_json(path / "config.json", "model config")
    found = cfg.get("format") if isinstance(cfg, dict) else None
    if found != fmt:
        if found in MODEL_FORMATS:
            use = MODEL_FORMATS[found][2].format(dir=path)
            raise ModelDirError(f"{str(path)!r} holds an lstmkit {model_words(found)}, not {an(what)}; use `{use}`")
        raise ModelDirError(
            f"{str(path)!r} is not an lstmkit model directory (its config.json has no lstmkit format); pass the "
            f"--out folder of `lstmkit {fit_command}`"
        )
    if cfg.get("format_version") != version:
        raise ModelDirError(
            f"{str(path)!r} was written in {what} format {cfg.get('format_version')!r} (lstmkit "
            f"{cfg.get('lstmkit_version')}); this lstmkit {__version__} reads format {version} — refit the model "
            "or install the lstmkit version that wrote it"
        )
    return cfg, read_tensors(path / "weights.safetensors", "weights", cfg.get("weights_sha256"))
