"""Translation demo data made with real linguistic rules: pairs ``(source, target)`` of strings.

Two demos, both deterministic given ``seed`` and split into disjoint train / test parts:

- ``numbers-pt``: a number written with digits → its European-Portuguese words, by ``num2words(n, lang="pt")``
  (``"1234"`` → ``"mil duzentos e trinta e quatro"``, ``"16"`` → ``"dezasseis"``). ``n`` is drawn in two
  stages so that every magnitude is seen: first the digit count ``d`` uniformly from 1…6, then ``n``
  uniformly among the ``d``-digit numbers (``d = 1``: 0…9). So 0…999,999 is covered, each magnitude gets a
  sixth of the pairs, and the structures of small numbers ("dezasseis", "cento e um") are not drowned by
  six-digit ones, as they would be under a uniform draw.
- ``dates``: a calendar date written by Babel's CLDR rules in one of six locales (pt_BR, pt_PT, en_US,
  de_DE, fr_FR, es_ES) and one of the formats ``short`` / ``medium`` / ``long`` / ``full`` or a custom
  pattern (:data:`CUSTOM_PATTERNS`) → the ISO date ``YYYY-MM-DD`` (``"27 de novembro de 2026"`` →
  ``"2026-11-27"``). The date is uniform over 1950-01-01…2049-12-31, locale and format uniform. Two-digit
  years (``dd/MM/yy``) read with the usual pivot: 50–99 → 19xx, 00–49 → 20xx, so every string names one
  date. en_US's ``short`` format ``M/d/yy`` is left out: "5/6/26" is 6 May in es_ES's ``d/M/yy`` and May 6
  in en_US, so with both in the data a source string would have two targets and no model could be right.

Train / test disjointness: every *target* (the number, the ISO date) belongs to exactly one part, chosen by
a keyed hash of the target (:data:`TEST_SHARE` of them are test), independent of ``seed`` and ``n``. So no
test number or date — let alone a test source string — ever appears in any training set, whatever the
seeds and sizes of the two calls.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmkit.errors import ConfigError

LOCALES = ("pt_BR", "pt_PT", "en_US", "de_DE", "fr_FR", "es_ES")
STANDARD_FORMATS = ("short", "medium", "long", "full")
# Patterns in CLDR syntax that every locale fills with its own month and weekday names.
CUSTOM_PATTERNS = ("d MMMM yyyy", "EEE, d MMM yyyy", "dd-MM-yyyy", "yyyy/MM/dd", "d.M.yy")
# (locale, format) pairs left out, and why: see the module docstring.
EXCLUDED = {("en_US", "short")}
FIRST_DATE = _dt.date(1950, 1, 1)
LAST_DATE = _dt.date(2049, 12, 31)
MAX_DIGITS = 6
TEST_SHARE = 0.1
_SALT = b"lstmkit-translation-demo-v1"


def _needs(package: str, extra: str = "text"):
    try:
        return __import__(package)
    except ImportError:
        raise ConfigError(f"the translation demo data needs {package}; pip install {package} (or lstmkit[{extra}])") from None


def is_test(target: str) -> bool:
    """Whether ``target`` belongs to the test part (a keyed hash, so the split never depends on a seed)."""
    h = hashlib.blake2b(target.encode(), key=_SALT, digest_size=8).digest()
    return int.from_bytes(h, "little") % 1_000_000 < TEST_SHARE * 1_000_000


# ------------------------------------------------------------------------------------------ numbers
def number_words(n: int) -> str:
    """European-Portuguese words for ``n`` (``num2words(n, lang="pt")``)."""
    num2words = _needs("num2words").num2words
    return num2words(int(n), lang="pt")


def _draw_number(rng: np.random.Generator) -> int:
    d = int(rng.integers(1, MAX_DIGITS + 1))
    lo = 0 if d == 1 else 10 ** (d - 1)
    return int(rng.integers(lo, 10**d))


def _number_pair(rng: np.random.Generator) -> tuple[str, str, str]:
    n = _draw_number(rng)
    return str(n), number_words(n), str(n)


# ------------------------------------------------------------------------------------------ dates
def date_formats(locale: str) -> list[str]:
    """The formats used for ``locale``: the standard names (minus :data:`EXCLUDED`) then the custom patterns."""
    return [f for f in STANDARD_FORMATS if (locale, f) not in EXCLUDED] + list(CUSTOM_PATTERNS)


def format_date(date: _dt.date, fmt: str, locale: str) -> str:
    """``date`` written in ``locale`` by Babel: ``fmt`` is a standard name or a CLDR pattern."""
    _needs("babel")
    from babel.dates import format_date as babel_format

    return babel_format(date, format=fmt, locale=locale)


def _draw_date(rng: np.random.Generator) -> _dt.date:
    span = (LAST_DATE - FIRST_DATE).days + 1
    return FIRST_DATE + _dt.timedelta(days=int(rng.integers(0, span)))


def _date_pair(rng: np.random.Generator) -> tuple[str, str, str]:
    date = _draw_date(rng)
    locale = LOCALES[int(rng.integers(0, len(LOCALES)))]
    formats = date_formats(locale)
    fmt = formats[int(rng.integers(0, len(formats)))]
    return format_date(date, fmt, locale), date.isoformat(), f"{locale}|{fmt}"


# ------------------------------------------------------------------------------------------ API
@dataclass(frozen=True)
class Demo:
    name: str
    description: str
    draw: Callable[[np.random.Generator], tuple[str, str, str]]  # rng -> (source, target, how it was made)
    steps: int  # optimiser steps (batch 64) that reach the target; measured in benchmarks/translation.py


DEMOS = {
    "numbers-pt": Demo("numbers-pt", "digits → European-Portuguese number words (num2words), 0…999,999", _number_pair, 1000),
    "dates": Demo("dates", "dates in 6 locales × short/medium/long/full/custom formats (Babel) → ISO YYYY-MM-DD", _date_pair, 800),
}


def get_demo(name: str) -> Demo:
    if name not in DEMOS:
        raise ConfigError(f"unknown translation demo {name!r}; choose one of {', '.join(DEMOS)}")
    return DEMOS[name]


def make_pairs(name: str, n: int, *, split: str = "train", seed: int = 0, unique: bool | None = None,
               with_meta: bool = False) -> list[tuple[str, str]] | list[tuple[str, str, str]]:  # fmt: skip
    """``n`` pairs of demo ``name`` from the ``split`` part (``"train"`` or ``"test"``).

    ``unique`` (default: on for test, off for train) draws distinct source strings only. With ``with_meta``
    each pair carries a third string saying how it was made (``"pt_BR|long"`` for dates).
    """
    demo = get_demo(name)
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer (how many pairs), got {n!r}")
    unique = split == "test" if unique is None else unique
    want_test = split == "test"
    # Separate random streams for train and test, so asking for more of one never changes the other.
    rng = np.random.default_rng([seed, 1 if want_test else 0, 7919])
    out, seen = [], set()
    tries, limit = 0, 200 * n + 10_000
    while len(out) < n:
        tries += 1
        if tries > limit:
            raise ConfigError(f"could not draw {n} distinct {split} pairs of {name!r}; ask for fewer (--n)")
        src, tgt, meta = demo.draw(rng)
        if is_test(tgt) != want_test or (unique and src in seen):
            continue
        seen.add(src)
        out.append((src, tgt, meta) if with_meta else (src, tgt))
    return out
