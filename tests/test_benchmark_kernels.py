"""``benchmarks/kernels.py`` end to end at its smallest: the rows, the ratios and the JSON it writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.py"


@pytest.fixture(scope="module")
def kernels():
    spec = importlib.util.spec_from_file_location("bench_kernels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script executes
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_one_size_one_variant_writes_rows_with_ratios_to_the_anchor(kernels, tmp_path, capsys):
    out = tmp_path / "k.json"
    threads = torch.get_num_threads()
    try:
        kernels.main(["--sizes", "seed", "--variants", "peephole", "--backends", "auto,reference",
                      "--repeat", "1", "--min-time", "0", "--threads", "1", "--json", str(out)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    data = json.loads(out.read_text())
    rows = {(r["variant"], r["backend"], r["pass_"]): r for r in data["rows"]}
    for pass_ in ("fwd", "fwd+bwd"):
        anchor = rows[("torch.nn.LSTM", "torch", pass_)]
        assert anchor["ratio"] == 1.0 and anchor["ms_min"] > 0
        auto = next(r for (v, b, p), r in rows.items() if v == "peephole" and b.startswith("auto=") and p == pass_)
        assert auto["backend"] in ("auto=cpu_fused", "auto=reference")
        # auto's backend is timed once, under auto's label: without the C++ kernels (LSTMKIT_NO_CPP=1, no
        # compiler) auto is the reference loop and there is no second "reference" row
        reference = "auto=reference" if auto["backend"] == "auto=reference" else "reference"
        assert [b for (v, b, p) in rows if v == "peephole" and p == pass_] == [auto["backend"]] + (
            [] if reference == auto["backend"] else ["reference"]
        )
        for r in (auto, rows[("peephole", reference, pass_)]):
            assert r["ratio"] == pytest.approx(r["ms_min"] / anchor["ms_min"])
    assert data["args"]["threads"] == 1 and data["machine"]["torch"] == torch.__version__
    assert f"| B32 T50 I1 H50 L2 | cpu | fp32 | peephole | {reference} |" in capsys.readouterr().out


def test_unknown_names_are_refused(kernels):
    with pytest.raises(SystemExit):
        kernels.parse_args(["--variants", "peephole,bogus"])


def test_an_anchor_whose_time_moved_between_rows_is_reported(kernels):
    """The anchor timed alongside each candidate: 1.80 ms next to one and 3.30 ms next to another (a VM's
    slow period) is one warning for that size and pass, naming both times; 1.80 and 1.95 is none."""

    def row(variant, pass_, ms, anchor_ms):
        return kernels.Row("seed", "B32 T50 I1 H50 L2", "cpu", "fp32", variant, "auto=cpu_fused", pass_, ms, ms,
                           anchor_ms, ms / anchor_ms, ms / anchor_ms)  # fmt: skip

    steady = [row("standard", "fwd", 0.40, 0.76), row("fgr", "fwd", 0.75, 0.80)]
    moved = [row("standard", "fwd+bwd", 1.10, 1.80), row("fgr", "fwd+bwd", 3.10, 3.30)]
    anchor = kernels.Row("seed", "B32 T50 I1 H50 L2", "cpu", "fp32", "torch.nn.LSTM", "torch", "fwd+bwd", 1.8,
                         1.8, 1.8, 1.0, 1.0)  # fmt: skip
    assert kernels.anchor_drift(steady + [anchor]) == []
    warnings = kernels.anchor_drift(steady + moved + [anchor])
    assert len(warnings) == 1
    assert "B32 T50 I1 H50 L2 cpu fp32 fwd+bwd" in warnings[0] and "1.800 to 3.300 ms" in warnings[0]
    assert kernels.anchor_drift([row("standard", "fwd+bwd", 1.10, 1.80), row("fgr", "fwd+bwd", 2.3, 1.95)]) == []
