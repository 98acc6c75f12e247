"""parse_feed: normalization, problems, HTML pages, JSON Feed and XML attacks."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher.parse import (
    _PLAIN_URL,
    HTML_PAGE,
    NO_ENTRIES,
    _canonical_full,
    canonical_link,
    html_to_text,
    parse_feed,
    shorten,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example.org/feeds/world.xml"
TAG = re.compile(r"</?[a-zA-Z][\w:-]*(\s[^<>]*)?/?>")


def rss(items: str, channel_extra: str = "", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}\n'
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>World &amp; More</title><link>https://news.example.org/</link>{channel_extra}"
        f"{items}</channel></rss>"
    ).encode()


def item(**fields: str) -> str:
    return "<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</item>"


def one(body: bytes, **kw: object) -> object:
    parsed = parse_feed(body, url=FEED_URL, now=NOW, **kw)  # type: ignore[arg-type]
    assert len(parsed.entries) == 1, parsed
    return parsed.entries[0]


# ---------------------------------------------------------------- entries


def test_rss_entry_is_normalized() -> None:
    body = rss(
        item(
            title="Talks &lt;b&gt;resume&lt;/b&gt; in Tripoli",
            link="/2026/03/talks.html?utm_source=rss&amp;utm_medium=feed&amp;id=7&amp;fbclid=x#comments",
            description="&lt;p&gt;Delegations   met &amp;amp; talked.&lt;/p&gt;"
            "&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Second&amp;nbsp;paragraph.&lt;/p&gt;",
            guid="urn:uuid:1234",
            pubDate="Sun, 01 Mar 2026 09:30:00 +0100",
            author="desk@example.org (World Desk)",
        )
    )
    parsed = parse_feed(body, url=FEED_URL, now=NOW)
    assert parsed.problem is None
    assert parsed.title == "World & More"
    (e,) = parsed.entries
    assert e.title == "Talks resume in Tripoli"
    assert e.summary == "Delegations met & talked. Second paragraph."
    assert e.link == "https://news.example.org/2026/03/talks.html?id=7"
    assert e.published == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert e.published.utcoffset() == timedelta(0)
    assert e.key == "id:urn:uuid:1234"
    assert e.source == "World & More"
    assert e.author and "World Desk" in e.author


def test_atom_entry_with_relative_link_and_updated_only() -> None:
    body = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.net/">
  <title type="html">A &lt;i&gt;blog&lt;/i&gt;</title>
  <entry>
    <title>Post</title>
    <id>tag:blog.example.net,2026:1</id>
    <link rel="alternate" href="posts/1?mc_cid=abc&amp;mc_eid=def&amp;page=2"/>
    <updated>2026-02-28T10:00:00Z</updated>
    <content type="html">&lt;div&gt;Body &lt;a href="x"&gt;link&lt;/a&gt;&lt;/div&gt;</content>
    <author><name>Ann</name></author>
  </entry>
</feed>"""
    parsed = parse_feed(body, url="https://blog.example.net/atom.xml", now=NOW)
    assert parsed.title == "A blog"
    (e,) = parsed.entries
    assert e.link == "https://blog.example.net/posts/1?page=2"
    assert e.published == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert e.summary == "Body link"
    assert e.author == "Ann"


def test_missing_title_comes_from_summary_at_a_word_boundary() -> None:
    words = "Ministers from both governments agreed on Tuesday to reopen the border crossing " * 3
    e = one(rss(item(description=words, link="https://e.org/a")))
    assert e.title.endswith("…")
    assert len(e.title) <= 120
    assert words.startswith(e.title[:-1])
    assert e.title[:-1] == e.title[:-1].rstrip()  # cut between words, not inside one


def test_entry_with_nothing_still_has_a_title() -> None:
    e = one(rss('<item><guid isPermaLink="false">only-a-guid</guid></item>'))
    assert e.title == "(untitled)"
    assert e.key == "id:only-a-guid"


@pytest.mark.parametrize(
    ("pub", "expected"),
    [
        ("Sat, 01 Jan 1994 00:00:00 GMT", NOW),  # before 1995: absurd
        ("Mon, 01 Jan 2035 00:00:00 GMT", NOW),  # years ahead
        ("Sun, 01 Mar 2026 23:00:00 GMT", datetime(2026, 3, 1, 23, tzinfo=UTC)),  # hours ahead: clock skew
        ("not a date", NOW),
    ],
)
def test_absurd_dates_become_now(pub: str, expected: datetime) -> None:
    assert one(rss(item(title="t", pubDate=pub))).published == expected


