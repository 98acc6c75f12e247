"""Feed bytes → :class:`~watcher.values.ParsedFeed`.

Pure: no network, no clock (``now`` is passed in), and it never raises — a broken
body becomes ``ParsedFeed(problem=...)`` so one bad feed never stops a run.
RSS/Atom/RDF go through feedparser (always fed a byte stream, never a URL or path);
JSON Feed is read with :mod:`json`.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import heapq
import io
import json
import re
import threading
import xml.sax
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string, url_query_cleaner

from watcher.parse_guard import XmlInput, cut_excess_entries, prepare_xml
from watcher.values import Entry, ParsedFeed

__all__ = [
    "HTML_PAGE",
    "NO_ENTRIES",
    "canonical_link",
    "find_alternates",
    "html_to_text",
    "parse_feed",
    "shorten",
]

# Every field is capped here, at ingest, so no store, email or webhook ever carries more; a cut
# text ends with "…". Links and keys are not cut (a cut URL points elsewhere): an over-long link
# is dropped, an over-long key hashed. With the per-poll entry cap this bounds what a parse yields.
TITLE_LIMIT = 120
SUMMARY_LIMIT = 4000
AUTHOR_LIMIT = 200
FEED_TITLE_LIMIT = 200  # also every entry's source
LINK_LIMIT = 2048
KEY_LIMIT = 512
# With an entry cap, a parser reads at most this many times as many entries (in document order,
# where feeds put their newest first) and the newest are chosen among them.
PARSE_ENTRIES_FACTOR = 4
RAW_TEXT_LIMIT = 64 * 1024  # markup read for a title, author or feed title (the rest cannot show)
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

HTML_PAGE = "this is an HTML page, not a feed"
NO_ENTRIES = "the feed has no entries"  # a valid but empty feed: callers may treat it as success
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")

# Query parameters that only track the reader; dropping them makes one story one URL.
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "__hs", "_hs")
# fmt: off
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "_ga", "_gl", "ocid", "cmpid", "ncid", "sr_share", "spm",
        "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "wt_mc",
        "at_medium", "at_campaign", "ito", "ref_src", "mkt_tok", "__s",
    }
)
# fmt: on

DATE_KEYS = ("published_parsed", "updated_parsed", "created_parsed")  # in order of preference
SY_PERIOD_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}


# ---------------------------------------------------------------- text


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML fragment; block elements become spaces."""

    # fmt: off
    BLOCK = frozenset({
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    })
    # fmt: on
    SKIP = frozenset({"script", "style", "template", "noscript", "head", "title", "svg", "math"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])  # its ASCII part
_LOOKS_LIKE_TAG = re.compile(r"<(?:[a-zA-Z][\w:-]*(?:\s[^<>]*)?|/[a-zA-Z][\w:-]*\s*|!--.*?--)>", re.S)


