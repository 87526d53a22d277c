"""Reports: the plots are real PNGs, the HTML is self-contained and marks the best model per group."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from lstmkit.reports import plot_forecasts, plot_metrics, plot_training, write_report  # noqa: E402
from lstmkit.reports.html import best_mask  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def table() -> pd.DataFrame:
    rows = []
    for g, shift in (("all", 0.0), ("Monthly", 1.0)):
        for model, smape in (("lstm", 12.0), ("naive", 15.0), ("seasonal_naive", 11.0)):
            rows.append({"group": g, "model": model, "series": 10, "sMAPE": smape + shift, "MASE": smape / 10,
                         "CRPS": 3.0 if model == "lstm" else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def test_plot_forecasts_from_arrays_and_ragged_lists(tmp_path):
    rng = np.random.default_rng(0)
    hist = np.full((8, 30), np.nan)
    for i in range(8):
        hist[i, i:] = rng.uniform(1, 2, 30 - i)  # right-aligned, different lengths
    fc = rng.uniform(1, 2, (8, 5))
    q = np.sort(rng.uniform(0.5, 2.5, (8, 5, 3)), axis=-1)
    p = plot_forecasts(hist, fc, q, [f"s{i}" for i in range(8)], tmp_path / "f.png", n=4, levels=(0.1, 0.5, 0.9),
                       actual=fc + 0.1)  # fmt: skip
    assert p.read_bytes().startswith(PNG)
    p2 = plot_forecasts([h[np.isfinite(h)] for h in hist], fc, None, None, tmp_path / "g.png", select=[0, 7])
    assert p2.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="forecasts must be"):
        plot_forecasts(hist, fc[:3], None, None, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_plot_training_single_run_and_ensemble(tmp_path):
    run = [{"step": 10 * k, "train_loss": 1 / k, "val_loss": 1.1 / k} for k in range(1, 6)]
    assert plot_training(run, tmp_path / "t.png").read_bytes().startswith(PNG)
    assert plot_training([run, run[:3]], tmp_path / "e.png").read_bytes().startswith(PNG)


def test_plot_metrics(tmp_path):
    assert plot_metrics(table(), tmp_path / "m.png").read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="no column"):
        plot_metrics(table(), tmp_path / "x.png", metric="MAPE")


def test_best_mask_marks_the_minimum_per_group_and_skips_lone_metrics():
    mask = best_mask(table())
    t = table()
    assert list(t.loc[mask["sMAPE"], "model"]) == ["seasonal_naive", "seasonal_naive"]
    assert not mask["CRPS"].any()  # only the LSTM has a CRPS: nothing to compare
    assert not mask["series"].any()


def test_report_is_self_contained(tmp_path):
    img = plot_metrics(table(), tmp_path / "m.png")
    path = write_report(tmp_path / "r.html", "Eval <M3> & co", table(), {"sMAPE": img}, ["data: <x>", "2 windows"])
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "Eval &lt;M3&gt; &amp; co" in html and "data: &lt;x&gt;" in html
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    assert base64.b64decode(srcs[0].split(",", 1)[1]) == img.read_bytes()
    assert not re.search(r'(href|src)="(https?:|//|/)', html) and "<link" not in html and "<script" not in html
    assert html.count('class="best"') == 2 * 2  # sMAPE and MASE, two groups
    assert "<table>" in html and "seasonal_naive" in html


def test_report_without_table_and_with_text_table(tmp_path):
    p = write_report(tmp_path / "a.html", "fit", None, {}, "one paragraph")
    assert "<table>" not in p.read_text() and "one paragraph" in p.read_text()
    p = write_report(tmp_path / "b.html", "fit", "a  b\n1  2", None)
    assert "<pre>a  b\n1  2</pre>" in p.read_text()
