"""The translation demo data: the linguistic rules against hand-worked strings, dates parsed back by an
independent parser for every locale × format, disjoint train/test parts, determinism."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict

import pytest

pytest.importorskip("num2words")
pytest.importorskip("babel")

from lstmkit.data import translation_demo as demo
from lstmkit.errors import ConfigError

# ------------------------------------------------------------------------------------------ numbers
# European Portuguese, written out by hand (num2words' "pt" is Portugal's: "dezasseis", not "dezesseis").
PT_WORDS = {
    0: "zero", 7: "sete", 16: "dezasseis", 19: "dezanove", 21: "vinte e um", 100: "cem", 101: "cento e um",
    123: "cento e vinte e três", 1000: "mil", 1001: "mil e um", 1234: "mil duzentos e trinta e quatro",
    2000: "dois mil", 21000: "vinte e um mil", 101000: "cento e um mil",
    999999: "novecentos e noventa e nove mil novecentos e noventa e nove",
}  # fmt: skip


@pytest.mark.parametrize("n", sorted(PT_WORDS))
def test_number_words_match_hand_written_portuguese(n):
    assert demo.number_words(n) == PT_WORDS[n]


def test_number_pairs_follow_the_rule_and_cover_every_magnitude():
    pairs = demo.make_pairs("numbers-pt", 1200, seed=3)
    digits = Counter()
    for src, tgt in pairs:
        assert src.isdigit() and 0 <= int(src) <= 999_999 and str(int(src)) == src
        assert tgt == demo.number_words(int(src))
        digits[len(src)] += 1
    # Digit count uniform on 1…6: each gets 200 ± sampling noise (binomial sd ≈ 13).
    assert sorted(digits) == [1, 2, 3, 4, 5, 6]
    assert all(140 <= c <= 260 for c in digits.values()), digits


# ------------------------------------------------------------------------------------------ dates
HAND_WORKED = [
    ("pt_BR", "long", "27 de novembro de 2026"),
    ("pt_BR", "full", "sexta-feira, 27 de novembro de 2026"),
    ("pt_PT", "short", "27/11/26"),
    ("en_US", "medium", "Nov 27, 2026"),
    ("en_US", "full", "Friday, November 27, 2026"),
    ("de_DE", "full", "Freitag, 27. November 2026"),
    ("fr_FR", "long", "27 novembre 2026"),
    ("es_ES", "long", "27 de noviembre de 2026"),
    ("es_ES", "short", "27/11/26"),
    ("de_DE", "yyyy/MM/dd", "2026/11/27"),
]


@pytest.mark.parametrize("locale,fmt,text", HAND_WORKED)
def test_dates_match_hand_worked_strings(locale, fmt, text):
    assert demo.format_date(dt.date(2026, 11, 27), fmt, locale) == text


MONTHS = {  # full month names, written out by hand; abbreviations are their prefixes ("févr.", "Sep", "mai.")
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
    "en": "january february march april may june july august september october november december",
    "de": "januar februar märz april mai juni juli august september oktober november dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
}


def parse_back(text: str, locale: str, fmt: str) -> str:
    """An independent reading of ``text``: month by name (or position in the pattern), year with the
    50/49 pivot for two digits, day; the weekday, when the pattern starts with one, is skipped."""
    from babel.dates import get_date_format

    pattern = get_date_format(fmt, locale).pattern if fmt in demo.STANDARD_FORMATS else fmt
    words = re.findall(r"[^\W\d_]+\.?", text.lower())
    if pattern.startswith("E"):
        words = words[1:]
    names = MONTHS[locale[:2]].split()
    month = None
    for w in words:
        hits = [i + 1 for i, name in enumerate(names) if name.startswith(w.rstrip("."))]
        if len(w.rstrip(".")) >= 3 and len(hits) == 1:
            assert month is None, (text, w)
            month = hits[0]
    numbers = [int(x) for x in re.findall(r"\d+", text)]
    order = [c for c in re.sub(r"'[^']*'", "", pattern) if c in "dMy"]
    fields = "".join(dict.fromkeys(order))  # e.g. "dMy", "Mdy", "yMd"
    if month is None:
        assert len(numbers) == 3, (text, pattern)
        got = dict(zip(fields, numbers))
    else:
        assert len(numbers) == 2, (text, pattern)
        got = dict(zip(fields.replace("M", ""), numbers), M=month)
    year = got["y"]
    if year < 100:
        year += 1900 if year >= 50 else 2000
    return f"{year:04d}-{got['M']:02d}-{got['d']:02d}"


DATES = [dt.date(1950, 1, 5), dt.date(1999, 12, 31), dt.date(2000, 2, 29), dt.date(2026, 5, 6), dt.date(2026, 11, 27),
         dt.date(2049, 12, 31), dt.date(1969, 7, 20)]  # fmt: skip


@pytest.mark.parametrize("locale", demo.LOCALES)
def test_every_locale_and_format_parses_back_to_the_iso_target(locale):
    for fmt in demo.date_formats(locale):
        for d in DATES:
            text = demo.format_date(d, fmt, locale)
            assert parse_back(text, locale, fmt) == d.isoformat(), (locale, fmt, text)


def test_generated_date_pairs_parse_back_to_their_targets():
    for src, tgt, meta in demo.make_pairs("dates", 400, seed=1, with_meta=True):
        locale, fmt = meta.split("|")
        assert parse_back(src, locale, fmt) == tgt, (src, tgt, meta)
        assert "1950-01-01" <= tgt <= "2049-12-31"


def test_en_us_short_is_excluded_because_it_collides_with_day_first_locales():
    may_6 = dt.date(2026, 5, 6)
    # The reason, shown: the same string would mean 6 May in es_ES and May 6 in en_US.
    assert demo.format_date(may_6, "short", "en_US") == demo.format_date(dt.date(2026, 6, 5), "short", "es_ES") == "5/6/26"
    assert "short" not in demo.date_formats("en_US") and "short" in demo.date_formats("es_ES")


@pytest.mark.parametrize("name", list(demo.DEMOS))
def test_every_source_has_one_target(name):
    targets = defaultdict(set)
    for src, tgt in demo.make_pairs(name, 3000, seed=2) + demo.make_pairs(name, 500, split="test", seed=2):
        targets[src].add(tgt)
    assert all(len(t) == 1 for t in targets.values())


# ------------------------------------------------------------------------------------------ splits
@pytest.mark.parametrize("name", list(demo.DEMOS))
def test_train_and_test_are_disjoint_and_deterministic(name):
    train = demo.make_pairs(name, 2000, seed=0)
    test = demo.make_pairs(name, 300, split="test", seed=5)
    assert not {s for s, _ in train} & {s for s, _ in test}
    assert not {t for _, t in train} & {t for _, t in test}  # not even the same date / number
    assert all(demo.is_test(t) for _, t in test) and not any(demo.is_test(t) for _, t in train)
    assert len({s for s, _ in test}) == 300  # test sources are distinct
    assert demo.make_pairs(name, 2000, seed=0) == train
    assert demo.make_pairs(name, 2000, seed=1) != train
    # Asking for more training pairs never changes the test pairs (separate random streams).
    assert demo.make_pairs(name, 300, split="test", seed=5) == test
    assert demo.make_pairs(name, 50, seed=0) == train[:50]


def test_test_share_is_about_ten_percent():
    share = sum(demo.is_test(str(n)) for n in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


@pytest.mark.parametrize("kwargs", [{"name": "klingon", "n": 5}, {"name": "dates", "n": 0}, {"name": "dates", "n": 5, "split": "dev"}])
def test_bad_arguments_raise_config_errors(kwargs):
    with pytest.raises(ConfigError):
        demo.make_pairs(**kwargs)