def _alternation(words: Iterable[str], *, any_case: bool = False) -> str:
    """A regex matching any of ``words``, as a trie ("p(?:re)?"): the engine tries one branch per
    character instead of every word at every "<".

    ``any_case``: lower-case ASCII ``words`` in any ASCII case, without re.I. A first letter is
    then a branch per case and a later one a class ("[Pp]"): the engine passes over a branch that
    starts with another literal character at once, where under re.I it enters every branch.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def branch(node: dict[str, Any], first: bool) -> str:
        alts = []
        for ch, sub in sorted(node.items()):
            if not ch:
                continue
            rest = branch(sub, False)
            if not (any_case and ch.isalpha()):
                alts.append(re.escape(ch) + rest)
            elif first:
                alts += [ch.upper() + rest, ch + rest]
            else:
                alts.append(f"[{ch.upper()}{ch}]" + rest)
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return branch(trie, True)


# The "<" of a block element's tag: a space goes before it. A literal replacement (no group
# reference) keeps re.sub in C.
_BLOCK_TAG = re.compile(r"<(?=/?" + _alternation(_TextExtractor.BLOCK) + r"[\s/>])", re.I)
_DOCUMENT_END = re.compile(r"</(?:body|html)\s*>", re.I)  # libxml2 drops what follows them
# The same two on the UTF-8 the HTML parser gets, which is cheaper than on the str (the names'
# ASCII cases spelled out instead of re.I, no str pieces to join, no encoding after). They match
# where the str patterns match: "<" and every letter of the tag names are ASCII, so a match starts
# on a character, and "\s" is spelled out as the UTF-8 of every character it takes. re.I on a str
# also folds the four characters of _FOLDED_TO_ASCII to ASCII letters ("\u212a" is "k"): a text
# holding one takes the str patterns.
#
# What "\s" takes in a str pattern (str.isspace), spelled out once (a test compares it with "\s"
# over every code point). In a str class (_ABSOLUTE) it is a table lookup per character, where
# "\s" in a negated class is a category call; on bytes, a trie of the characters' UTF-8 (each
# byte read as a Latin-1 character for _alternation).
_UNICODE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_UNICODE_SPACE_UTF8 = _alternation(ch.encode().decode("latin-1") for ch in _UNICODE_SPACE).encode("latin-1")
_BLOCK_NAMES_UTF8 = _alternation(_TextExtractor.BLOCK, any_case=True).encode()
_BLOCK_TAG_UTF8 = re.compile(rb"<(?=/?" + _BLOCK_NAMES_UTF8 + rb"(?:[/>]|" + _UNICODE_SPACE_UTF8 + rb"))")
_DOCUMENT_END_UTF8 = re.compile(
    rb"</" + _alternation(("body", "html"), any_case=True).encode() + _UNICODE_SPACE_UTF8 + rb"*>"
)
_FOLDED_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")
_html_parsers = threading.local()


def _html_parser() -> Any:
    parser = getattr(_html_parsers, "parser", None)
    if parser is None:
        from lxml import etree

        parser = _html_parsers.parser = etree.HTMLParser(
            encoding="utf-8",
            recover=True,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            default_doctype=False,
            collect_ids=False,
            huge_tree=False,
        )
    return parser


def _marked(html: str) -> bytes:
    """What the HTML parser gets: block tags spaced apart, nothing after the document's end."""
    # (Testing a Latin-1 str for a wider character costs no scan.)
    if not html.isascii() and any(ch in html for ch in _FOLDED_TO_ASCII):
        return _BLOCK_TAG.sub(" <", _DOCUMENT_END.sub("", html)).encode("utf-8", "replace")
    data = html.encode("utf-8", "replace")
    return _BLOCK_TAG_UTF8.sub(b" <", _DOCUMENT_END_UTF8.sub(b"", data))


def _markup_text(html: str) -> str:
    """The text of an HTML fragment, a space where a block element starts or ends.

    libxml2's HTML parser (lxml) does the tokenizing in C; the spaces go in before it parses,
    so no Python code runs per element. Anything lxml refuses goes through HTMLParser.
    """
    from lxml import etree

    data = _marked(html)
    # Control characters are rare: a byte scan finds them (no UTF-8 sequence holds a byte below
    # 0x80) at a fraction of the regex's cost; only then are they dropped before the other passes.
    if len(data.translate(None, _CONTROL_BYTES)) != len(data) or "\ufffe" in html or "\uffff" in html:
        data = _marked(_CONTROL.sub("", html))
    try:
        root = etree.fromstring(data, _html_parser())
        if root is None:
            return ""
        etree.strip_elements(root, *_TextExtractor.SKIP, with_tail=False)
        return etree.tostring(root, method="text", encoding=str)
    except (etree.LxmlError, ValueError):
        parser = _TextExtractor()
        parser.feed(html)
        parser.close()
        return "".join(parser.parts)


def html_to_text(html: str | None, limit: int | None = None) -> str:
    """Visible text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    With ``limit``, ``shorten(html_to_text(html), limit)``: the whitespace and control characters
    of a long text are then dealt with only as far as the cut needs.
    """
    if not html:
        return ""
    text = html
    # A second pass catches double-escaped feeds ("&lt;p&gt;" that decodes to "<p>").
    for _ in range(2):
        if "<" in text:
            raw = _markup_text(text)
        elif "&" in text:  # no markup: what an HTML parser would do is decode the entities
            raw = unescape(text)
        else:
            raw = text
        # Collapsing whitespace neither makes nor breaks a tag-like match, so the raw text answers.
        if "<" not in raw or not _LOOKS_LIKE_TAG.search(raw):
            return _collapsed(raw, limit)
        text = " ".join(raw.split())
    return _collapsed(text, limit)


def _collapsed(raw: str, limit: int | None) -> str:
    """``raw`` with whitespace collapsed and control characters dropped, shortened to ``limit``.

    Both steps keep a prefix a prefix, so once the text of a head of ``raw`` is longer than
    ``limit``, shorten gives from it what it gives from the whole text (it reads limit - 1
    characters and whether there are more than limit).
    """
    if limit is None:
        return _clean(raw)
    head = limit + limit // 4  # enough for every long text of the corpus at the first try
    while head < len(raw):
        text = _clean(raw[:head])
        if len(text) > limit:
            return shorten(text, limit)
        head *= 4
    return shorten(_clean(raw), limit)