def test_missing_date_is_now_and_naive_now_is_taken_as_utc() -> None:
    e = parse_feed(rss(item(title="t")), now=NOW.replace(tzinfo=None)).entries[0]
    assert e.published == NOW and e.published.tzinfo is not None


def test_keys_fall_back_from_guid_to_link_to_hash() -> None:
    by_link = one(rss(item(title="t", link="https://e.org/a?utm_campaign=x")))
    assert by_link.key == "link:https://e.org/a"
    hashed = one(rss(item(title="Only a title", pubDate="Sun, 01 Mar 2026 09:00:00 GMT")))
    again = parse_feed(
        rss(item(title="Only a title", pubDate="Sun, 01 Mar 2026 09:00:00 GMT")),
        url=FEED_URL,
        now=NOW + timedelta(hours=3),
    ).entries[0]
    assert hashed.key.startswith("hash:") and hashed.key == again.key  # stable across polls


def test_undated_hash_key_is_stable_although_published_is_now() -> None:
    a = parse_feed(rss(item(title="Same")), now=NOW).entries[0]
    b = parse_feed(rss(item(title="Same")), now=NOW + timedelta(days=1)).entries[0]
    assert a.key == b.key


def test_very_long_guid_is_hashed() -> None:
    e = one(rss(item(title="t", guid="x" * 5000)))
    assert e.key.startswith("id:sha1:") and len(e.key) < 100


def test_ttl_and_sy_update_period() -> None:
    assert parse_feed(rss(item(title="t"), "<ttl>90</ttl>"), now=NOW).ttl_minutes == 90
    sy = "<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>"
    assert parse_feed(rss(item(title="t"), sy), now=NOW).ttl_minutes == 360
    assert parse_feed(rss(item(title="t"), "<ttl>soon</ttl>"), now=NOW).ttl_minutes is None


# ---------------------------------------------------------------- helpers


def test_html_to_text() -> None:
    assert html_to_text("<p>a</p><p>b<br>c</p>") == "a b c"
    assert html_to_text("x &amp; y &eacute; &#8212; z") == "x & y é — z"
    assert html_to_text("<style>p{}</style><script>x()</script>kept") == "kept"
    assert html_to_text("&lt;b&gt;double&lt;/b&gt; escaped") == "double escaped"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("nul\x00byte") == "nulbyte"
    assert html_to_text(None) == ""


def test_shorten() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("one two three four", 12) == "one two…"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://E.org/a?utm_source=x&b=1&UTM_Medium=y", "https://e.org/a?b=1"),
        ("https://e.org/a?gclid=1&fbclid=2&mc_cid=3&mc_eid=4&_ga=5#frag", "https://e.org/a"),
        ("https://e.org/a?q=caf%C3%A9&x=1", "https://e.org/a?q=caf%C3%A9&x=1"),
        ("https://e.org", "https://e.org/"),
        ("javascript:alert(1)", None),
        ("mailto:a@e.org", None),
        ("", None),
        ("http://[::1", None),
    ],
)
def test_canonical_link(link: str, expected: str | None) -> None:
    assert canonical_link(link) == expected


def test_canonical_link_shortcut_gives_what_the_full_steps_give() -> None:
    """Plain URLs skip urljoin/w3lib/urlsplit; over URLs built from the characters and hosts where
    those steps change something (ports, "%", quotes, ";", IDNA, IPv6, userinfo, tracking names),
    the shortcut must give exactly what the full steps give, with and without a base."""
    rng = random.Random(14)
    schemes = ["http://", "https://", "HTTP://", "Https://", "ftp://", "http:/", "//", "http\u017f://"]
    hosts = ["a.example", "A.Example.COM", "127.0.0.1", "0x7f.1", "xn--bcher-kva.example", "ab--c.example",
             "a..b", "x.example:8080", "x.example:0080", "x.example:99999", "u:p@h.example", "[::1]",
             "h.example.", "h_x.example", "h.example:", "bücher.example", "\u212aa.example"]  # fmt: skip
    pieces = [*"/aB-._~!$&'()*+,;=:@%é|[]\\^`{\"<?#", " ", "\t", "\n", "..", "%2e", "%41", "%zz", "//"]
    pieces += ["utm_source=x", "fbclid=1", "a=1", "UTM_Medium=2", "utm%5Fsource=3"]
    pieces += ["\u017f", "\u0131", "\u0130", "\u212a"]  # non-ASCII letters that case-fold to ASCII ones
    bases = [None, "https://base.example/dir/page", "http://b.example/", "HTTP://c.example/x;y"]
    shortcut = 0
    plain = [p for p in pieces if _PLAIN_URL.fullmatch("http://h/" + p)]
    for _ in range(8_000):
        some = plain if rng.random() < 0.5 else pieces  # half of them likely to take the shortcut
        url = rng.choice(schemes) + rng.choice(hosts) + "".join(rng.choices(some, k=rng.randint(0, 8)))
        shortcut += bool(_PLAIN_URL.fullmatch(url))
        for base in bases:
            assert canonical_link(url, base) == _canonical_full(url.strip(), base), (url, base)
    assert shortcut > 300  # the shortcut was exercised, not only the full steps


