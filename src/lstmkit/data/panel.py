"""From a user's table to a panel of series: checks, a regular time grid, and covariates as arrays.

A *panel* holds N series right-aligned in one (N, T) float array: every series' last observation sits
in the last column, the columns before its first observation are NaN, and so are missing values inside
it. Right alignment puts every forecast origin in the same column, so training windows and forecasts
are plain slices and gathers with no per-series Python.

Input is long format (one row per series × time step: ``unique_id, ds, y`` + covariate columns, the
statsforecast / NeuralForecast convention) or a single series (no id column). Time is dates or integers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.errors import DataError

SINGLE_SERIES_ID = "series"

# Seasonal period by the frequency's base unit (what M3 / statsforecast use).
_SEASON = {"M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4, "W": 52, "D": 7, "B": 5, "h": 24, "H": 24,
           "min": 60, "T": 60, "s": 60, "S": 60, "Y": 1, "YS": 1, "YE": 1, "A": 1, "AS": 1}  # fmt: skip


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; a :class:`DataError` naming the file and the fix otherwise."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist; check the path (or use `lstmkit datasets export`)")
    if p.is_dir():
        raise DataError(f"data file {str(p)!r} is a directory; pass a CSV or Parquet file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt", ".tsv", ".gz", ""):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except ImportError as e:
        raise DataError(f"reading {str(p)!r} needs an optional package ({e}); `pip install pyarrow`") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read {str(p)!r} as a table ({first}); pass a UTF-8 CSV or a Parquet file") from None
    raise DataError(f"data file {str(p)!r} has suffix {suffix!r}; pass a .csv or .parquet file")


def iter_table(path: str | Path, chunk_rows: int = 500_000) -> Iterator[pd.DataFrame]:
    """Read a CSV or Parquet file in chunks of about ``chunk_rows`` rows (checks as :func:`read_table`)."""
    p = Path(path)
    if not p.exists() or p.is_dir():
        read_table(p)  # raises the same clear error
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(p).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    try:
        yield from pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", chunksize=chunk_rows)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read {str(p)!r} as a table ({first}); pass a UTF-8 CSV or a Parquet file") from None


@dataclass
class Panel:
    """N series on a common regular grid, right-aligned, plus their covariates."""

    ids: np.ndarray  # (N,) series ids, in first-appearance order
    y: np.ndarray  # (N, T) float32 target, NaN before each start and where missing
    start: np.ndarray  # (N,) column of each series' first observation
    last_time: pd.Index  # (N,) time of each series' last row
    freq: str | int  # pandas offset alias, or the integer step for integer time
    past: np.ndarray | None = None  # (N, T, Cp) past covariates (known up to the origin)
    future: np.ndarray | None = None  # (N, T + H, Cf) future covariates (known over the horizon too)
    static: np.ndarray | None = None  # (N, Cs)
    names: dict = field(default_factory=dict)  # column names: id, time, target, past, future, static

    @property
    def n_series(self) -> int:
        return self.y.shape[0]

    @property
    def lengths(self) -> np.ndarray:
        return self.y.shape[1] - self.start

    def future_times(self, horizon: int) -> np.ndarray:
        """(N, horizon) times of the steps after each series' last observation."""
        return future_times(self.last_time, self.freq, horizon)

    def truncate(self, steps: int) -> Panel:
        """The panel as it was ``steps`` steps ago: the last ``steps`` columns of every series dropped.

        Future covariates are kept whole (they are known over the held-out horizon).
        """
        if steps <= 0:
            return self
        T = self.y.shape[1] - steps
        if isinstance(self.freq, (int, np.integer)):
            last = pd.Index(np.asarray(self.last_time, dtype=np.int64) - steps * int(self.freq))
        else:
            last = pd.DatetimeIndex(self.last_time) - steps * pd.tseries.frequencies.to_offset(self.freq)
        return Panel(
            ids=self.ids, y=self.y[:, :T], start=np.minimum(self.start, T), last_time=last, freq=self.freq,
            past=None if self.past is None else self.past[:, :T], future=self.future, static=self.static,
            names=self.names,
        )


