"""``Forecaster``: one global LSTM trained across all series, scikit-learn style.

What ``fit`` does, in order (every step uses only data up to each window's forecast origin):

1. lay the long table out as a right-aligned panel (:mod:`lstmkit.data.panel`), checking it;
2. divide out multiplicative seasonality where the M3 autocorrelation test finds it (positive series,
   classical decomposition; Naive2's and ES-RNN's preprocessing), to be multiplied back into forecasts;
3. sample training windows near the end of every series (N-BEATS' and ES-RNN's practice), normalised on
   their own past (:mod:`lstmkit.data.windows`), and train :class:`~lstmkit.models.forecast_net.ForecastNet`
   to output all H steps at once (plus quantiles, with the pinball loss) by sMAPE (positive data) or MAE;
4. optionally hold out the last ``val_size`` steps of every series as a time-ordered validation split for
   early stopping; optionally train an ensemble over seeds and lookbacks and take the median.

``predict`` continues every series from its last observation; ``evaluate`` / ``backtest`` hold out the
last H steps (K rolling origins), refit, and score the LSTM next to the baselines.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmkit.data.panel import Panel, season_length, to_panel
from lstmkit.data.seasonality import deseasonalize, phase_factors
from lstmkit.data.windows import WindowMaker
from lstmkit.errors import ConfigError, DataError
from lstmkit.models.forecast_net import ForecastNet, ForecastNetConfig
from lstmkit.tasks import _common
from lstmkit.training.checkpoint import atomic_save_tensors, read_model_dir

log = logging.getLogger(__name__)

FORMAT = "lstmkit.forecaster"
FORMAT_VERSION = 1
PREDICT_CHUNK = 8192  # series per inference batch: bounds memory whatever the number of series


class NotContiguousError(DataError):
    """A series' rows are interleaved with another's, so the table cannot be forecast in chunks."""


@dataclass
class _Member:
    """One trained network of the ensemble and the lookback it reads."""

    net: ForecastNet
    lookback: int
    seed: int
    loss: str


@dataclass
class _Fitted:
    """Everything learned from the data besides the networks (goes to config.json / safetensors)."""

    names: dict
    freq: str | int
    season: int
    log_scale: bool
    cov_mean: dict = field(default_factory=dict)  # "past"/"future"/"static" -> list of means
    cov_std: dict = field(default_factory=dict)


class Forecaster:
    """A global LSTM forecaster.

    Args:
        horizon: steps to forecast (H).
        lookback: input window length L (default: two seasons, ``2m``, for seasonal data and two horizons,
            ``2H``, otherwise, at least 8; on M3 longer windows cost time and lost accuracy).
        quantiles: levels in (0, 1) for prediction intervals, e.g. ``(0.1, 0.5, 0.9)``.
        hidden_size, num_layers, dropout, variant: the LSTM encoder (``variant`` as in ``lstmkit.LSTM``).
        decoder: ``"direct"`` (all steps from the last state; default) or ``"seq2seq"``.
        loss: ``"auto"`` (sMAPE for positive data, else MAE), ``"smape"``, ``"mae"`` (point forecasts;
            quantiles always add the pinball loss).
        deseasonalize: ``"auto"`` (test each positive series; Naive2's rule), ``True`` or ``False``.
        season_length: m (default: from the frequency: 12 monthly, 4 quarterly, …).
        level_window: inputs averaged for the window's level (default: ``min(m, 6)``: a quarterly series'
            last year, a monthly series' last half-year, the last value without seasonality — each the
            best of the choices measured on M3).
        tail: how far back from the end training origins reach, in horizons (default 10, as N-BEATS).
        val_size: steps held out at the end of every series for early stopping (0: none; default).
        ensemble: number of members (seeds × lookbacks); their median is the forecast.
        steps, batch_size, lr, clip, patience, steps_per_epoch, seed: training (see ``TrainConfig``).
    """

    def __init__(
        self,
        horizon: int,
        *,
        lookback: int | None = None,
        quantiles: tuple[float, ...] | list[float] = (),
        hidden_size: int = 32,
        num_layers: int = 2,
        dropout: float = 0.0,
        variant: str = "standard",
        decoder: str = "direct",
        loss: str = "auto",
        deseasonalize: str | bool = "auto",
        season_length: int | None = None,
        level_window: int | None = None,
        tail: float = 10.0,
        val_size: int = 0,
        ensemble: int = 1,
        steps: int = 1500,
        batch_size: int = 256,
        lr: float = 1e-2,
        clip: float = 1.0,
        patience: int = 0,
        steps_per_epoch: int = 100,
        seed: int = 0,
    ) -> None:
        self.horizon = horizon
        self.lookback = lookback
        self.quantiles = tuple(quantiles)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.variant = variant
        self.decoder = decoder
        self.loss = loss
        self.deseasonalize = deseasonalize
        self.season_length = season_length
        self.level_window = level_window
        self.tail = tail
        self.val_size = val_size
        self.ensemble = ensemble
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.clip = clip
        self.patience = patience
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in _PARAMS}

    def _check_params(self) -> None:
        for name in ("horizon", "hidden_size", "num_layers", "ensemble", "steps", "batch_size", "steps_per_epoch"):
            _common.check_int(self, name)
        _common.check_int(self, "val_size", allow_zero=True)
        _common.check_int(self, "patience", allow_zero=True)
        _common.check_int(self, "lookback", allow_none=True)
        for q in self.quantiles:
            if not 0.0 < float(q) < 1.0:
                raise ConfigError(f"quantiles must lie strictly between 0 and 1, got {q}; e.g. --quantiles 0.1,0.5,0.9")
        if self.loss not in ("auto", "smape", "mae"):
            raise ConfigError(f"loss must be 'auto', 'smape' or 'mae', got {self.loss!r}")
        if self.decoder not in ("direct", "seq2seq"):
            raise ConfigError(f"decoder must be 'direct' or 'seq2seq', got {self.decoder!r}")
        _common.check_dropout(self)
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: pd.DataFrame | Panel,
        *,
        target: str = "y",
        time: str = "ds",
        id: str | None = "unique_id",
        freq: str | int | None = None,
        past_covariates: list[str] = (),
        future_covariates: list[str] = (),
        static_covariates: list[str] = (),
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> Forecaster:
        """Train on every series of ``data`` (long format, or a single series) and return ``self``."""
        self._check_params()
        t0 = _now()
        columns = dict(target=target, time=time, id=id, freq=freq, past_covariates=past_covariates,
                       future_covariates=future_covariates, static_covariates=static_covariates)  # fmt: skip
        panel = data if isinstance(data, Panel) else _to_panel(data, columns)
        H = self.horizon
        m = self.season_length or season_length(panel.freq)
        n_obs = np.isfinite(panel.y).sum(axis=1)
        if n_obs.max() < H + 1 + self.val_size:
            raise DataError(
                f"--horizon {H} is too long for these histories: the longest series has {int(n_obs.max())} "
                f"observed values and training needs at least horizon + 1 (+ val_size) = {H + 1 + self.val_size}; "
                "use a shorter horizon"
            )
        lookback = int(self.lookback or max(8, 2 * m if m > 1 else 2 * H))
        if self.lookback is not None and lookback + H > n_obs.max():
            raise DataError(
                f"--lookback {lookback} is too long for every series: with --horizon {H} a training window needs "
                f"{lookback + H} steps and the longest series has {int(n_obs.max())}; use --lookback {max(1, int(n_obs.max()) - H)} or less"
            )
        positive = bool(np.nanmin(panel.y) > 0)
        const = np.nanmax(panel.y, axis=1) == np.nanmin(panel.y, axis=1)
        if const.all():
            raise DataError(
                f"every series is constant (e.g. {panel.ids[0]!r}); there is nothing to learn — a constant "
                "forecast is exact, an LSTM is not needed"
            )
        self.fitted_ = _Fitted(names=panel.names, freq=panel.freq, season=int(m), log_scale=positive)
        self.season_ = int(m)
        self.lookback_ = lookback
        self.level_window_ = int(self.level_window or max(1, min(m, 6)))
        loss = self.loss if self.loss != "auto" else ("smape" if positive else "mae")
        self.loss_ = loss
        panel = self._standardise_covariates(panel, fit=True)
        y_adj, self.seasonal_ = self._deseasonalise(panel.y)
        self.panel_ = panel

        lookbacks = _member_lookbacks(self.lookback_, self.ensemble, H)
        self.members_: list[_Member] = []
        self.history_: list[list[dict]] = []
        ckpt_root = Path(checkpoint_dir) if checkpoint_dir is not None else None
        for k in range(self.ensemble):
            L, seed = lookbacks[k], self.seed + 1000 * k
            # With loss="auto" on positive data, members alternate sMAPE and MAE (on log ratios): an
            # ensemble over losses as well as seeds and lookbacks, as N-BEATS does.
            member_loss = ("smape", "mae")[k % 2] if self.loss == "auto" and positive else loss
            maker = self._maker(y_adj, panel, L)
            torch.manual_seed(seed)  # the initial weights are part of what the seed fixes
            net = self._build_net(maker)
            result = self._train_member(
                net, maker, panel, seed, member_loss,
                None if ckpt_root is None else ckpt_root / f"member{k}",
                resume, progress, f"member {k + 1}/{self.ensemble}" if self.ensemble > 1 else "training",
            )  # fmt: skip
            self.members_.append(_Member(net, L, seed, member_loss))
            self.history_.append(result.history)
        self.fit_seconds_ = _now() - t0
        return self

    def _deseasonalise(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adjusted panel and (N, m) indices (all ones where not seasonal or not positive)."""
        m = self.season_
        N = y.shape[0]
        if m <= 1 or self.deseasonalize is False:
            return y, np.ones((N, max(1, m)), dtype=np.float64)
        positive_rows = ~(np.nanmin(np.where(np.isnan(y), np.inf, y), axis=1) <= 0)
        res = deseasonalize(y, m, test=self.deseasonalize == "auto")
        idx = np.where(positive_rows[:, None], res.indices, 1.0)
        adjusted = y / phase_factors(idx, -y.shape[1], y.shape[1])
        return adjusted.astype(np.float32), idx

    def _standardise_covariates(self, panel: Panel, fit: bool) -> Panel:
        """A copy of ``panel`` with covariates standardised by the statistics of the fitted data."""
        new = {}
        for kind in ("past", "future", "static"):
            arr = getattr(panel, kind)
            if arr is None:
                continue
            flat = arr.reshape(-1, arr.shape[-1])
            if fit:
                mean = np.nanmean(flat, axis=0)
                std = np.nanstd(flat, axis=0)
                self.fitted_.cov_mean[kind] = np.nan_to_num(mean).tolist()
                self.fitted_.cov_std[kind] = np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0).tolist()
            mean = np.asarray(self.fitted_.cov_mean[kind], dtype=np.float32)
            std = np.asarray(self.fitted_.cov_std[kind], dtype=np.float32)
            new[kind] = ((arr - mean) / std).astype(np.float32)
        return dataclasses.replace(panel, **new) if new else panel

    def _maker(self, y_adj: np.ndarray, panel: Panel, lookback: int) -> WindowMaker:
        return WindowMaker(
            y_adj, lookback, self.horizon, self.level_window_, self.fitted_.log_scale,
            past=panel.past, future=panel.future, static=panel.static,
        )  # fmt: skip

    def _build_net(self, maker: WindowMaker) -> ForecastNet:
        cfg = ForecastNetConfig(
            in_features=maker.n_features, horizon=self.horizon, n_outputs=1 + len(self.quantiles),
            hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=self.dropout,
            static_features=0 if maker.static is None else maker.static.shape[-1],
            future_features=0 if maker.future is None else maker.future.shape[-1],
            decoder=self.decoder, variant=self.variant,
        )  # fmt: skip
        return ForecastNet(cfg)

    def _train_member(self, net, maker: WindowMaker, panel: Panel, seed: int, loss: str, ckpt, resume, progress, desc):
        H, V = self.horizon, self.val_size
        T = maker.T
        start = torch.from_numpy(panel.start.astype(np.int64))
        # Training origins: the last `tail` horizons of every series, before the validation block;
        # at least one observed input; targets past T - V are masked (the validation block).
        hi = torch.full_like(start, T - V - 1) if V else torch.full_like(start, T - H)
        hi = torch.maximum(hi, torch.minimum(start + 1, torch.tensor(T - V - 1)))
        span = max(1, int(round(self.tail * H)))
        lo = torch.maximum(hi - span + 1, start + 1)
        lo = torch.minimum(lo, hi)
        width = (hi - lo + 1).clamp(min=1)
        N = panel.n_series
        cut_limit = T - V  # targets at or after this column are never trained on
        quantiles = torch.tensor(self.quantiles, dtype=torch.float32)

        def batch_loss(gen: torch.Generator) -> torch.Tensor:
            n = torch.randint(0, N, (self.batch_size,), generator=gen)
            c = lo[n] + (torch.rand(self.batch_size, generator=gen) * width[n]).long()
            win = maker.cut(n, c)
            mask = win.mask * win.valid.unsqueeze(1).float()
            if V:
                steps = c.unsqueeze(1) + torch.arange(H)
                mask = mask * (steps < cut_limit).float()
            out = net(win.x, win.static, win.future)  # (B, H, Q)
            return self._loss(out, win.target, mask, quantiles, loss)

        validate = None
        if V:
            n_all = torch.arange(N)
            c_val = torch.full((N,), T - V)

            def validate() -> float:
                total, count = 0.0, 0.0
                for s in range(0, N, PREDICT_CHUNK):
                    n = n_all[s : s + PREDICT_CHUNK]
                    win = maker.cut(n, c_val[s : s + PREDICT_CHUNK])
                    mask = win.mask[:, :V] * win.valid.unsqueeze(1).float()
                    out = net(win.x, win.static, win.future)
                    loss_v = self._loss(out[:, :V], win.target[:, :V], mask, quantiles, loss)
                    w = float(mask.sum())
                    total, count = total + float(loss_v) * w, count + w
                return total / max(count, 1.0)

        return _common.fit_network(self, net, batch_loss, validate, steps=self.steps, batch_size=self.batch_size,
                                   steps_per_epoch=self.steps_per_epoch, checkpoint_dir=ckpt, resume=resume, progress=progress,
                                   seed=seed, desc=desc)  # fmt: skip

    def _loss(self, out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, quantiles: torch.Tensor, kind: str) -> torch.Tensor:
        """Point loss ``kind`` on output 0 (+ pinball loss on the quantile outputs), masked, in the normalised space."""
        denom = mask.sum().clamp(min=1.0)
        point = out[..., 0]
        if kind == "smape" and self.fitted_.log_scale:
            # sMAPE is scale-free, so the ratio space (÷ the window's level) gives the data-scale value.
            f, y = torch.exp(point.clamp(max=20.0)), torch.exp(target)
            loss = (2.0 * (f - y).abs() / (f + y) * mask).sum() / denom
        else:
            loss = ((point - target).abs() * mask).sum() / denom
        if quantiles.numel():
            diff = target.unsqueeze(-1) - out[..., 1:]  # (B, H, Q)
            pin = torch.maximum(quantiles * diff, (quantiles - 1.0) * diff)
            loss = loss + (pin * mask.unsqueeze(-1)).sum() / (denom * quantiles.numel())
        return loss

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise ConfigError("this Forecaster is not fitted yet; call fit(data) first (or Forecaster.load(dir))")

    def predict(self, data: pd.DataFrame | None = None, *, output: str = "frame"):
        """Forecast H steps after the last observation of every series.

        ``data``: the series to continue (same columns as at fit); ``None`` continues the fitted series.
        Returns a long DataFrame ``id, time, forecast[, forecast_q{level}…]`` (``output="frame"``) or the
        (N, H, 1 + Q) array (``output="array"``).
        """
        self._check_fitted()
        panel = self.panel_ if data is None else self._panel_like(data)
        out = self._predict_panel(panel)
        if output == "array":
            return out
        return self._frame(panel, out)

    def predict_stream(self, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Forecast a table that arrives in chunks of rows (e.g. :func:`lstmkit.data.panel.iter_table`),
        yielding one forecast frame per chunk of complete series, so memory stays bounded by the chunk
        size whatever the number of series. Each series' rows must be contiguous (a file sorted by id).
        """
        self._check_fitted()
        id_col = self.fitted_.names["id"]
        if id_col is None:  # one series: it cannot be split, so it is read whole
            yield self.predict(pd.concat(list(chunks), ignore_index=True))
            return
        done: set[str] = set()
        carry = None
        for chunk in chunks:
            if carry is not None:
                chunk = pd.concat([carry, chunk], ignore_index=True)
            if chunk.empty:
                continue
            if id_col not in chunk.columns:
                raise DataError(f"the data has no id column {id_col!r} (the model was fitted with it); columns: {list(chunk.columns)}")
            ids = chunk[id_col].astype(str).to_numpy()
            last = ids[-1]
            complete = ids != last
            carry = chunk[~complete]
            block = chunk[complete]
            if len(block):
                block_ids = ids[complete]
                starts = np.r_[True, block_ids[1:] != block_ids[:-1]]
                seen = block_ids[starts]  # one entry per run of rows of one series
                runs = np.append(seen, last)
                interrupted = pd.Series(runs).duplicated().to_numpy()  # a series' rows split by another's
                bad = next((i for i in seen if i in done), None)
                if bad is None and interrupted.any():
                    bad = runs[interrupted][0]
                if bad is not None:
                    raise NotContiguousError(
                        f"rows of series {bad!r} are not contiguous in the data; sort the file by {id_col!r} "
                        "(then time) to forecast it in chunks"
                    )
                done.update(seen)
                yield self.predict(block)
        if carry is not None and len(carry):
            if str(carry[id_col].iloc[0]) in done:
                raise NotContiguousError(f"rows of series {carry[id_col].iloc[0]!r} are not contiguous; sort the file by {id_col!r}")
            yield self.predict(carry)

    def _panel_like(self, data) -> Panel:
        if isinstance(data, Panel):
            return data
        names = self.fitted_.names
        panel = to_panel(
            data, target=names["target"], time=names["time"], id=names["id"], freq=self.fitted_.freq,
            past_covariates=names["past"], future_covariates=names["future"], static_covariates=names["static"],
        )  # fmt: skip
        return self._standardise_covariates(panel, fit=False)

    def _predict_panel(self, panel: Panel) -> np.ndarray:
        H, N, T = self.horizon, panel.n_series, panel.y.shape[1]
        if self.fitted_.log_scale and np.nanmin(panel.y) <= 0:
            bad = panel.ids[int(np.flatnonzero(np.nanmin(panel.y, axis=1) <= 0)[0])]
            raise DataError(
                f"series {bad!r} has values <= 0, but the model was fitted on positive data (log scaling); "
                "refit on data that includes such series"
            )
        if panel.future is not None and panel.future.shape[1] < T + H:
            raise DataError(
                f"future covariates {panel.names['future']} must be given for the {H} steps after each series' "
                f"last observation (rows with an empty target); the data stops {T + H - panel.future.shape[1]} "
                "step(s) short"
            )
        if panel is self.panel_:
            y_adj, idx = self._deseasonalise(panel.y)[0], self.seasonal_
        else:
            y_adj, idx = self._deseasonalise(panel.y)
        factors = phase_factors(idx, 0, H).astype(np.float32)  # (N, H)
        preds = []
        with torch.no_grad():
            for member in self.members_:
                maker = self._maker(y_adj, panel, member.lookback)
                member.net.eval()
                chunks = []
                for s in range(0, N, PREDICT_CHUNK):
                    n = torch.arange(s, min(N, s + PREDICT_CHUNK))
                    win = maker.cut(n, torch.full((len(n),), T))
                    out = member.net(win.x, win.static, win.future)
                    chunks.append(maker.to_original(out, win).numpy())
                preds.append(np.concatenate(chunks))
        pred = np.median(np.stack(preds), axis=0) if len(preds) > 1 else preds[0]  # (N, H, 1 + Q)
        pred = pred * factors[:, :, None]
        if self.quantiles:
            qs = np.sort(pred[..., 1:], axis=-1)  # quantile heads may cross; sorting restores monotonicity
            pred = np.concatenate([pred[..., :1], qs], axis=-1)
        return pred

    def _frame(self, panel: Panel, pred: np.ndarray) -> pd.DataFrame:
        names = panel.names
        N, H = pred.shape[:2]
        cols = {names["id"] or "unique_id": np.repeat(panel.ids, H), names["time"]: panel.future_times(H).reshape(-1),
                "forecast": pred[..., 0].reshape(-1)}  # fmt: skip
        for j, q in enumerate(self.quantiles):
            cols[f"forecast_q{_fmt_q(q)}"] = pred[..., 1 + j].reshape(-1)
        df = pd.DataFrame(cols)
        if names["id"] is None:
            df = df.drop(columns="unique_id")
        return df

    # ------------------------------------------------------------------ evaluation
    def backtest(
        self,
        data: pd.DataFrame | Panel,
        *,
        windows: int = 1,
        group: str | None = None,
        baselines: tuple[str, ...] = ("naive", "seasonal_naive", "naive2", "theta", "ets"),
        progress: bool = False,
        **columns,
    ):
        """Hold out the last ``windows`` × H steps of every series as K rolling origins; refit this
        forecaster's configuration at each origin and forecast it, next to the baselines.

        ``columns``: ``target=``, ``time=``, ``id=``, ``freq=`` and covariate lists, as in :meth:`fit`.
        ``group``: a column whose per-series value splits the metrics (e.g. M3's category).
        Returns a :class:`~lstmkit.tasks.evaluation.Backtest`; its ``table()`` is the metrics table.
        """
        from lstmkit.tasks.evaluation import backtest

        self._check_params()
        panel = data if isinstance(data, Panel) else _to_panel(data, columns)
        groups = None
        if group is not None:
            if isinstance(data, Panel) or group not in data.columns:
                raise DataError(f"group column {group!r} is not in the data; pass an existing column or omit --group")
            id_col = columns.get("id", "unique_id")
            if id_col in data.columns:
                first = data.groupby(data[id_col].astype(str), sort=False)[group].first()
                groups = first.reindex(panel.ids).to_numpy()
            else:
                groups = np.asarray([data[group].iloc[0]])
        return backtest(self, panel, windows=windows, groups=groups, baseline_models=tuple(baselines), progress=progress)

    def evaluate(self, data: pd.DataFrame | Panel, *, windows: int = 1, group: str | None = None, **kwargs) -> pd.DataFrame:
        """The metrics table of :meth:`backtest`: sMAPE, MASE, MAE, RMSE (+ CRPS and interval coverage
        with quantiles) for the LSTM and each baseline, overall and per group."""
        return self.backtest(data, windows=windows, group=group, **kwargs).table()

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` (+ ``metrics.json``) into ``path`` atomically."""
        self._check_fitted()
        path = _common.save_dir(path)
        tensors = {}
        for k, mem in enumerate(self.members_):
            tensors.update(_common.prefixed(mem.net, f"member{k}."))
        p = self.panel_
        tensors["data.y"] = torch.from_numpy(p.y)
        tensors["data.start"] = torch.from_numpy(p.start.astype(np.int64))
        tensors["data.seasonal"] = torch.from_numpy(self.seasonal_.astype(np.float32))
        for kind in ("past", "future", "static"):
            if getattr(p, kind) is not None:
                tensors[f"data.{kind}"] = torch.from_numpy(getattr(p, kind))
        digest = atomic_save_tensors(path / "weights.safetensors", tensors)
        last = p.last_time
        config = {
            **_common.format_header(FORMAT, FORMAT_VERSION),
            "params": self.get_params(),
            "fitted": asdict(self.fitted_),
            "lookback": self.lookback_,
            "level_window": self.level_window_,
            "loss": self.loss_,
            "members": [{"lookback": m.lookback, "seed": m.seed, "loss": m.loss, "net": m.net.cfg.to_dict()}
                        for m in self.members_],
            "series": {"ids": [str(i) for i in p.ids],
                       "last_time": [int(v) for v in last] if isinstance(p.freq, int) else [str(v) for v in last]},
            "weights_sha256": digest,
            "fit_seconds": getattr(self, "fit_seconds_", None),
        }  # fmt: skip
        return _common.finish_save(path, config, metrics)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Rebuild a fitted Forecaster from a directory written by :meth:`save` (no pickle involved)."""
        path = Path(path)
        cfg, tensors = read_model_dir(path, FORMAT, FORMAT_VERSION, "forecaster", "forecast fit")
        with _common.reading_model_dir(path):
            self = cls(**cfg["params"])
            self.fitted_ = _Fitted(**cfg["fitted"])
            self.season_ = self.fitted_.season
            self.lookback_, self.level_window_, self.loss_ = cfg["lookback"], cfg["level_window"], cfg["loss"]
            self.members_ = []
            for k, mem in enumerate(cfg["members"]):
                net = _common.load_prefixed(ForecastNet(ForecastNetConfig(**mem["net"])), tensors, f"member{k}.")
                self.members_.append(_Member(net, mem["lookback"], mem["seed"], mem["loss"]))
            names = self.fitted_.names
            freq = self.fitted_.freq
            last = cfg["series"]["last_time"]
            self.panel_ = Panel(
                ids=np.asarray(cfg["series"]["ids"], dtype=object),
                y=tensors["data.y"].numpy(),
                start=tensors["data.start"].numpy(),
                last_time=pd.Index(last if isinstance(freq, int) else pd.to_datetime(last)),
                freq=freq,
                past=tensors["data.past"].numpy() if "data.past" in tensors else None,
                future=tensors["data.future"].numpy() if "data.future" in tensors else None,
                static=tensors["data.static"].numpy() if "data.static" in tensors else None,
                names=names,
            )
            self.seasonal_ = tensors["data.seasonal"].numpy().astype(np.float64)
        return self


_PARAMS = [
    "horizon", "lookback", "quantiles", "hidden_size", "num_layers", "dropout", "variant", "decoder", "loss",
    "deseasonalize", "season_length", "level_window", "tail", "val_size", "ensemble", "steps", "batch_size",
    "lr", "clip", "patience", "steps_per_epoch", "seed",
]  # fmt: skip


def _to_panel(data: pd.DataFrame, columns: dict) -> Panel:
    known = {"target", "time", "id", "freq", "past_covariates", "future_covariates", "static_covariates"}
    unknown = set(columns) - known
    if unknown:
        raise ConfigError(f"unknown argument(s) {sorted(unknown)}; the column arguments are {sorted(known)}")
    kw = {k: (list(v) if k.endswith("covariates") else v) for k, v in columns.items()}
    return to_panel(data, **kw)


def _member_lookbacks(base: int, n: int, horizon: int) -> list[int]:
    """Ensemble members' lookbacks: the base one first, then ±50% around it (N-BEATS varies 2H–7H)."""
    if n == 1:
        return [base]
    factors = np.linspace(0.75, 1.5, n)
    out = [base] + [max(4, int(round(base * f))) for f in factors if abs(f - 1.0) > 1e-9]
    return out[:n] if len(out) >= n else (out * n)[:n]


def _fmt_q(q: float) -> str:
    return f"{q:g}"


def _now() -> float:
    return time.perf_counter()