# ---------------------------------------------------------------- problems


def test_broken_xml_without_entries_names_the_problem() -> None:
    parsed = parse_feed(b"<rss><channel><title>x</wrong></channel></rss>", now=NOW)
    assert parsed.entries == ()
    assert parsed.problem and parsed.problem.startswith("not well-formed XML: mismatched tag at line 1")


def test_broken_xml_with_entries_keeps_them_and_notes_it() -> None:
    body = rss(item(title="A & B", link="https://e.org/1") + item(title="ok", link="https://e.org/2"))
    parsed = parse_feed(body, now=NOW)
    assert len(parsed.entries) == 2
    assert parsed.problem and "not well-formed" in parsed.problem


def test_valid_but_empty_feed() -> None:
    assert parse_feed(rss(""), now=NOW).problem == NO_ENTRIES


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\xff\xfe", b"plain text", b"{not json", b"[1,2]", b"<"])
def test_garbage_never_raises(body: bytes) -> None:
    parsed = parse_feed(body, now=NOW)
    assert parsed.entries == () and parsed.problem


def test_truncated_and_mangled_bodies_never_raise() -> None:
    body = rss(
        item(title="t &amp; u", link="/a", description="&lt;p&gt;x&lt;/p&gt;", pubDate="Sun, 01 Mar 2026")
    )
    json_body = b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "title": "t"}]}'
    for source in (body, json_body, body.decode().encode("utf-16")):
        for cut in range(0, len(source), 7):
            parsed = parse_feed(source[:cut], now=NOW)
            assert parsed.entries or parsed.problem
            mangled = source[:cut] + b"\xff\x00<" + source[cut:]
            assert parse_feed(mangled, now=NOW) is not None


def test_file_path_body_is_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "feed.xml"
    secret.write_bytes(rss(item(title="LOCAL-FILE-CONTENT")))
    parsed = parse_feed(str(secret).encode(), now=NOW)
    assert parsed.entries == ()


def test_html_page_reports_its_feed_alternates() -> None:
    page = b"""<!DOCTYPE html><html><head><title>News</title>
<link rel="alternate" type="application/rss+xml" href="/feed.xml">
<link rel="alternate" type="application/atom+xml" href="https://cdn.example.org/atom">
<link rel="alternate" type="application/feed+json" href="feed.json">
<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
<link rel="stylesheet" href="/s.css">
</head><body><p>Hello</p></body></html>"""
    parsed = parse_feed(page, url="https://www.example.org/news/", content_type="text/html", now=NOW)
    assert parsed.problem == HTML_PAGE
    assert parsed.entries == ()
    assert parsed.alternates == (
        "https://www.example.org/feed.xml",
        "https://cdn.example.org/atom",
        "https://www.example.org/news/feed.json",
    )


def test_feed_served_as_text_html_is_still_a_feed() -> None:
    parsed = parse_feed(rss(item(title="t")), content_type="text/html; charset=utf-8", now=NOW)
    assert len(parsed.entries) == 1 and parsed.problem is None


# ---------------------------------------------------------------- JSON Feed