def _clean(raw: str) -> str:
    """``raw`` with whitespace collapsed and control characters dropped.

    Every whitespace character but " " is unprintable, so a printable text (most titles and plain
    summaries) is clean as it is unless it has two spaces in a row or one at an end: no split and
    join for it. Collapsing a printable text keeps it printable.
    """
    if raw.isprintable():
        if "  " in raw or raw.startswith(" ") or raw.endswith(" "):
            return " ".join(raw.split())
        return raw
    return _printable(" ".join(raw.split()))


def _printable(text: str) -> str:
    """``text`` without control characters; most texts have none, which a C check tells sooner."""
    return text if text.isprintable() else _CONTROL.sub("", text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–—") + "…"


# ---------------------------------------------------------------- links


def canonical_link(link: str | None, base: str | None = None) -> str | None:
    """Absolute http(s) URL with tracking parameters and the fragment removed; else None."""
    if not link or not isinstance(link, str):
        return None
    link = link.strip()
    plain = _PLAIN_URL.fullmatch(link)
    if plain is not None:  # most feed links: what _canonical_full gives, without its steps
        site, path, query = plain.groups()
        site, path = site.lower(), path or "/"
        if not query or not _tracking_names(query):
            return f"{site}{path}?{query}" if query else site + path
    return _canonical_full(link, base)


def _canonical_full(link: str, base: str | None) -> str | None:
    try:
        if base and not _ABSOLUTE.fullmatch(link):  # urljoin would give an absolute URL back as it is
            link = urljoin(base, link)
        parts = urlsplit(link)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        link = safe_url_string(link)
        parts = urlsplit(link)
        if parts.query:
            tracking = _tracking_names(parts.query)
            if tracking:
                link = url_query_cleaner(link, tracking, remove=True, unique=False, keep_fragments=True)
                parts = urlsplit(link)
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))
    except ValueError:  # e.g. a malformed IPv6 host
        return None


# An absolute http(s) URL that urljoin returns unchanged: a host, no empty "?" or "#", no ";params",
# no whitespace (urljoin re-splits such a URL and could drop or change those parts).
_ABSOLUTE = re.compile(
    rf"https?://[^/?#;{_UNICODE_SPACE}][^?#;{_UNICODE_SPACE}]*(?:\?[^#{_UNICODE_SPACE}]+)?(?:#[^{_UNICODE_SPACE}]+)?"
)


# An absolute http(s) URL that _canonical_full gives back as it is (but for the case of scheme and
# host, and "/" for an empty path): an ASCII host (no port, no userinfo), a path and
# query only of characters w3lib's safe_url_string never quotes (no "%", no "'"), no ";" in the path
# (urljoin would drop an empty ";params"), and a fragment, which is dropped anyway. safe_url_string
# keeps an ASCII host as it is (no IDNA, no IPv4 rewriting) and resolves no dot segments; a test
# compares both ways over generated URLs.
# Case is folded in the scheme only (the classes name both cases: folding there would cost a
# lower-casing per character), and in ASCII only: "\u212a" (Kelvin) is not "k" for the full steps.
_PLAIN_URL = re.compile(
    r"((?i:https?)://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(/[A-Za-z0-9\-._~!$&()*+,=:@/]*)?(?:\?([A-Za-z0-9\-._~!$&()*+,;=:@/?]*))?(?:#.*)?",
    re.S | re.A,
)


def _tracking_names(query: str) -> list[str]:
    names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    return [n for n in names if _is_tracking(n)]


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


# ---------------------------------------------------------------- dates


def _sane(dt: datetime | None, now: datetime) -> datetime | None:
    """UTC-aware ``dt`` if plausible for a news item, else None."""
    if dt is None:
        return None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if dt < EARLIEST or dt > now + FUTURE_SLACK:
        return None
    return dt


def _from_struct(value: Any) -> datetime | None:
    if value is None:  # most entries lack one of the dates: no exception for that
        return None
    try:  # the same instant as below while every field is in range (no leap second, no day 0)
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        pass
    try:  # JSON Feed says RFC 3339, but some publishers send RFC 822 dates
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- entries


