"""feedparser's date parser, with its two common forms read directly.

``parse_date`` gives exactly what ``feedparser.datetimes._parse_date`` gives (a UTC
``time.struct_time`` or None) for every string: the usual RFC 822 form ("Sun, 18 Jan 2009
18:24:37 GMT", "… -0700") and the usual W3DTF form ("2009-01-22T18:05:47Z", "…+02:00", with
or without a fraction of a second) are read by one anchored regex each, with feedparser's
arithmetic; anything else, and any value out of range, goes to feedparser's own chain of
handlers. The saving is feedparser's tries: W3DTF is tried first on every date, RFC 822 second,
each splitting and lower-casing the string in Python. A test compares both over every date of
the corpus and over generated ones.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from feedparser.datetimes import _parse_date as _feedparser_date
from feedparser.datetimes.rfc822 import months, timezone_names

__all__ = ["parse_date"]

# RFC 822 as feedparser's handler splits it: an optional day name (its first three letters name a
# day), day, month (its first three letters name one), a four-digit year, hh:mm[:ss], and a zone
# that is a known name or +hhmm/-hhmm. ASCII only, single spaces or more between the parts.
_RFC822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,? +)?([0-9]{1,2}) +"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* +([0-9]{4}) +"
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))? +(?:([a-z]+)|([+-])([0-9]{2})([0-9]{2}))",
    re.ASCII | re.IGNORECASE,
)
# W3DTF as feedparser's handler reads it: date, "T", hh:mm:ss with an optional fraction (cut off;
# at most 9 digits, which float() cannot round up to the next second), and "Z" or ±hh:mm.
_W3DTF = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


def _utc(stamp: datetime, sign: str | None, hours: str, minutes: str) -> time.struct_time:
    if sign is None:
        return stamp.utctimetuple()
    offset = int(hours) * 3600 + int(minutes) * 60
    return (stamp - timedelta(0, -offset if sign == "-" else offset)).utctimetuple()


def _rfc822(match: re.Match[str]) -> time.struct_time | None:
    day, month, year, hour, minute, second, zone, sign, zh, zm = match.groups()
    stamp = datetime(int(year), months[month.lower()], int(day), int(hour), int(minute), int(second or 0))
    if zone is None:
        return _utc(stamp, sign, zh, zm)
    zone = zone.lower()
    # feedparser reads any other name as +0000 too, but "gmt…" names its own way: its chain decides
    offset = 0 if zone == "utc" else timezone_names.get(zone)
    if offset is None:
        return None
    return (stamp - timedelta(0, offset * 3600)).utctimetuple() if offset else stamp.utctimetuple()


def _w3dtf(match: re.Match[str]) -> time.struct_time:
    year, month, day, hour, minute, second, sign, zh, zm = match.groups()
    stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    return _utc(stamp, sign, zh, zm)


def parse_date(value: str) -> time.struct_time | None:
    """``feedparser.datetimes._parse_date(value)``, the common forms read directly."""
    if not value:
        return None
    try:
        match = _W3DTF.fullmatch(value)
        if match is not None:
            return _w3dtf(match)
        match = _RFC822.fullmatch(value)
        if match is not None:
            parsed = _rfc822(match)
            if parsed is not None:
                return parsed
    except (ValueError, OverflowError):  # a day 31 in June, an hour 24: feedparser's chain decides
        pass
    return _feedparser_date(value)