def season_length(freq: str | int) -> int:
    """The seasonal period a frequency implies (12 monthly, 4 quarterly, 7 daily, 24 hourly, …)."""
    if isinstance(freq, (int, np.integer)):
        return 1
    off = pd.tseries.frequencies.to_offset(freq)
    base = off.name.split("-")[0]
    base = "".join(ch for ch in base if not ch.isdigit())
    if off.n > 1 and base in ("min", "T"):
        return max(1, int(round(24 * 60 / off.n)))  # e.g. half-hourly: a day of 48 steps
    if off.n > 1 and base in ("h", "H"):
        return max(1, int(round(24 / off.n)))
    return _SEASON.get(base, 1)


def _calendar_base(off: pd.DateOffset) -> str | None:
    """The period alias for calendar offsets whose length varies (months, quarters, years)."""
    name = off.name.split("-")[0]
    for prefix, period in (("Q", "Q"), ("M", "M"), ("Y", "Y"), ("A", "Y"), ("B", "B")):
        if name.startswith(prefix):
            return period
    return None


def infer_freq(times: pd.Series, ids: np.ndarray) -> str | int:
    """The step of the time grid: integer step for integer time, else a pandas offset alias."""
    if pd.api.types.is_integer_dtype(times):
        diffs = np.diff(times.to_numpy())[ids[1:] == ids[:-1]]
        diffs = diffs[diffs > 0]
        return int(np.gcd.reduce(diffs)) if diffs.size else 1
    # The longest series decides; pandas needs three consecutive points to name a frequency.
    counts = pd.Series(ids).value_counts()
    longest = times[ids == counts.index[0]]
    freq = pd.infer_freq(pd.DatetimeIndex(longest)) if len(longest) >= 3 else None
    if freq is None:
        d = pd.DatetimeIndex(longest).to_series().diff().dropna()
        if d.empty:
            raise DataError("cannot infer the time frequency from one time step; pass --freq (e.g. D, W, MS)")
        freq = pd.tseries.frequencies.to_offset(d.min()).freqstr
    return freq


def time_positions(times: pd.Series, freq: str | int) -> np.ndarray:
    """Integer grid positions of ``times`` (only differences between them matter)."""
    if isinstance(freq, (int, np.integer)):
        v = times.to_numpy().astype(np.int64)
        return v // int(freq) if freq > 1 else v
    off = pd.tseries.frequencies.to_offset(freq)
    base = _calendar_base(off)
    dt = pd.DatetimeIndex(times)
    if base is not None:
        return dt.to_period(base).asi8 // max(1, off.n)
    step = pd.Timedelta(off).value
    ns = dt.asi8
    return (ns - ns.min()) // step


def future_times(last: pd.Index, freq: str | int, horizon: int) -> np.ndarray:
    """(N, horizon) times following each entry of ``last``."""
    steps = np.arange(1, horizon + 1)
    if isinstance(freq, (int, np.integer)):
        return np.asarray(last, dtype=np.int64)[:, None] + int(freq) * steps[None, :]
    off = pd.tseries.frequencies.to_offset(freq)
    idx = pd.DatetimeIndex(last)
    return np.stack([(idx + k * off).to_numpy() for k in steps], axis=1)