def _entry_key(guid: Any, link: str | None, title: str, raw_date: str) -> str:
    ident = str(guid).strip() if isinstance(guid, (str, int)) else ""  # a tuple: no union built per call
    if ident:
        key = "id:" + ident.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    elif link:
        key = "link:" + link
    else:
        key = "hash:" + hashlib.sha1(f"{title}\x1f{raw_date}".encode()).hexdigest()
    if len(key) > KEY_LIMIT:  # keep keys index-friendly; a hash of a long id is just as stable
        kind = key.split(":", 1)[0]
        key = f"{kind}:sha1:" + hashlib.sha1(key.encode()).hexdigest()
    return key


def _make_entry(
    *,
    guid: Any,
    title_html: str | None,
    summary_html: str | None,
    link: str | None,
    dates: Iterable[datetime | None],
    raw_date: str,
    author: str | None,
    source: str | None,
    base: str | None,
    now: datetime,
) -> Entry:
    summary = html_to_text(summary_html, SUMMARY_LIMIT)
    title = html_to_text(_raw(title_html))
    canon = capped_link(link, base)
    fallback_title = title or summary or (canon or "") or "(untitled)"
    title = shorten(fallback_title, TITLE_LIMIT)
    published = now
    for date in dates:  # the first plausible one
        sane = _sane(date, now)
        if sane is not None:
            published = sane
            break
    return Entry(
        key=_entry_key(guid, canon, title, raw_date),
        title=title,
        summary=summary,
        link=canon,
        published=published,
        author=(html_to_text(_raw(author), AUTHOR_LIMIT) or None) if author else None,
        source=shorten(source, FEED_TITLE_LIMIT) if source else source,
    )


def _raw(markup: str | None) -> str | None:
    return markup[:RAW_TEXT_LIMIT] if markup and len(markup) > RAW_TEXT_LIMIT else markup


def capped_link(link: str | None, base: str | None = None) -> str | None:
    """:func:`canonical_link`, or None when it is longer than LINK_LIMIT (no cut URL is a URL)."""
    if link and len(link) > 4 * LINK_LIMIT:  # not worth canonicalizing
        return None
    canon = canonical_link(link, base)
    return canon if canon is None or len(canon) <= LINK_LIMIT else None


def feed_title(markup: str | None) -> str | None:
    return html_to_text(_raw(markup), FEED_TITLE_LIMIT) or None


def _fp_entry(e: Mapping[str, Any], source: str | None, base: str | None, now: datetime) -> Entry:
    summary = e.get("summary") or ""
    if not summary:
        for content in e.get("content") or ():
            if content.get("value"):
                summary = content["value"]
                break
    return _make_entry(
        guid=e.get("id"),
        title_html=e.get("title"),
        summary_html=summary,
        link=e.get("link"),
        # dict.get: FeedParserDict.get would alias the keys to each other with a DeprecationWarning.
        # All three at once (no generator): a missing one costs a None check.
        dates=(
            _from_struct(dict.get(e, "published_parsed")),
            _from_struct(dict.get(e, "updated_parsed")),
            _from_struct(dict.get(e, "created_parsed")),
        ),
        raw_date=str(dict.get(e, "published") or dict.get(e, "updated") or ""),
        author=e.get("author"),
        source=source,
        base=base,
        now=now,
    )


# ---------------------------------------------------------------- entry cap


T = TypeVar("T")
_UNDATED = float("inf")  # undated entries are stamped "now": the newest there are


def newest(raw: Sequence[T], date_of: Callable[[T], float | None], limit: int | None) -> Sequence[T]:
    """The ``limit`` newest of ``raw`` (all of them when within the limit), in document order."""
    if limit is None or len(raw) <= limit:
        return raw
    stamps = [(_stamp(date_of, r), i) for i, r in enumerate(raw)]
    keep = sorted(heapq.nlargest(limit, stamps, key=lambda s: (s[0], -s[1])), key=lambda s: s[1])
    return [raw[i] for _, i in keep]


def _stamp(date_of: Callable[[T], float | None], item: T) -> float:
    try:
        stamp = date_of(item)
    except Exception:  # an odd date is no date
        return _UNDATED
    return _UNDATED if stamp is None else stamp


def _fp_date(e: Mapping[str, Any]) -> float | None:
    for key in DATE_KEYS:
        value = dict.get(e, key)
        if value:
            return float(calendar.timegm(value))
    return None


def _json_date(item: Mapping[str, Any]) -> float | None:
    for key in ("date_published", "date_modified"):
        dt = _from_iso(item.get(key))
        if dt is not None:
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    return None


