"""Forecaster: shapes and columns, no leakage, determinism, save/load, resume, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit import DataError, ModelDirError
from lstmkit.data.windows import WindowMaker
from lstmkit.tasks import baselines
from lstmkit.tasks.forecaster import Forecaster
from lstmkit.training import metrics, loop


def seasonal_panel(n_series=24, length=60, m=12, seed=0, start="2015-01-01") -> pd.DataFrame:
    """Positive series: level × (1 + trend) × seasonal pattern × noise, each with its own phase/length."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_series):
        n = length - rng.integers(0, length // 3)
        t = np.arange(n)
        season = 1 + 0.3 * np.sin(2 * np.pi * (t + rng.integers(m)) / m)
        y = rng.uniform(50, 500) * (1 + 0.01 * rng.normal() * t) * season * rng.lognormal(0, 0.03, n)
        ds = pd.date_range(start, periods=n, freq="MS")
        rows.append(pd.DataFrame({"unique_id": f"s{s}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


FAST = dict(steps=150, batch_size=64, hidden_size=16, steps_per_epoch=50)


def test_predict_continues_every_series_with_named_columns():
    df = seasonal_panel()
    f = Forecaster(6, quantiles=(0.1, 0.5, 0.9), **FAST).fit(df)
    out = f.predict()
    assert list(out.columns) == ["unique_id", "ds", "forecast", "forecast_q0.1", "forecast_q0.5", "forecast_q0.9"]
    assert len(out) == 24 * 6
    last = df.groupby("unique_id").ds.max()
    first_fc = out.groupby("unique_id").ds.min()
    assert (first_fc == last + pd.offsets.MonthBegin(1)).all()
    q = out[["forecast_q0.1", "forecast_q0.5", "forecast_q0.9"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()


def test_beats_seasonal_naive_on_held_out_seasonal_series():
    df = seasonal_panel(n_series=40, length=72, seed=1)
    H = 6
    cut = df.groupby("unique_id").cumcount(ascending=False) < H
    train, test = df[~cut], df[cut]
    f = Forecaster(H, steps=300, batch_size=128, hidden_size=16, seed=0).fit(train)
    fc = f.predict(output="array")[..., 0]
    actual = test.assign(k=test.groupby("unique_id").cumcount()).pivot(index="unique_id", columns="k", values="y")
    actual = actual.loc[f.panel_.ids].to_numpy()
    snaive = baselines.seasonal_naive(f.panel_.y.astype(float), H, 12)
    assert metrics.smape(actual, fc) < metrics.smape(actual, snaive)


def test_window_inputs_and_scaling_never_see_the_targets():
    y = np.arange(1.0, 41.0, dtype=np.float32)[None, :].repeat(2, 0)
    maker = WindowMaker(y, lookback=8, horizon=4, level_window=4, log_scale=True)
    n, c = torch.tensor([0, 1]), torch.tensor([20, 20])
    base = maker.cut(n, c)
    y2 = y.copy()
    y2[1, 20:] *= 100.0  # change only the future of series 1
    other = WindowMaker(y2, lookback=8, horizon=4, level_window=4, log_scale=True).cut(n, c)
    torch.testing.assert_close(base.x, other.x)
    torch.testing.assert_close(base.level, other.level)
    assert base.level[0].item() == pytest.approx(np.mean([17, 18, 19, 20]))  # the last 4 inputs
    assert not torch.allclose(base.target[1], other.target[1])


def test_short_series_are_padded_and_masked_not_dropped():
    y = np.full((2, 30), np.nan, dtype=np.float32)
    y[0] = np.linspace(10, 40, 30)
    y[1, -3:] = [5.0, 6.0, 7.0]  # 3 observations, lookback 8
    maker = WindowMaker(y, lookback=8, horizon=2, level_window=4, log_scale=True)
    win = maker.cut(torch.tensor([1]), torch.tensor([30]))
    assert win.valid.item()
    assert win.x[0, :, 1].tolist() == [0.0] * 5 + [1.0] * 3  # observed flags
    assert win.level.item() == pytest.approx(6.0)


def test_missing_targets_are_masked_and_forecasts_finite():
    df = seasonal_panel(n_series=10, length=48)
    df.loc[df.sample(frac=0.1, random_state=0).index, "y"] = np.nan
    out = Forecaster(4, **FAST).fit(df).predict()
    assert np.isfinite(out.forecast).all()


def test_same_seed_same_forecasts_and_save_load_round_trip(tmp_path):
    df = seasonal_panel(n_series=12, length=40)
    a = Forecaster(4, seed=3, **FAST).fit(df)
    b = Forecaster(4, seed=3, **FAST).fit(df)
    np.testing.assert_array_equal(a.predict(output="array"), b.predict(output="array"))
    a.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"config.json", "weights.safetensors"}
    c = Forecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(a.predict(), c.predict())
    pd.testing.assert_frame_equal(a.predict(df), c.predict(df))


def test_tampered_weights_and_incomplete_directories_are_refused(tmp_path):
    df = seasonal_panel(n_series=6, length=30)
    Forecaster(3, **FAST).fit(df).save(tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="checksum"):
        Forecaster.load(tmp_path / "m")
    w.unlink()
    with pytest.raises(ModelDirError, match="missing"):
        Forecaster.load(tmp_path / "m")


def test_resume_after_interruption_gives_the_uninterrupted_forecasts(tmp_path, monkeypatch):
    df = seasonal_panel(n_series=10, length=40)
    params = dict(seed=5, **FAST)
    expected = Forecaster(4, **params).fit(df, checkpoint_dir=tmp_path / "full").predict(output="array")

    real_save = loop.save_checkpoint
    calls = {"n": 0}

    def crash_after_first_epoch(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # as if killed right after the first checkpoint

    monkeypatch.setattr(loop, "save_checkpoint", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        Forecaster(4, **params).fit(df, checkpoint_dir=tmp_path / "ck")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed = Forecaster(4, **params).fit(df, checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.history_[0][0]["step"] == 50  # the first epoch came from the checkpoint
    np.testing.assert_allclose(resumed.predict(output="array"), expected, rtol=1e-6)


def test_horizon_longer_than_histories_is_a_clear_error():
    df = seasonal_panel(n_series=3, length=12)
    with pytest.raises(DataError, match="horizon"):
        Forecaster(40, **FAST).fit(df)


def test_integer_time_single_series_and_standard_scaling_for_negative_data():
    t = np.arange(200)
    df = pd.DataFrame({"ds": t, "y": np.sin(t / 5.0) * 3.0 - 1.0})  # negative values: affine scaling
    f = Forecaster(5, **FAST).fit(df)
    out = f.predict()
    assert list(out.columns) == ["ds", "forecast"]
    assert out.ds.tolist() == [200, 201, 202, 203, 204]
    assert not f.fitted_.log_scale


def test_validation_split_and_early_stopping_restore_the_best_epoch():
    df = seasonal_panel(n_series=12, length=48)
    f = Forecaster(4, val_size=4, patience=2, **FAST).fit(df)
    hist = f.history_[0]
    assert all("val_loss" in row for row in hist)
    assert len(hist) <= 3


def test_seq2seq_decoder_and_ensemble_produce_finite_ordered_forecasts():
    df = seasonal_panel(n_series=10, length=48)
    f = Forecaster(4, decoder="seq2seq", ensemble=2, quantiles=(0.25, 0.75), **FAST).fit(df)
    arr = f.predict(output="array")
    assert arr.shape == (10, 4, 3) and np.isfinite(arr).all()
    assert (arr[..., 1] <= arr[..., 2]).all()
    assert [m.lookback for m in f.members_][0] == f.lookback_
    assert len({m.seed for m in f.members_}) == 2


def test_future_covariate_is_used_and_required_over_the_horizon():
    # y jumps whenever the (known in advance) promo flag is on: only the covariate can explain it.
    rng = np.random.default_rng(0)
    rows = []
    for s in range(8):
        n = 80
        promo = (rng.random(n + 4) < 0.3).astype(float)
        y = 100.0 * (1 + 1.0 * promo[:n]) * rng.lognormal(0, 0.02, n)
        ds = np.arange(n + 4)
        rows.append(pd.DataFrame({"unique_id": f"s{s}", "ds": ds, "promo": promo,
                                  "y": np.r_[y, [np.nan] * 4]}))  # fmt: skip
    df = pd.concat(rows, ignore_index=True)
    f = Forecaster(4, steps=300, batch_size=64, hidden_size=16, steps_per_epoch=100).fit(df, future_covariates=["promo"])
    out = f.predict(df)
    fut = df[df.y.isna()].reset_index(drop=True)
    with_promo = out.forecast[fut.promo.to_numpy() == 1].mean()
    without = out.forecast[fut.promo.to_numpy() == 0].mean()
    assert with_promo > 1.5 * without
    with pytest.raises(DataError, match="future covariates"):
        f.predict(df.dropna(subset=["y"]))


def test_static_and_past_covariates_are_accepted_and_saved(tmp_path):
    df = seasonal_panel(n_series=6, length=40)
    df["size"] = df.unique_id.str[1:].astype(float)
    df["temp"] = np.sin(np.arange(len(df)))
    f = Forecaster(3, **FAST).fit(df, static_covariates=["size"], past_covariates=["temp"])
    f.save(tmp_path / "m")
    g = Forecaster.load(tmp_path / "m")
    np.testing.assert_allclose(f.predict(output="array"), g.predict(output="array"))


def test_streaming_prediction_matches_whole_table_and_needs_contiguous_series(tmp_path):
    from lstmkit.data.panel import iter_table

    df = seasonal_panel(n_series=15, length=40)
    f = Forecaster(3, **FAST).fit(df)
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    streamed = pd.concat(list(f.predict_stream(iter_table(path, chunk_rows=50))), ignore_index=True)
    whole = f.predict(pd.read_csv(path))
    pd.testing.assert_frame_equal(streamed, whole)
    shuffled = tmp_path / "shuffled.csv"
    df.sample(frac=1.0, random_state=0).to_csv(shuffled, index=False)
    with pytest.raises(DataError, match="not contiguous"):
        list(f.predict_stream(iter_table(shuffled, chunk_rows=50)))