def to_panel(
    df: pd.DataFrame,
    *,
    target: str = "y",
    time: str = "ds",
    id: str | None = "unique_id",
    freq: str | int | None = None,
    past_covariates: list[str] = (),
    future_covariates: list[str] = (),
    static_covariates: list[str] = (),
    source: str = "data",
) -> Panel:
    """Check ``df`` and lay it out as a :class:`Panel`.

    Errors name the column, series or row and the fix: unknown columns, a non-numeric target,
    duplicate timestamps, unsortable or off-grid times, series with no finite value.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise DataError(f"{source} has no rows; pass a table with at least one series")
    cols = list(df.columns)
    single = id is None or (id == "unique_id" and id not in df.columns)
    wanted = [("target", target), ("time", time)] + ([] if single else [("id", id)])
    wanted += [("past covariate", c) for c in past_covariates] + [("future covariate", c) for c in future_covariates]
    wanted += [("static covariate", c) for c in static_covariates]
    for role, col in wanted:
        if col not in df.columns:
            raise DataError(
                f"{source} has no {role} column {col!r}; its columns are {cols}. "
                f"Pass the right name (e.g. --{role.split()[-1] if role != 'id' else 'id'} COLUMN)"
            )
    df = df.copy()
    df["__id"] = SINGLE_SERIES_ID if single else df[id].astype(str)
    y = pd.to_numeric(df[target], errors="coerce")
    bad = y.isna() & df[target].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"target column {target!r} must be numeric, but row {row} holds {df[target].iloc[row]!r}; "
            "clean that column or pick another with --target"
        )
    df["__y"] = y.astype(np.float64)
    t = df[time]
    if not (pd.api.types.is_integer_dtype(t) or pd.api.types.is_datetime64_any_dtype(t)):
        if pd.api.types.is_numeric_dtype(t):
            frac = t.isna() | (t % 1 != 0)
            if frac.any():
                row = int(np.flatnonzero(frac.to_numpy())[0])
                raise DataError(
                    f"time column {time!r} must hold integers or dates, but row {row} holds {t.iloc[row]!r}; "
                    "use whole time-step numbers or dates"
                )
            t = t.astype(np.int64)
        else:
            t = pd.to_datetime(t, errors="coerce", format="mixed")
            if t.isna().any():
                row = int(np.flatnonzero(t.isna().to_numpy())[0])
                raise DataError(
                    f"time column {time!r} must hold dates or integers, but row {row} holds "
                    f"{df[time].iloc[row]!r}; fix that value or pick another column with --time"
                )
    if pd.api.types.is_datetime64_any_dtype(t) and getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_localize(None)
    df["__t"] = t
    dup = df.duplicated(["__id", "__t"], keep=False)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"series {df['__id'].iloc[row]!r} has duplicate timestamps ({df['__t'].iloc[row]} at row {row} "
            "and again later); keep one row per series and time step (aggregate the duplicates first)"
        )
    order = pd.unique(df["__id"])
    df["__order"] = pd.Categorical(df["__id"], categories=order).codes
    df = df.sort_values(["__order", "__t"], kind="stable").reset_index(drop=True)
    ids_codes = df["__order"].to_numpy()

    if freq is None:
        freq = infer_freq(df["__t"], ids_codes)
    else:
        freq = _check_freq(freq, df["__t"])
    try:
        pos = time_positions(df["__t"], freq)
    except (ValueError, TypeError) as e:
        raise DataError(f"time column {time!r} does not fit frequency {freq!r} ({e}); pass the right --freq") from None
    if not isinstance(freq, (int, np.integer)):
        off = pd.tseries.frequencies.to_offset(freq)
        if _calendar_base(off) is None:
            ns = pd.DatetimeIndex(df["__t"]).asi8
            off_grid = (ns - ns.min()) % pd.Timedelta(off).value != 0
        else:
            off_grid = np.zeros(len(df), dtype=bool)
    else:
        off_grid = (df["__t"].to_numpy() % int(freq)) != (df["__t"].to_numpy().min() % int(freq))
    if off_grid.any():
        row = int(np.flatnonzero(off_grid)[0])
        raise DataError(
            f"time column {time!r} is irregular: {df['__t'].iloc[row]} (series {df['__id'].iloc[row]!r}) is not on "
            f"the {freq!r} grid of the other rows; resample the data to a regular frequency or pass --freq"
        )
    same_step = np.r_[False, (ids_codes[1:] == ids_codes[:-1]) & (pos[1:] == pos[:-1])]
    if same_step.any():
        row = int(np.flatnonzero(same_step)[0])
        raise DataError(
            f"series {df['__id'].iloc[row]!r} has two rows in the same {freq!r} time step "
            f"({df['__t'].iloc[row - 1]} and {df['__t'].iloc[row]}); aggregate them to one row per step or pass a finer --freq"
        )
    first = np.r_[True, ids_codes[1:] != ids_codes[:-1]]
    seg_start = np.maximum.accumulate(np.where(first, np.arange(len(df)), 0))
    rel = pos - pos[seg_start]  # position within each series
    N = len(order)
    yfin = np.isfinite(df["__y"].to_numpy())
    last_obs = np.full(N, -1, dtype=np.int64)
    np.maximum.at(last_obs, ids_codes[yfin], rel[yfin])
    if (last_obs < 0).any():
        bad_id = order[np.flatnonzero(last_obs < 0)[0]]
        raise DataError(
            f"series {bad_id!r} has no numeric value in target column {target!r} (all missing); drop that series"
        )
    # Right-align every series at its last observed target; rows after it (target missing) can only
    # carry future covariates for the forecast horizon.
    T = int(last_obs.max()) + 1
    col = rel + (T - 1 - last_obs[ids_codes])
    extra = int(max(0, (col - (T - 1)).max()))
    hist = col < T
    yv = np.full((N, T), np.nan, dtype=np.float32)
    yv[ids_codes[hist], col[hist]] = df["__y"].to_numpy(np.float32)[hist]
    start = np.full(N, T, dtype=np.int64)
    np.minimum.at(start, ids_codes, np.clip(col, 0, T))
    # time of each series' last observed target
    last_row = np.full(N, -1, dtype=np.int64)
    np.maximum.at(last_row, ids_codes[yfin], np.flatnonzero(yfin))
    last_time = pd.Index(df["__t"].to_numpy()[last_row])

    def cube(names: list[str], width: int, rows: np.ndarray) -> np.ndarray | None:
        if not names:
            return None
        arr = np.full((N, width, len(names)), np.nan, dtype=np.float32)
        vals = df[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        arr[ids_codes[rows], col[rows]] = vals[rows]
        return arr

    past = cube(list(past_covariates), T, hist)
    fut = cube(list(future_covariates), T + extra, np.ones(len(df), dtype=bool))
    static = None
    if static_covariates:
        st = df.loc[first, list(static_covariates)]
        static = st.apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        if np.isnan(static).any():
            c = static_covariates[int(np.flatnonzero(np.isnan(static).any(axis=0))[0])]
            raise DataError(f"static covariate {c!r} must be numeric and present for every series; encode it as numbers")
    return Panel(
        ids=np.asarray(order, dtype=object),
        y=yv,
        start=start,
        last_time=last_time,
        freq=freq,
        past=past,
        future=fut,
        static=static,
        names={"id": None if single else id, "time": time, "target": target, "past": list(past_covariates),
               "future": list(future_covariates), "static": list(static_covariates)},  # fmt: skip
    )


def _check_freq(freq: str | int, times: pd.Series) -> str | int:
    if pd.api.types.is_integer_dtype(times):
        try:
            step = int(freq)
        except (TypeError, ValueError):
            raise DataError(f"--freq {freq!r} must be an integer step for integer time (e.g. 1)") from None
        if step < 1:
            raise DataError(f"--freq must be a positive integer step for integer time, got {freq!r}")
        return step
    try:
        return pd.tseries.frequencies.to_offset(str(freq)).freqstr
    except ValueError:
        raise DataError(f"--freq {freq!r} is not a pandas frequency; use e.g. D, W, MS, QS, h, 30min") from None