def _capped_note(total: int, limit: int | None) -> str | None:
    if limit is None or total <= limit:
        return None
    return f"the feed has {total:,} entries; only the newest {limit:,} were read"


# ---------------------------------------------------------------- formats


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    first = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return first == b"{" or (ctype in ("application/feed+json", "application/json") and first != b"<")


def _looks_like_html(body: bytes, content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    return ctype in ("text/html", "application/xhtml+xml") or head.startswith((b"<!doctype html", b"<html"))


class _AlternateFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, type)
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        if tag in ("link", "a") and "alternate" in a.get("rel", "").lower().split():
            ctype = a.get("type", "").split(";")[0].strip().lower()
            if ctype in FEED_TYPES and a.get("href"):
                self.links.append((a["href"], ctype))

    handle_startendtag = handle_starttag


def find_alternates(body: bytes, url: str | None) -> tuple[str, ...]:
    """Absolute URLs of the feeds an HTML page advertises with ``<link rel="alternate">``."""
    finder = _AlternateFinder()
    finder.feed(body.decode("utf-8", "replace"))
    finder.close()
    base = urljoin(url or "", finder.base) if finder.base else url
    out: list[str] = []
    for href, _ in finder.links:
        absolute = urljoin(base or "", href.strip())
        if urlsplit(absolute).scheme in ("http", "https") and absolute not in out:
            out.append(absolute)
    return tuple(out)


# feedparser 6.0.14's element handlers (its parsers' ``_start_*`` and ``_end_*`` methods, lower-cased;
# a prefixed element's handler has its prefix and "_" in front). A test compares it with feedparser's.
# fmt: off
FP_HANDLERS = frozenset({
    "abstract", "author", "body", "category", "cc_license", "channel", "cloud", "content",
    "content_encoded", "contributor", "copyright", "created", "creativecommons_license",
    "dc_author", "dc_contributor", "dc_creator", "dc_date", "dc_description", "dc_language",
    "dc_publisher", "dc_rights", "dc_subject", "dc_title", "dcterms_created", "dcterms_issued",
    "dcterms_modified", "dcterms_valid", "description", "email", "enclosure", "entry",
    "expirationdate", "feed", "feedburner_browserfriendly", "fullitem", "generator", "geom",
    "georss_box", "georss_line", "georss_point", "georss_polygon", "georss_where", "georssgeom",
    "gml_exterior", "gml_linearring", "gml_linestring", "gml_point", "gml_polygon", "gml_pos",
    "gml_poslist", "guid", "height", "homepage", "id", "image", "info", "issued", "item",
    "itunes_author", "itunes_block", "itunes_category", "itunes_email", "itunes_explicit",
    "itunes_image", "itunes_keywords", "itunes_link", "itunes_name", "itunes_owner",
    "itunes_subtitle", "itunes_summary", "keywords", "language", "lastbuilddate", "link",
    "managingeditor", "media_category", "media_content", "media_credit", "media_description",
    "media_group", "media_keywords", "media_license", "media_player", "media_rating",
    "media_restriction", "media_thumbnail", "media_title", "modified", "name", "newlocation",
    "psc_chapter", "psc_chapters", "pubdate", "published", "rights", "rss", "source",
    "subtitle", "summary", "tagline", "tags", "textinput", "title", "updated", "uri", "url",
    "webmaster", "where", "width", "xhtml_body",
})
# fmt: on
# Handlers an HTML page's elements reach that leave feedparser's feed without entry, version, title
# and link: <title> and <body> store nothing outside a channel, feed, entry or source (whose tags
# are not let through), and <link> is checked by its attributes (_inert_link).
_PAGE_HANDLERS = frozenset({"body", "title", "link"})
# Every start or end tag's name as either parser may read it: ASCII name characters, and every
# byte of a non-ASCII character (expat takes those into names; a name holding one is not let
# through); sgmllib reads an end tag's name after blanks.
_TAG_NAME = re.compile(rb"<(?:/\s*)?([A-Za-z_:\x80-\xff][-\w.:\x80-\xff]*)")
# What gives feedparser a version or entities without an element: the namespaces it takes for RSS
# 0.9/1.0 and Atom 1.0, a Netscape DOCTYPE, an entity declaration.
_VERSION_HINT = re.compile(rb"netscape|purl\.org/rss/1\.0|w3\.org/2005/atom|<!entity", re.I)
# A default namespace: expat then names unprefixed elements by it (XHTML's prefixes no handler but body).
_XMLNS = re.compile(rb"xmlns\s*=\s*(?:([\"'])http://www\.w3\.org/1999/xhtml\1)?", re.I)
# A <link> start tag read attribute by attribute, each parser's way: the tag ends at the first
# "<" or ">" (sgmllib's end, even inside quotes), an unquoted value only of characters sgmllib's
# attribute pattern takes (where it stops, later attributes would be lost to it: a rel among them).
_UNQUOTED = rb"[\]\[\-a-zA-Z0-9./,:;+*%?!&$()_#~@]+"
_ATTRIBUTE = re.compile(
    rb"""([A-Za-z_][-\w.:]*)(?:\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)'|(""" + _UNQUOTED + rb")))?"
)
_LINK_TAG = re.compile(rb"<link((?:\s+" + _ATTRIBUTE.pattern + rb")*)\s*/?>", re.I)
_LINK_START = re.compile(rb"<link(?![-\w.:\x80-\xff])", re.I)


