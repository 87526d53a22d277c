"""Baselines: hand-checked naive forecasts, and the published M3 numbers as an oracle."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import datasets
from lstmkit.data.panel import to_panel
from lstmkit.errors import ConfigError
from lstmkit.tasks import baselines
from lstmkit.training import metrics

# Series "b" appears first, so it is row 0 of every forecast; "a" has 6 steps, "b" only 2 (< m = 3).
FRAME = pd.DataFrame(
    {
        "unique_id": ["b", "a", "a", "a", "b", "a", "a", "a"],
        "ds": [1, 1, 2, 3, 2, 4, 5, 6],
        "y": [10.0, 1.0, 2.0, 3.0, 20.0, 4.0, 5.0, 6.0],
    }
)


def test_naive_and_seasonal_naive_by_hand():
    np.testing.assert_array_equal(baselines.naive(FRAME, 4), [[20, 20, 20, 20], [6, 6, 6, 6]])
    # a: last season (4, 5, 6) repeated; b: shorter than a season, falls back to naive
    np.testing.assert_array_equal(baselines.seasonal_naive(FRAME, 4, 3), [[20, 20, 20, 20], [4, 5, 6, 4]])
    np.testing.assert_array_equal(baselines.seasonal_naive(FRAME, 2, 1), baselines.naive(FRAME, 2))


def test_other_column_names_and_arrays_and_inner_gaps():
    renamed = FRAME.rename(columns={"unique_id": "store", "ds": "t", "y": "sales"})
    np.testing.assert_array_equal(
        baselines.naive(renamed, 1, id="store", time="t", target="sales"), [[20.0], [6.0]]
    )
    history = np.array([[np.nan, 1.0, 2.0, np.nan], [3.0, 4.0, 5.0, 6.0]])  # an inner gap is carried forward
    np.testing.assert_array_equal(baselines.naive(history, 2), [[2.0, 2.0], [6.0, 6.0]])
    with pytest.raises(ConfigError, match="horizon"):
        baselines.naive(FRAME, 0)


def test_naive2_reseasonalises_a_seasonal_series_and_is_naive_otherwise():
    pattern = np.array([0.8, 1.0, 1.3, 0.9])
    y = 50.0 * pattern[np.arange(20) % 4]  # 5 exact seasons at a constant level
    np.testing.assert_allclose(baselines.naive2(y, 6, 4), [50.0 * pattern[np.arange(20, 26) % 4]])
    np.testing.assert_array_equal(baselines.naive2(FRAME, 3, 1), baselines.naive(FRAME, 3))


def _m3_smape(group: str, method) -> float:
    ds = datasets.load(f"m3-{group}")
    actual = to_panel(ds.test).y.astype(np.float64)
    return metrics.smape(actual, method(ds.df, ds.horizon, ds.season_length))


# Published M3 sMAPE of Naive2 (Makridakis & Hibon 2000, as tabulated by Oreshkin et al. 2020) and ours.
# Yearly and Other are non-seasonal, so Naive2 is plain naive and must match to the rounding (0.005).
# For Quarterly and Monthly our Naive2 follows the M4 benchmark code (Mcompetitions/M4-methods: R's acf,
# the 1.645 test, decompose(type="multiplicative")) and lands 0.08 / 0.15 from the M3 paper's figures,
# whose program is not public; an independent per-series re-implementation of the M4 Python benchmark
# gives the same 10.03 / 16.76, and no single test threshold reproduces both published values. So we
# assert within 0.2 of the publication, and pin our own value to 0.005 to catch regressions.
NAIVE2 = {"yearly": (17.88, 17.880), "quarterly": (9.95, 10.029), "monthly": (16.91, 16.764), "other": (6.30, 6.302)}


@pytest.mark.parametrize("group", list(NAIVE2))
def test_naive2_reproduces_the_published_m3_smape(group):
    published, ours = NAIVE2[group]
    got = _m3_smape(group, baselines.naive2)
    assert got == pytest.approx(ours, abs=0.005)
    assert got == pytest.approx(published, abs=0.2 if group in ("quarterly", "monthly") else 0.005)


# statsforecast 2.1's Theta on M3, measured here: 16.65 / 9.23 / 13.83 / 4.93 (all 13.04) against the
# published 16.90 / 8.96 / 13.85 / 4.41 (13.01) of the original Theta submission. statsforecast implements
# the standard Theta method as SES with drift (Hyndman & Billah 2003) behind the same M3 seasonality test,
# fitting the smoothing weight and initial level with its own optimiser; the original submission fixed
# those details its own way, so the per-category gaps are real and go both ways, not noise. We pin
# statsforecast's own values (0.05 leaves room for optimiser changes between releases) and check the
# published figures only to 0.6 — enough to catch a misaligned or mis-seasoned wrapper, since naive is
# 1.2–2.2 points worse in every category. The whole of M3 takes ~10 s here (2 cores, busy machine).
THETA = {"yearly": (16.90, 16.650), "quarterly": (8.96, 9.233), "monthly": (13.85, 13.827), "other": (4.41, 4.933)}


@pytest.mark.slow
@pytest.mark.parametrize("group", list(THETA))
def test_statsforecast_theta_on_m3_is_near_the_published_theta(group):
    pytest.importorskip("statsforecast")
    published, measured = THETA[group]
    got = _m3_smape(group, baselines.theta)
    assert got == pytest.approx(measured, abs=0.05)
    assert got == pytest.approx(published, abs=0.6)


def test_statsforecast_wrapper_keeps_the_series_order():
    pytest.importorskip("statsforecast")
    out = baselines.statsforecast_baselines(FRAME, 2, 1, ["SeasonalNaive", "AutoETS"])
    np.testing.assert_allclose(out["SeasonalNaive"], baselines.naive(FRAME, 2))
    assert out["AutoETS"].shape == (2, 2)
    assert out["AutoETS"][0, 0] >= 10 > out["AutoETS"][1, 0]  # "b" (10, 20) first, then "a" (1..6)
    with pytest.raises(ConfigError, match="models must name"):
        baselines.statsforecast_baselines(FRAME, 2, 1, ["Prophet"])
