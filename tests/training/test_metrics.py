"""Forecast metrics against hand-worked values."""

import numpy as np
import pytest

from lstmkit.training import metrics as M

# Two series, horizon 2. Errors: series 0 → 10 and 0; series 1 → 20 and NaN (masked).
Y = np.array([[100.0, 50.0], [200.0, np.nan]])
F = np.array([[110.0, 50.0], [180.0, 10.0]])


def test_smape_matches_the_m3_formula_by_hand():
    # 200·10/210, 0, 200·20/380 averaged over the 3 valid points
    expected = (2000 / 210 + 0 + 4000 / 380) / 3
    assert M.smape(Y, F) == pytest.approx(expected)
    np.testing.assert_allclose(M.smape(Y, F, axis=1), [1000 / 210, 4000 / 380])
    assert M.smape([[0.0]], [[0.0]]) == 0.0  # 0/0 counts as no error
    assert M.smape([[1.0]], [[-1.0]]) == pytest.approx(200.0)  # the maximum


def test_mae_rmse_by_hand():
    assert M.mae(Y, F) == pytest.approx(30 / 3)
    assert M.rmse(Y, F) == pytest.approx(np.sqrt((100 + 400) / 3))
    np.testing.assert_allclose(M.mae(Y, F, axis=0), [15.0, 0.0])


def test_mase_scale_and_value_by_hand():
    history = np.array([[np.nan, 1.0, 3.0, 2.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0]])  # row 0 is padded
    np.testing.assert_allclose(M.mase_scale(history, 1), [(2 + 1 + 4) / 3, 1.0])
    np.testing.assert_allclose(M.mase_scale(history, 2), [(1 + 3) / 2, 2.0])
    # a season longer than the history falls back to lag 1; a constant series is masked (NaN)
    np.testing.assert_allclose(M.mase_scale(np.array([1.0, 3.0, 4.0]), 12), 1.5)
    assert np.isnan(M.mase_scale(np.array([5.0, 5.0, 5.0]), 1))
    scale = np.array([2.0, 10.0])
    # |err|/scale: 5, 0 (series 0) and 2 (series 1; its second point is NaN)
    assert M.mase(Y, F, scale) == pytest.approx((5 + 0 + 2) / 3)
    np.testing.assert_allclose(M.mase(Y, F, scale, axis=1), [2.5, 2.0])
    assert M.mase(Y, F, np.array([2.0, np.nan])) == pytest.approx(2.5)


def test_pinball_and_crps_by_hand():
    y = np.array([[10.0]])
    q = np.array([[[8.0, 10.0, 13.0]]])  # (N=1, H=1, Q=3)
    tau = np.array([0.1, 0.5, 0.9])
    # ρ_0.1(10−8)=0.2, ρ_0.5(0)=0, ρ_0.9(10−13)=(0.9−1)(−3)=0.3
    assert M.pinball_loss(y, q, tau) == pytest.approx(0.5 / 3)
    assert M.crps_from_quantiles(y, q, tau) == pytest.approx(1.0 / 3)
    # the median's pinball loss is half the absolute error
    assert M.pinball_loss(Y, F[..., None], [0.5]) == pytest.approx(M.mae(Y, F) / 2)
    with pytest.raises(ValueError, match="one forecast per quantile"):
        M.pinball_loss(y, q, [0.5])


def test_crps_from_many_quantiles_approaches_the_gaussian_closed_form():
    # CRPS(N(0,1), y=0) = 2φ(0) − 1/√π = (√2 − 1)/√π ≈ 0.2337
    from statistics import NormalDist

    tau = np.arange(1, 200) / 200
    q = np.array([NormalDist().inv_cdf(t) for t in tau])[None, None, :]
    exact = (np.sqrt(2) - 1) / np.sqrt(np.pi)
    assert M.crps_from_quantiles(np.zeros((1, 1)), q, tau) == pytest.approx(exact, rel=0.02)


def test_coverage_by_hand():
    y = np.array([[1.0, 5.0, 9.0, np.nan]])
    lo = np.array([[0.0, 6.0, 9.0, 0.0]])
    hi = np.array([[2.0, 8.0, 10.0, 1.0]])
    assert M.coverage(y, lo, hi) == pytest.approx(2 / 3)  # bounds are inclusive; NaN masked