def _inert_link(attributes: bytes) -> bool:
    """Does feedparser's ``_start_link`` leave the feed's link alone for a <link> with these
    attributes? It sets it from an href (or url, uri) when rel is "alternate" (the default) and
    type an HTML one (the default). Read loosely: any rel or type value that might say so counts."""
    href = False
    rels: list[bytes] = []
    types: list[bytes] = []
    for m in _ATTRIBUTE.finditer(attributes):
        name = m.group(1).lower()
        value = (m.group(2) or m.group(3) or m.group(4) or b"").lower()
        if name in (b"href", b"url", b"uri"):
            href = True
        elif name in (b"rel", b"type"):
            if b"&" in value:  # an entity could spell anything
                return False
            (rels if name == b"rel" else types).append(value)
    if not href:
        return True
    if rels and not any(b"alternate" in v for v in rels):
        return True
    return bool(types) and not any(b"html" in v for v in types)


def inert_page(document: bytes) -> bool:
    """Would feedparser (strict or loose) read an HTML page into a feed without entries, version,
    title or link, whatever else it holds? Decided from the bytes, leaning to "no": every tag name
    must be one without a feedparser handler (or one of _PAGE_HANDLERS), unprefixed and ASCII; the
    only default namespace XHTML's; no namespace, DOCTYPE or entity that sets a version; every
    <link> inert. Tags inside comments, scripts or CDATA count too."""
    if _VERSION_HINT.search(document):
        return False
    for m in _XMLNS.finditer(document):
        if m.group(1) is None:
            return False
    links = False
    for raw in set(_TAG_NAME.findall(document)):
        if b":" in raw or not raw.isascii():
            return False
        name = raw.decode("ascii").lower()
        if name in FP_HANDLERS:
            if name not in _PAGE_HANDLERS:
                return False
            links = links or name == "link"
    if links:
        for start in _LINK_START.finditer(document):
            tag = _LINK_TAG.match(document, start.start())
            # feedparser's loose parser turns &#34; and &#39; into quotes before it reads tags.
            if tag is None or b"&#" in tag.group(0) or not _inert_link(tag.group(1)):
                return False
    return True


def _describe_bozo(exc: BaseException | None, body: bytes) -> str:
    if exc is None:
        return "malformed feed"
    if isinstance(exc, xml.sax.SAXParseException):
        line = exc.getLineNumber()
        head = body[:80].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff \t\r\n")
        if not head.startswith(b"<?xml") and line > 1:
            line -= 1  # feedparser prepended an XML declaration line before parsing
        return f"not well-formed XML: {exc.getMessage()} at line {line}"
    name = type(exc).__name__
    if name == "CharacterEncodingOverride":
        return f"wrong character encoding declared: {exc}"
    if name == "CharacterEncodingUnknown":
        return f"unknown character encoding: {exc}"
    return f"malformed feed: {exc}"


