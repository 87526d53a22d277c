"""The M3 seasonality test and classical multiplicative indices."""

import numpy as np
import pytest

from lstmkit.data import seasonality as S

PATTERN = np.array([0.8, 1.0, 1.3, 0.9])  # mean 1: exact multiplicative indices for m = 4


def test_constant_level_times_a_pattern_gives_the_pattern_back_with_end_relative_phases():
    n = 22  # not a multiple of 4: the last observation has start-phase (22 - 1) % 4 = 1
    y = 50.0 * PATTERN[np.arange(n) % 4]
    idx = S.seasonal_indices(y, 4)
    # phase p counts from the end: p = m - 1 is the last observation, p = 0 the first forecast step
    np.testing.assert_allclose(idx, PATTERN[(np.arange(4) + n) % 4], rtol=1e-12)
    assert idx[-1] == pytest.approx(PATTERN[(n - 1) % 4])
    d = S.deseasonalize(y, 4)
    assert d.seasonal is True
    np.testing.assert_allclose(d.adjusted, 50.0)
    np.testing.assert_allclose(d.future(6), PATTERN[(n + np.arange(6)) % 4])


def test_indices_match_statsmodels_seasonal_decompose():
    from statsmodels.tsa.seasonal import seasonal_decompose

    rng = np.random.default_rng(0)
    for m, n in [(12, 75), (4, 30), (7, 50)]:  # even and odd periods
        t = np.arange(n)
        y = (100 + 0.5 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / m)) * rng.uniform(0.95, 1.05, n)
        ref = seasonal_decompose(y, model="multiplicative", period=m).seasonal  # (n,) periodic
        np.testing.assert_allclose(S.seasonal_indices(y, m), ref[n - m :], rtol=1e-10)


def test_test_detects_seasonality_and_rejects_noise_trend_and_short_series():
    rng = np.random.default_rng(1)
    t = np.arange(96)
    seasonal = 100 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, 96)
    assert S.seasonality_test(seasonal, 12)
    assert not S.seasonality_test(100 + rng.normal(0, 1, 96), 12)
    assert not S.seasonality_test(np.linspace(1, 50, 96), 12)  # trend: r_12 large but so is its band
    assert not S.seasonality_test(seasonal[:35], 12)  # fewer than 3 seasons
    assert not S.seasonality_test(seasonal, 1)


def test_autocorrelation_formula_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, deviations -1.5 -0.5 0.5 1.5, Σd² = 5
    np.testing.assert_allclose(S.autocorrelations(y, 2), [(0.75 - 0.25 + 0.75) / 5, (-0.75 - 0.75) / 5])


def test_panel_rows_equal_single_series_results_despite_padding():
    rng = np.random.default_rng(2)
    a = 100 + 20 * PATTERN[np.arange(40) % 4] + rng.normal(0, 1, 40)
    b = 50 * PATTERN[np.arange(27) % 4] * rng.uniform(0.98, 1.02, 27)
    panel = np.full((2, 40), np.nan)
    panel[0], panel[1, 13:] = a, b
    np.testing.assert_allclose(S.seasonal_indices(panel, 4), [S.seasonal_indices(a, 4), S.seasonal_indices(b, 4)])
    np.testing.assert_array_equal(S.seasonality_test(panel, 4), [S.seasonality_test(a, 4), S.seasonality_test(b, 4)])
    d = S.deseasonalize(panel, 4)
    np.testing.assert_allclose(d.adjusted[1, 13:], S.deseasonalize(b, 4).adjusted)


def test_non_positive_series_are_left_unadjusted():
    y = 10 * PATTERN[np.arange(24) % 4]
    y[5] = 0.0
    np.testing.assert_array_equal(S.seasonal_indices(y, 4), np.ones(4))