def test_json_feed() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON News",
        "home_page_url": "https://j.example.org/",
        "authors": [{"name": "Desk"}],
        "items": [
            {
                "id": "1",
                "url": "https://j.example.org/1?utm_source=json",
                "title": "First",
                "content_html": "<p>Hello <b>world</b></p>",
                "date_published": "2026-02-27T08:00:00+02:00",
            },
            {"id": 2, "content_text": "No title here", "date_modified": "2026-02-28T00:00:00Z"},
            {"url": "/relative", "summary": "s"},
            "garbage",
        ],
    }
    parsed = parse_feed(
        json.dumps(doc).encode(),
        url="https://j.example.org/feed.json",
        content_type="application/feed+json",
        now=NOW,
    )
    assert parsed.problem is None and parsed.title == "JSON News"
    a, b, c = parsed.entries
    assert (a.key, a.title, a.summary, a.link) == ("id:1", "First", "Hello world", "https://j.example.org/1")
    assert a.published == datetime(2026, 2, 27, 6, tzinfo=UTC) and a.author == "Desk"
    assert (b.key, b.title, b.published) == ("id:2", "No title here", datetime(2026, 2, 28, tzinfo=UTC))
    assert c.key == "link:https://j.example.org/relative" and c.published == NOW


def test_json_that_is_not_a_feed() -> None:
    assert parse_feed(b'{"hello": 1}', now=NOW).problem == "JSON, but not a JSON Feed (no items)"


# ---------------------------------------------------------------- XML attacks


def _bounded(body: bytes) -> tuple[object, float, int]:
    """Parse in a thread with a hard wall-clock bound; return (result, seconds, peak bytes)."""
    box: dict[str, object] = {}
    tracemalloc.start()
    start = time.monotonic()
    worker = threading.Thread(target=lambda: box.update(r=parse_feed(body, now=NOW)), daemon=True)
    worker.start()
    worker.join(10)
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not worker.is_alive(), "parse_feed did not return within 10 s"
    return box["r"], elapsed, peak


LOL = "".join(
    ['<!ENTITY lol "lol">']
    + [f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">' for i in range(1, 10)]
)


@pytest.mark.parametrize("newline", ["", "\n"])  # one-line DTDs slip past feedparser's own line-based regexes
def test_billion_laughs_is_harmless(newline: str) -> None:
    dtd = f"<!DOCTYPE rss [{newline}{LOL.replace('><', '>' + newline + '<')}{newline}]>"
    body = rss(item(title="boom &lol9;", description="&lol9;"), prolog=dtd)
    parsed, elapsed, peak = _bounded(body)
    assert elapsed < 2 and peak < 20 * 1024 * 1024
    assert parsed.entries == ()  # type: ignore[attr-defined]
    assert parsed.problem and parsed.problem.startswith("refused:")  # type: ignore[attr-defined]
    assert "lol" * 100 not in repr(parsed)


def test_quadratic_blowup_is_harmless() -> None:
    dtd = f'<!DOCTYPE rss [<!ENTITY a "{"x" * 50_000}">]>'
    body = rss(item(title="t", description="&a;" * 50_000), prolog=dtd)
    parsed, elapsed, peak = _bounded(body)
    assert elapsed < 2 and peak < 50 * 1024 * 1024
    assert parsed.problem and parsed.problem.startswith("refused:")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "dtd",
    [
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>',
        '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{path}">\n]>',
        '<!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//x//y" "file://{path}">]>',
        '<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{path}"> %p;]>',
        '<!DOCTYPE rss SYSTEM "file://{path}">',
    ],
)
def test_external_entities_never_leak_files(tmp_path: Path, dtd: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    body = rss(item(title="t &xxe;", description="d &xxe;"), prolog=dtd.format(path=secret))
    parsed, elapsed, _ = _bounded(body)
    assert "TOP-SECRET" not in repr(parsed)
    assert elapsed < 2


def test_external_entity_in_utf16_is_refused_too(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-utf16")
    text = rss(
        item(title="t &xxe;"), prolog=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    ).decode()
    body = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    parsed = parse_feed(body, now=NOW)
    assert "TOP-SECRET" not in repr(parsed)
    assert parsed.problem and parsed.problem.startswith("refused:")


def test_plain_text_entities_still_work() -> None:
    body = rss(item(title="Rights &copy2;"), prolog='\n<!DOCTYPE rss [\n<!ENTITY copy2 "(C)">\n]>')
    assert one(body).title == "Rights (C)"


def test_summaries_never_contain_tags() -> None:
    body = rss(
        item(title="<![CDATA[<em>t</em>]]>", description="<![CDATA[<div><img src=x onerror=y>a</div>]]>")
    )
    e = one(body)
    assert not TAG.search(e.title + e.summary)
    assert (e.title, e.summary) == ("t", "a")