def _ttl(feed: Mapping[str, Any]) -> int | None:
    try:
        if feed.get("ttl"):
            ttl = int(str(feed["ttl"]).strip())
            return ttl if 0 < ttl <= 525600 else None
        period = str(feed.get("sy_updateperiod") or "").strip().lower()
        if period in SY_PERIOD_MINUTES:
            freq = int(str(feed.get("sy_updatefrequency") or "1").strip() or 1)
            return max(1, SY_PERIOD_MINUTES[period] // max(1, freq))
    except ValueError:
        return None
    return None


def _is_quirk(exc: BaseException | None) -> bool:
    return type(exc).__name__ == "NonXMLContentType"


def _parse_fast(
    body: bytes, url: str | None, content_type: str | None, now: datetime, max_entries: int | None
) -> ParsedFeed | None:
    """The lxml path (:mod:`watcher.parse_fast`), or None where it cannot be trusted."""
    from watcher import parse_fast

    try:
        feed, raws, total = parse_fast.parse_xml(body, url, content_type, max_entries)
        title = feed_title(feed.get("title"))
        base = capped_link(feed.get("link"), url) or url
        entries = tuple(_fp_entry(raw, title, url or base, now) for raw in raws)
    except Exception:  # parse_fast.Untrusted, or anything unforeseen: feedparser decides
        return None
    return ParsedFeed(title, base, entries, _capped_note(total, max_entries), _ttl(feed))


def _trusted_encoding(xml_in: XmlInput) -> bool:
    """Decoded: an encoding found. Both paths then read the same UTF-8 bytes (feedparser's parse
    of them is a plain UTF-8 one, whatever the body was decoded from), so an encoding feedparser
    had to override (declared UTF-16 but read as UTF-8, invalid UTF-8 read as Windows-1252) is no
    reason for feedparser: the fast path words the override as feedparser's path does
    (:func:`_encoding_note`). A body no encoding decoded stays raw bytes: feedparser's."""
    return bool(xml_in.encoding)


def _encoding_note(xml_in: XmlInput, body: bytes) -> str | None:
    """The problem feedparser's path reports for a document it parses without error: the note on
    its encoding (an override), not a missing or odd Content-Type."""
    problem = xml_in.encoding_problem
    return None if problem is None or _is_quirk(problem) else _describe_bozo(problem, body)


def fast_path_refusal(body: bytes, url: str | None = None, content_type: str | None = None) -> str | None:
    """Why ``parse_feed(parser="fast")`` hands this XML body to feedparser (a short class name such
    as ``"xml"``, ``"encoding"`` or ``"count"``), or None when the fast path reads it."""
    from watcher import parse_fast

    xml_in = prepare_xml(body, content_type, url)
    if xml_in.refusal:
        return "refused"
    if not _trusted_encoding(xml_in):
        return "encoding"
    try:
        parse_fast.parse_xml(xml_in.body, url, xml_in.content_type)
    except parse_fast.Untrusted as exc:
        return exc.reason
    except Exception:
        return "exception"
    return None


def _parse_xml(
    body: bytes,
    url: str | None,
    content_type: str | None,
    now: datetime,
    max_entries: int | None,
    parser: str = "fast",
) -> ParsedFeed:
    # Decoded and checked once; the parser gets exactly the UTF-8 bytes that were checked.
    xml_in = prepare_xml(body, content_type, url)
    if xml_in.refusal:
        return ParsedFeed(title=None, link=None, entries=(), problem=xml_in.refusal)
    # Entries far past the cap are not worth any parser's time: both paths read the cut document.
    document, total = xml_in.body, None
    if max_entries is not None:
        document, total = cut_excess_entries(document, max_entries * PARSE_ENTRIES_FACTOR)
    # Both paths read the same decoded bytes (an encoding override included); a body that no
    # encoding decoded keeps feedparser.
    if parser == "fast" and _trusted_encoding(xml_in):
        fast = _parse_fast(document, url, xml_in.content_type, now, max_entries)
        if fast is not None:
            note = _encoding_note(xml_in, body)  # outranks the cap's note, as in feedparser's path
            if note is not None:
                fast = dataclasses.replace(fast, problem=note)
            elif total is not None and max_entries is not None and total > max_entries:
                fast = dataclasses.replace(fast, problem=_capped_note(total, max_entries))
            return fast
        if _looks_like_html(body, content_type) and inert_page(document):
            # What feedparser's path gives such a page (below: a feed without title or link), without
            # its parse: a page that is not well-formed costs it a strict and a loose parse of all of it.
            return ParsedFeed(None, url, (), HTML_PAGE, None, find_alternates(body, url))
    import feedparser  # imported on first use: it costs start-up time, and the fast path rarely needs it

    headers = {"content-location": url or ""}
    if xml_in.content_type:
        headers["content-type"] = xml_in.content_type
    # A stream, never bytes: feedparser would try to open a body like b"/etc/passwd" as a file.
    # Every field is flattened to plain text by html_to_text (which drops script and style), so
    # feedparser's own HTML sanitizer and relative-URI rewriting would only do work that is thrown
    # away (and the rewriting would copy a hostile xml:base into every href).
    result = feedparser.parse(
        io.BytesIO(document), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    feed = result.get("feed", {})
    title = feed_title(feed.get("title"))
    base = capped_link(feed.get("link"), url) or url
    raw_entries = result.get("entries", [])
    entries = []
    for raw in newest(raw_entries, _fp_date, max_entries):
        try:
            entries.append(_fp_entry(raw, title, url or base, now))
        except Exception:  # one odd entry must not cost the others
            continue
    # A missing or odd Content-Type is the server's quirk, not a broken body: not worth a problem.
    # A parse error outranks the note on the encoding, which outranks that quirk (as in feedparser).
    exc = result.get("bozo_exception") if result.get("bozo") else None
    if (exc is None or _is_quirk(exc)) and xml_in.encoding_problem is not None:
        exc = xml_in.encoding_problem
    quirk = _is_quirk(exc)
    problem = _describe_bozo(exc, body) if exc is not None and not quirk else None
    if not entries:
        if _looks_like_html(body, content_type) and not result.get("version"):
            return ParsedFeed(title, base, (), HTML_PAGE, None, find_alternates(body, url))
        problem = problem or (NO_ENTRIES if result.get("version") else "not a feed")
    problem = problem or _capped_note(max(total or 0, len(raw_entries)), max_entries)
    return ParsedFeed(title, base, tuple(entries), problem, _ttl(feed))


def _parse_json(body: bytes, url: str | None, now: datetime, max_entries: int | None) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return ParsedFeed(title=None, link=None, entries=(), problem=f"not valid JSON: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return ParsedFeed(title=None, link=None, entries=(), problem="JSON, but not a JSON Feed (no items)")
    title = feed_title(str(doc.get("title") or ""))
    base = url or (doc.get("feed_url") if isinstance(doc.get("feed_url"), str) else None)
    home = capped_link(doc.get("home_page_url"), base)
    feed_author = _json_author(doc)
    entries = []
    items = [item for item in doc["items"] if isinstance(item, dict)]
    for item in newest(items, _json_date, max_entries):
        try:
            entries.append(_json_entry(item, title, base, feed_author, now))
        except Exception:  # one odd item must not cost the others
            continue
    problem = None if entries else NO_ENTRIES
    return ParsedFeed(title, home, tuple(entries), problem or _capped_note(len(items), max_entries))


def _json_author(obj: Mapping[str, Any]) -> str | None:
    authors = obj.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    if isinstance(author, dict) and isinstance(author.get("name"), str):
        return author["name"]
    return None


def _json_entry(
    item: Mapping[str, Any], source: str | None, base: str | None, author: str | None, now: datetime
) -> Entry:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value if isinstance(value, str) else None

    return _make_entry(
        guid=item.get("id"),
        title_html=text("title"),
        summary_html=text("summary") or text("content_html") or text("content_text"),
        link=text("url") or text("external_url"),
        dates=(_from_iso(item.get("date_published")), _from_iso(item.get("date_modified"))),
        raw_date=str(item.get("date_published") or item.get("date_modified") or ""),
        author=_json_author(item) or author,
        source=source,
        base=base,
        now=now,
    )


PARSERS = ("fast", "feedparser")


def parse_feed(
    body: bytes,
    *,
    url: str | None = None,
    content_type: str | None = None,
    now: datetime,
    max_entries: int | None = None,
    parser: str = "fast",
) -> ParsedFeed:
    """Parse one fetched body. Never raises: failures come back as ``problem``.

    ``parser="fast"`` reads RSS/Atom with lxml (:mod:`watcher.parse_fast`) and falls back to
    feedparser wherever that path cannot be trusted; ``"feedparser"`` always uses feedparser.
    JSON Feed is read the same way by both.

    ``max_entries`` keeps only the newest entries (by date; undated ones count as newest, in
    document order), chosen before any is normalized, so a feed of 300,000 items costs little more
    than one of ``max_entries``.
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    try:
        if not body or body.isspace():  # not body.strip(), which copies the whole body
            return ParsedFeed(title=None, link=None, entries=(), problem="empty document")
        if _looks_like_json(body, content_type):
            return _parse_json(body, url, now, max_entries)
        return _parse_xml(body, url, content_type, now, max_entries, parser)
    except Exception as exc:  # the contract: a bad body is recorded state, not a crash
        return ParsedFeed(
            title=None, link=None, entries=(), problem=f"parser failure: {type(exc).__name__}: {exc}"
        )
