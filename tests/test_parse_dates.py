"""watcher.parse_dates gives what feedparser's date parser gives: every corpus date, many made-up ones."""

from __future__ import annotations

import random
import re

from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.datetimes.rfc822 import timezone_names

from tests.conftest import need_shared
from watcher.parse_dates import _RFC822, _W3DTF, parse_date

_DATE_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?(?:pubDate|published|updated|modified|issued|created|date|lastBuildDate)\b[^>]*>([^<]{1,200})<",
    re.I,
)


def _same(values: list[str]) -> tuple[int, int]:
    """(values read by our own regexes, values compared); fails on the first disagreement."""
    direct = 0
    for value in values:
        assert parse_date(value) == feedparser_date(value), value
        direct += bool(_W3DTF.fullmatch(value) or _RFC822.fullmatch(value))
    return direct, len(values)


def test_every_corpus_date() -> None:
    corpus = need_shared("corpus", "feeds")
    values = set()
    for path in corpus.rglob("*"):
        if path.is_file() and path.suffix != ".jsonl":
            for raw in _DATE_ELEMENT.findall(path.read_bytes()):
                values.add(raw.decode("utf-8", "replace").strip())
    direct, total = _same(sorted(values))
    assert total > 1000 and direct / total > 0.8, (direct, total)


def _rfc822_like(rng: random.Random) -> str:
    day_name = rng.choice(["", "Mon, ", "Tue, ", "Thu ", "Sunday, ", "sat, ", "Tues, ", "Xyz, ", "Mon,"])
    day = rng.choice(["1", "01", "9", "28", "29", "30", "31", "0", "00", "32", "99", "123"])
    month = rng.choice(["Jan", "feb", "MAR", "Sept", "June", "Oct", "Dec", "Foo", "Ja"])
    year = rng.choice(["2009", "1999", "2024", "0000", "0001", "9999", "99", "20245"])
    hms = rng.choice(
        ["18:24:37", "00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "1:02:03", "12:00:00:00"]
    )
    zone = rng.choice(
        [
            *timezone_names,
            "UTC",
            "utc",
            "GMT",
            "Gmt",
            "CEST",
            "gmta",
            "gmt+1",
            "etc/gmt",
            "+0000",
            "-0700",
            "+0530",
            "-1200",
            "+9959",
            "+05:30",
            "-07",
            "Z",
            "",
        ]
    )
    space = rng.choice([" ", " ", " ", "  ", "\t"])
    return space.join(p for p in (day_name.rstrip(), day, month, year, hms, zone) if p)


def _w3dtf_like(rng: random.Random) -> str:
    date = rng.choice(
        ["2009-01-22", "2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "2009-13-01", "2009-1-2"]
    )
    sep = rng.choice(["T", "t", " "])
    hms = rng.choice(["18:05:47", "00:00:00", "23:59:59", "24:00:00", "18:05", "18:05:60", "18:05:47.5"])
    frac = rng.choice(["", ".1", ".123456", ".999999999", ".9999999999999999999", ".", ".12345678901"])
    zone = rng.choice(
        ["Z", "z", "+02:00", "-05:30", "+00:00", "-00:00", "+14:00", "+0200", "-05", "+99:99", ""]
    )
    return f"{date}{sep}{hms}{frac}{zone}"


def test_generated_dates() -> None:
    rng = random.Random(14)
    values = [_rfc822_like(rng) for _ in range(20_000)] + [_w3dtf_like(rng) for _ in range(20_000)]
    direct, total = _same(values)
    assert direct > total // 10  # the comparison covers the direct path, not only the fall-back


def test_common_forms_read_directly() -> None:
    for value in (
        "Sun, 18 Jan 2009 18:24:37 GMT",
        "Sat, 20 Jul 2024 12:31:08 -0700",
        "2009-01-22T18:05:47Z",
        "2025-06-01T10:00:00.123+02:00",
        "18 Jan 2009 18:24 EST",
    ):
        assert _W3DTF.fullmatch(value) or _RFC822.fullmatch(value), value
        assert parse_date(value) == feedparser_date(value) is not None, value
    assert parse_date("") is None and parse_date("not a date") is None
