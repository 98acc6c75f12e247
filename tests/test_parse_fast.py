"""The fast parse path (lxml) against feedparser: same entries, feedparser wherever it cannot be trusted.

The corpus test runs both paths over every file of ../shared/corpus/feeds and lists every
remaining difference by class (and why the fast path handed a file to feedparser); it fails
when any entry differs in title, canonical link, text, date, key, author or source, or when
the fast path gives fewer entries for any file.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import urllib.parse
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from tests.conftest import need_shared
from tests.feedserver import FeedServer
from watcher import parse_fast
from watcher.config import ConfigError, load_settings
from watcher.parse import FP_HANDLERS, HTML_PAGE, _looks_like_json, fast_path_refusal, inert_page, parse_feed

NOW = datetime(2026, 3, 1, tzinfo=UTC)
FIELDS = ("title", "link", "summary", "published", "key", "author", "source")  # what must agree


def _reason(body: bytes, url: str, content_type: str | None = None) -> str:
    if _looks_like_json(body, content_type):
        return "json"  # JSON Feed: one reader for both paths
    return fast_path_refusal(body, url, content_type) or "fast"


def _both(body: bytes, url: str | None = None, content_type: str | None = None):
    slow = parse_feed(body, url=url, content_type=content_type, now=NOW, parser="feedparser")
    fast = parse_feed(body, url=url, content_type=content_type, now=NOW, parser="fast")
    return slow, fast


def test_whole_corpus_same_entries_both_paths() -> None:
    corpus = need_shared("corpus", "feeds")
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line]
    assert len(rows) >= 270
    reasons: Counter[str] = Counter()
    differences: dict[str, list[str]] = defaultdict(list)
    fewer: list[str] = []
    total = same = fast_entries = 0
    for row in rows:
        body = (corpus / row["path"]).read_bytes()
        url = f"https://corpus.invalid/{row['path']}"
        reason = _reason(body, url)
        reasons[reason] += 1
        slow, fast = _both(body, url)
        if len(fast.entries) < len(slow.entries):
            fewer.append(f"{row['path']}: {len(fast.entries)} < {len(slow.entries)}")
        total += len(slow.entries)
        if reason in ("fast", "json"):
            fast_entries += len(fast.entries)
        for a, b in zip(slow.entries, fast.entries, strict=False):
            agree = True
            for name in FIELDS:
                if getattr(a, name) != getattr(b, name):
                    differences[name].append(f"{row['path']}: {getattr(a, name)!r} != {getattr(b, name)!r}")
                    agree = False
            same += agree
        # The feed's fields and the problem too (an encoding override's note, an HTML page's), on
        # every path: fast, JSON, the inert page taken without feedparser, feedparser itself.
        assert (fast.title, fast.link, fast.ttl_minutes, fast.problem, fast.alternates) == (
            slow.title,
            slow.link,
            slow.ttl_minutes,
            slow.problem,
            slow.alternates,
        ), row
    report = [
        f"{total} entries in {len(rows)} files; {same} agree on {', '.join(FIELDS)} ({same / total:.2%})"
    ]
    report.append(f"read by the fast path: {fast_entries} entries; files by path taken: {dict(reasons)}")
    for name, items in sorted(differences.items()):
        report.append(f"difference in {name}: {len(items)} entries")
        report += [f"  {line[:300]}" for line in items]
    print("\n".join(report))
    assert not fewer, fewer
    assert same == total, "\n".join(report)
    # The fast path must carry most of the corpus, or it is not a fast path.
    assert fast_entries / total >= 0.9, report[1]


RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Desk &amp; Wire</title><link>https://news.example/</link><ttl>30</ttl>
<item><title>Talks in &lt;b&gt;Tripoli&lt;/b&gt;</title>
  <link>https://news.example/a?utm_source=rss&amp;id=1</link>
  <guid isPermaLink="false">a-1</guid>
  <description><![CDATA[<p>First <em>line</em></p><p>second</p>]]></description>
  <content:encoded><![CDATA[<p>The full text</p>]]></content:encoded>
  <pubDate>Tue, 10 Jun 2025 04:00:00 +0100</pubDate><dc:creator>R. Writer</dc:creator></item>
<item><guid>https://news.example/b</guid><title>B</title>
  <media:content url="https://img.example/x.jpg"><media:title>Photo caption</media:title></media:content>
  <dc:date>2025-06-11T08:00:00Z</dc:date></item>
<item><title></title><description>Only text, no title</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/">
<title type="html">A &amp;lt;i&amp;gt;blog&amp;lt;/i&amp;gt;</title>
<link href="/" rel="alternate"/><link href="/feed" rel="self"/>
<entry><id>tag:blog.example,2025:1</id><title>One</title>
  <link rel="alternate" type="text/html" href="posts/1"/><link rel="replies" href="posts/1#c"/>
  <updated>2025-06-01T10:00:00+02:00</updated>
  <author><name>Ann</name><email>ann@blog.example</email></author>
  <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b>there</b></p>
    <p>again</p></div></content>
</entry>
<entry xml:base="https://other.example/dir/"><id>2</id><title type="text">Two &lt; three</title>
  <summary>plain &amp; simple</summary><published>2025-06-02T00:00:00Z</published></entry>
</feed>"""


# A title only in media:content, then one after it: feedparser's depth rules, followed.
NESTED = RSS.replace(b"<title>B</title>", b"").replace(
    b"</media:content>", b"</media:content><title>Late</title>"
)


@pytest.mark.parametrize(
    "body", [RSS, ATOM, RSS.replace(b"<title>B</title>", b""), NESTED], ids=["rss", "atom", "media", "late"]
)
def test_fast_path_reads_the_common_layouts_like_feedparser(body: bytes) -> None:
    url = "https://feeds.example/path/feed.xml"
    assert _reason(body, url) == "fast"
    slow, fast = _both(body, url)
    assert slow.entries and fast.entries == slow.entries
    assert (fast.title, fast.link, fast.ttl_minutes) == (slow.title, slow.link, slow.ttl_minutes)


def test_fast_path_fields() -> None:
    fast = parse_feed(RSS, url="https://feeds.example/f.xml", now=NOW)
    a, b, c = fast.entries
    assert a.title == "Talks in Tripoli" and a.link == "https://news.example/a?id=1"
    assert a.summary == "First line second" and a.key == "id:a-1" and a.author == "R. Writer"
    assert a.published == datetime(2025, 6, 10, 3, 0, tzinfo=UTC) and a.source == "Desk & Wire"
    assert (b.title, b.link, b.key) == ("B", "https://news.example/b", "id:https://news.example/b")
    assert c.title == "Only text, no title" and c.key.startswith("hash:")
    atom = parse_feed(ATOM, url="https://feeds.example/a.xml", now=NOW)
    one, two = atom.entries
    assert one.link == "https://blog.example/posts/1" and one.summary == "Hello there again"
    assert one.author == "Ann (ann@blog.example)" and atom.title == "A blog"
    assert two.key == "id:https://other.example/dir/2" and two.title == "Two < three"


# The content text is read only when it is the summary: every order of description and content.
CONTENT_ORDERS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title>
<item><guid>1</guid><content:encoded><![CDATA[<p>only content</p>]]></content:encoded></item>
<item><guid>2</guid><description></description><content:encoded>empty text first</content:encoded></item>
<item><guid>3</guid><content:encoded>content first</content:encoded><description>then</description></item>
<item><guid>4</guid><content:encoded>content first</content:encoded><description></description></item>
<item><guid>5</guid><description>text</description><content:encoded>unused</content:encoded></item>
<item><guid>6</guid><content:encoded></content:encoded><content:encoded>second one</content:encoded></item>
</channel></rss>"""
ATOM_CONTENT = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>1</id><title>a</title><content type="html">&lt;p&gt;only content&lt;/p&gt;</content></entry>
<entry><id>2</id><title>b</title><summary>the summary</summary><content type="html">unused</content></entry>
<entry><id>3</id><title>c</title><content type="text/plain">plain</content><summary></summary></entry>
<entry><id>4</id><title>d</title><summary type="html"></summary><content type="html">after</content></entry>
</feed>"""


# Inline XHTML content (child elements) is checked at once and read only when it is the summary.
ATOM_MARKUP = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>1</id><title>a</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>only
 <b>content</b></p></div></content></entry>
<entry><id>2</id><title>b</title><summary>the summary</summary><content type="xhtml"><div
 xmlns="http://www.w3.org/1999/xhtml"><p>unused <i>markup</i> &amp; more</p></div></content></entry>
<entry><id>3</id><title>c</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">first
 <em>caf\xc3\xa9</em></div></content><summary>then the summary</summary></entry>
<entry><id>4</id><title>d</title><summary></summary><content type="xhtml"><div
 xmlns="http://www.w3.org/1999/xhtml">after an <b>empty</b> summary</div></content></entry>
<entry><id>5</id><title>e</title><content type="application/xhtml+xml"><p xmlns="http://www.w3.org/1999/xhtml">a
 paragraph</p><p xmlns="http://www.w3.org/1999/xhtml">and <b>another</b></p></content></entry>
</feed>"""


@pytest.mark.parametrize(
    "body", [CONTENT_ORDERS, ATOM_CONTENT, ATOM_MARKUP], ids=["rss", "atom", "atom-markup"]
)
def test_content_read_only_when_it_is_the_summary(body: bytes) -> None:
    assert _reason(body, "https://feeds.example/f.xml") == "fast"
    slow, fast = _both(body, "https://feeds.example/f.xml")
    assert fast.entries == slow.entries
    assert len(fast.entries) == body.count(b"<guid>") + body.count(b"<id>")
    assert fast.entries[0].summary == "only content"
    if body is ATOM_MARKUP:
        summaries = [e.summary for e in fast.entries[1:]]
        assert summaries == [
            "the summary",
            "then the summary",
            "after an empty summary",
            "a paragraph and another",
        ]


def test_unused_markup_content_is_still_checked() -> None:
    """A <div> alone inside escaped (html) markup sends the body to feedparser, summary or not."""
    body = ATOM_MARKUP.replace(b'<content type="xhtml"><div\n xmlns', b'<content type="html"><div\n xmlns', 1)
    assert body != ATOM_MARKUP
    assert _reason(body, "https://feeds.example/f.xml") == "structure"
    slow, fast = _both(body, "https://feeds.example/f.xml")
    assert fast == slow
    binary = b'<content type="image/png"><div\n xmlns'
    base64 = ATOM_MARKUP.replace(b'<content type="xhtml"><div\n xmlns', binary, 1)
    assert _reason(base64, "https://feeds.example/f.xml") == "structure"


# Entries where the usual parent (RSS's channel, the Atom feed) does not hold all of them: the
# document's entries are then searched in the whole tree, as before.
OUTSIDE_CHANNEL = RSS.replace(
    b"</channel></rss>", b"</channel><item><guid>out-1</guid><title>Out</title></item></rss>"
)
ONLY_OUTSIDE = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="0.91"><channel><title>t</title></channel>
<item><title>One</title><link>https://a.example/1</link></item><item><title>Two</title></item></rss>"""
NESTED_ITEM = RSS.replace(b"<item><title></title>", b"<item><item><title>Inner</title></item><title></title>")
ATOM_NESTED_ENTRY = ATOM.replace(
    b"</entry>\n<entry", b"<entry><id>in</id><title>Inner</title></entry></entry>\n<entry", 1
)


@pytest.mark.parametrize(
    "body",
    [OUTSIDE_CHANNEL, ONLY_OUTSIDE, NESTED_ITEM, ATOM_NESTED_ENTRY],
    ids=["outside-channel", "only-outside", "nested-item", "atom-nested-entry"],
)
def test_entries_outside_their_usual_parent_like_feedparser(body: bytes) -> None:
    url = "https://feeds.example/f.xml"
    slow, fast = _both(body, url)
    assert fast.entries == slow.entries
    assert len(fast.entries) == len(parse_fast._ENTRY_TAG.findall(body))  # every entry, nested or not
    reason = _reason(body, url)
    assert reason in ("fast", "structure")  # an entry in an entry: markup this path does not follow
    if body in (OUTSIDE_CHANNEL, ONLY_OUTSIDE):
        assert reason == "fast"
        assert fast.entries[-1].title == ("Out" if body is OUTSIDE_CHANNEL else "Two")


LATIN1 = '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>t</title>'
LATIN1 += "<item><title>Caf\xe9 in Benghazi</title><guid>x</guid></item></channel></rss>"


KOI8 = LATIN1.replace("iso-8859-1", "koi8-r").replace("Caf\xe9", "\u041a\u0430\u0444\u0435").encode("koi8-r")
CP1252 = (
    LATIN1.replace("iso-8859-1", "windows-1252").replace("Caf\xe9", "\u201cCaf\xe9\u201d").encode("cp1252")
)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (LATIN1.encode("iso-8859-1"), None),
        (LATIN1.encode("iso-8859-1"), "application/rss+xml; charset=iso-8859-1"),
        (CP1252, None),
        (KOI8, None),
        (RSS, "text/xml"),
    ],
    ids=["latin-1", "latin-1-sent", "windows-1252", "koi8-r", "text-xml"],
)
def test_legacy_encodings_decoded_once_then_fast(body: bytes, content_type: str | None) -> None:
    """The body is decoded once, by feedparser's rules, before either parser sees it: the fast path
    reads exactly the text feedparser reads, so a declared legacy encoding needs no fall-back."""
    url = "https://feeds.example/f.xml"
    assert _reason(body, url, content_type) == "fast"
    slow, fast = _both(body, url, content_type)
    assert fast.entries and fast == slow


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (RSS.replace(b'encoding="utf-8"', b'encoding="utf-16"'), None, "xml"),  # decodes to nonsense
        (RSS.replace(b"<title>B</title>", b"<title>B &amp; C</title"), None, "xml"),
        (RSS.replace(b"<title>B</title>", b"<title>B &eacute;</title>"), None, "xml"),
        (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY me "Me">]>' + RSS[39:], None, "dtd"),
        (RSS.replace(b"<![CDATA[<p>The full", b"<![CDATA[<item><p>The full"), None, "count"),
        (
            ATOM.replace(b"<title>One</title>", b"<source><title>Elsewhere</title></source>"),
            None,
            "structure",
        ),
        (RSS.replace(b"<item><title></title>", b'<item base="/x/"><title></title>'), None, "structure"),
        (b'<?xml version="1.0"?><opml><body/></opml>', None, "root"),
    ],
    ids=[
        "utf-16-declared",
        "broken",
        "html-entity",
        "entity-decl",
        "count",
        "nested",
        "base-attr",
        "root",
    ],
)
def test_untrusted_bodies_go_to_feedparser(body: bytes, content_type: str | None, reason: str) -> None:
    url = "https://feeds.example/f.xml"
    assert _reason(body, url, content_type) == reason
    slow, fast = _both(body, url, content_type)
    assert fast == slow  # the fallback is feedparser itself: nothing lost, nothing different


# Encodings feedparser overrides: the body is decoded by another encoding than the declared (or
# sent) one. Both paths read the same UTF-8 result, so the fast path reads it, and words the
# override as feedparser's path does, ahead of the entry cap's note.
CP1252_AS_UTF8 = RSS.replace(b"<title>B</title>", b"<title>\x93B\x94 \xe9t\xe9 \x80</title>")


@pytest.mark.parametrize(
    ("body", "content_type", "cap"),
    [
        (RSS.replace(b"Wire", b"Wire \xff"), None, None),
        (CP1252_AS_UTF8, None, None),
        (CP1252_AS_UTF8, None, 1),
        (CP1252_AS_UTF8, "application/rss+xml; charset=utf-8", None),
        (CP1252_AS_UTF8, "text/plain; charset=utf-8", 2),
        (CP1252_AS_UTF8.replace(b'encoding="utf-8"', b""), "application/xml", None),
    ],
    ids=["invalid-utf-8", "windows-1252", "capped", "sent-utf-8", "text-plain", "undeclared"],
)
def test_encoding_overrides_read_by_the_fast_path(
    body: bytes, content_type: str | None, cap: int | None
) -> None:
    url = "https://feeds.example/f.xml"
    assert _reason(body, url, content_type) == "fast"
    slow = parse_feed(body, url=url, content_type=content_type, now=NOW, parser="feedparser", max_entries=cap)
    fast = parse_feed(body, url=url, content_type=content_type, now=NOW, parser="fast", max_entries=cap)
    assert fast.entries and fast == slow
    assert (fast.problem or "").startswith("wrong character encoding declared: ")
    if body is CP1252_AS_UTF8 and cap is None:
        assert fast.entries[1].title == "\u201cB\u201d \xe9t\xe9 \u20ac"


@pytest.mark.parametrize(
    "path",
    [
        "fastfeedparser/benchmark_data/9e0834333e854116",
        "feedjira-2009/spec/sample_feeds/IanLandsmansWeblogv20.xml",
    ],
    ids=["declared-utf-16", "declared-utf-8"],
)
@pytest.mark.parametrize("cap", [None, 3], ids=["all", "capped"])
def test_corpus_encoding_overrides_read_by_the_fast_path(path: str, cap: int | None) -> None:
    """The corpus's two overrides (a UTF-8 feed declaring UTF-16, a Windows-1252 one declaring UTF-8)."""
    body = (need_shared("corpus", "feeds") / path).read_bytes()
    url = f"https://corpus.invalid/{path}"
    assert _reason(body, url) == "fast"
    slow = parse_feed(body, url=url, now=NOW, parser="feedparser", max_entries=cap)
    fast = parse_feed(body, url=url, now=NOW, parser="fast", max_entries=cap)
    assert fast == slow and len(fast.entries) == (cap or len(slow.entries)) >= 3
    assert (fast.problem or "").startswith("wrong character encoding declared: ")


def test_fallback_keeps_legacy_text() -> None:
    fast = parse_feed(LATIN1.encode("iso-8859-1"), now=NOW)
    assert [e.title for e in fast.entries] == ["Café in Benghazi"]


def test_fast_path_loads_nothing_from_the_network() -> None:
    """A DTD or an external entity named by the document is never fetched (the server counts)."""
    with FeedServer() as srv:
        srv.route("/evil.dtd", b'<!ENTITY ext "leaked">', content_type="application/xml-dtd")
        doc = (
            f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{srv.url("/evil.dtd")}">'
            '<rss version="2.0"><channel><title>t</title><item><title>a &ext;</title><guid>1</guid>'
            "</item></channel></rss>"
        ).encode()
        with pytest.raises(parse_fast.Untrusted):
            parse_fast.parse_xml(doc, "https://feeds.example/f.xml", None)
        parsed = parse_feed(doc, url="https://feeds.example/f.xml", now=NOW)
        assert srv.hits("/evil.dtd") == 0
        assert all("leaked" not in e.title for e in parsed.entries)


def test_entity_expansion_is_refused_before_either_parser() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    bomb += b'<rss version="2.0"><channel><item><title>&b;</title></item></channel></rss>'
    slow, fast = _both(bomb)
    assert fast == slow and not fast.entries and "refused" in (fast.problem or "")


def test_parser_setting(tmp_path) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text('[polling]\nparser = "feedparser"\n')
    assert load_settings(cfg).polling.parser == "feedparser"
    cfg.write_text("")
    assert load_settings(cfg).polling.parser == "fast"
    cfg.write_text('[polling]\nparser = "quick"\n')
    with pytest.raises(ConfigError, match="parser"):
        load_settings(cfg)


@pytest.mark.parametrize("processes", [0, 1], ids=["threads", "process-pool"])
def test_cycle_stores_the_same_items_with_either_parser(tmp_path, processes: int) -> None:
    """A cycle through the service: fast path (in threads or a process pool) and feedparser agree."""
    from tests.test_service import write
    from watcher.service import Worker
    from watcher.store.feeds import list_feeds
    from watcher.store.items import known_keys

    stored = {}
    with FeedServer() as srv:
        srv.route("/rss", RSS)
        srv.route("/atom", ATOM, content_type="application/atom+xml")
        for parser in ("fast", "feedparser"):
            db = tmp_path / f"{parser}.db"
            cfg = write(tmp_path / f"{parser}.toml", db, [srv.url("/rss"), srv.url("/atom")], parser=parser)
            if parser == "fast":
                cfg.write_text(
                    cfg.read_text().replace("[polling]", f"[polling]\nparse_processes = {processes}")
                )
            with Worker(load_settings(cfg)) as worker:
                report = worker.run_once()
                assert not report.failed_feeds
                feeds = list_feeds(worker.engine)
                bodies = (RSS, ATOM)
                keys = [e.key for b in bodies for e in parse_feed(b, url=srv.url("/x"), now=NOW).entries]
                stored[parser] = (
                    report.new_entries,
                    sorted(v.entries for v in feeds),
                    sorted(k for f in feeds for k in known_keys(worker.engine, f.id, keys)),
                )
    assert stored["fast"] == stored["feedparser"] and stored["fast"][0] == 5
    assert len(stored["fast"][2]) == 5  # every item found under the key both paths give it


def test_entry_cap_chooses_the_same_entries_before_mapping() -> None:
    """With max_entries the fast path picks the newest before mapping any, as feedparser's path does."""
    items = "".join(
        f"<item><guid>{i}</guid><title>t{i}</title>"
        + (f"<pubDate>Tue, {1 + i % 28:02d} Jun 2025 {i % 24:02d}:00:00 GMT</pubDate>" if i % 7 else "")
        + (f"<dc:date>2025-05-{1 + i % 28:02d}T00:00:00Z</dc:date>" if i % 5 == 0 else "")
        + "</item>"
        for i in range(300)
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>t</title>{items}</channel></rss>"
    ).encode()
    assert _reason(body, "https://feeds.example/f.xml") == "fast"
    slow = parse_feed(body, now=NOW, max_entries=50, parser="feedparser")
    fast = parse_feed(body, now=NOW, max_entries=50, parser="fast")
    assert len(fast.entries) == 50 and fast == slow and "only the newest 50" in (fast.problem or "")


# The scan for a plain base attribute, against the regex it replaces: every corpus file and
# generated soup of its pieces.
BASE_ATTR = re.compile(rb"base\s*=")


def _regex_base(body: bytes) -> bool:
    return any(body[m.start() - 1 : m.start()].isspace() for m in BASE_ATTR.finditer(body))


def test_base_scan_agrees_with_its_regex_on_the_corpus() -> None:
    corpus = need_shared("corpus", "feeds")
    paths = [p for p in corpus.rglob("*") if p.is_file() and p.name != "manifest.jsonl"]
    assert len(paths) >= 270
    for path in paths:  # none has one (the generated soup below has): this is about "base" elsewhere
        body = path.read_bytes()
        assert parse_fast._base_attrs(body) == (_regex_base(body), b"xml:base" in body), path


PIECES = [
    b"base",
    b"BASE",
    b"bas",
    b"e",
    b"xml:",
    b"xml",
    b":",
    b"=",
    b" ",
    b"\t",
    b"\n",
    b"\x0c",
    b"a",
    b'"',
    b"\xc3\xa9",
]


def test_base_scan_agrees_with_its_regex_on_generated_soup() -> None:
    rng = random.Random(14)
    found = 0
    for _ in range(20_000):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))
        found += _regex_base(body)
        assert parse_fast._base_attrs(body) == (_regex_base(body), b"xml:base" in body), body
    assert found > 100  # with a preceding space and an "=" after: about 1 in 130
    # both in one body, either first: the walk goes on past the first it finds
    for body in (
        b'<a xml:base="/x/"><b base="/y/"/>',
        b'<b base = "/y/"/><a xml:base="/x/">',
        b"xml:base\tbase=",
    ):
        assert parse_fast._base_attrs(body) == (True, True), body


# _urljoin's shortcuts (absolute http(s) URLs, schemes without relative references) against
# feedparser's way: _URI_FIXER, then urljoin, "" where urljoin refuses.
def _feedparser_urljoin(base: str | None, uri: str) -> str:
    uri = parse_fast._URI_FIXER.sub(r"\1\3", uri)
    try:
        return urllib.parse.urljoin(base or "", uri)
    except ValueError:
        return ""


URI_PIECES = [
    "tag:",
    "urn:",
    "yt:",
    "TAG:",
    "http:",
    "HTTPS:",
    "svn+ssh:",
    "a",
    "b.c",
    "2025",
    "/",
    "//",
    ":",
    ",",
]
URI_PIECES += ["\t", "\n", " ", "[", "]", "?q", "#f", ";p", "\u2100", "\xe9", "-", "+", "."]
BASES = [
    None,
    "",
    "https://e.example/a/b",
    "http://[bad/",
    "https://[::1]/x",
    "tag:e.example,2025:",
    "https://e\u2100x/",
]


def test_urljoin_shortcuts_agree_with_urljoin() -> None:
    rng = random.Random(15)
    shortcut = 0
    for _ in range(20_000):
        uri = "".join(rng.choice(URI_PIECES) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.5:
            uri = rng.choice(["tag:", "urn:", "yt:"]) + uri
        base = rng.choice(BASES)
        shortcut += parse_fast._OPAQUE.fullmatch(uri) is not None
        assert parse_fast._urljoin(base, uri) == _feedparser_urljoin(base, uri), (base, uri)
    assert shortcut > 5_000
    for base in BASES:  # the ids of the corpus's Atom feeds and YouTube's
        for uri in (
            "tag:blog.example,2025:1",
            "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
            "yt:video:x1",
        ):
            assert parse_fast._urljoin(base, uri) == _feedparser_urljoin(base, uri), (base, uri)


# ---------------------------------------------------------------- HTML pages without feedparser


def test_handler_names_are_feedparsers() -> None:
    """inert_page lets a tag through by its name: the names must be every handler feedparser has."""
    import feedparser.api

    found = {
        name.removeprefix("_start_").removeprefix("_end_").lower()
        for cls in (feedparser.api.LooseFeedParser, feedparser.api.StrictFeedParser)
        for name in dir(cls)
        if name.startswith(("_start_", "_end_"))
    }
    assert found == FP_HANDLERS


def test_inert_pages_of_the_corpus_skip_feedparser() -> None:
    """Every corpus page taken without feedparser gives exactly feedparser's ParsedFeed, with and
    without an HTML Content-Type; the real HTML pages are among them."""
    corpus = need_shared("corpus", "feeds")
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line]
    taken = set()
    for row in rows:
        body = (corpus / row["path"]).read_bytes()
        url = f"https://corpus.invalid/{row['path']}"
        for content_type in (None, "text/html; charset=utf-8"):
            slow, fast = _both(body, url, content_type)
            assert fast == slow, row["path"]
            if fast.problem == HTML_PAGE and inert_page(body):
                taken.add(row["path"])
    assert {
        "feedjira-2009/spec/sample_feeds/JoomlapoweredSite.xml",
        "feedjira-2009/spec/sample_feeds/scRUBYt.xml",
        "feedjira-2009/spec/sample_feeds/SFRubyorgHome.xml",
    } <= taken


PAGE = (
    "<!DOCTYPE html>\n<html{xmlns}><head><title>A page</title>{head}</head>\n"
    "<body><p>Text &amp; more<br>{body}</p></body></html>"
)
# (head, body, whether the shortcut may take it); every one must give feedparser's ParsedFeed.
PAGES = {
    "plain": ("", "", True),
    "alternates": (
        '<link rel="alternate" type="application/rss+xml" href="/feed.xml">'
        "<link rel='alternate' type='application/atom+xml' href='https://x.example/atom'>",
        "",
        True,
    ),
    "stylesheet": ('<link rel="stylesheet" href="/s.css"><link rel=icon href=/i.png>', "", True),
    "link-no-rel": ('<link href="/home.html">', "", False),
    "link-alternate-html": ('<link rel="alternate" href="/other.html">', "", False),
    "link-upper": ("<LINK REL=Alternate HREF=/x>", "", False),
    "link-uri": ('<link uri="/x" type="text/html">', "", False),
    "link-quote-entity": ('<link rel=stylesheet href="x&#34; rel=&#34;alternate">', "", False),
    "link-sgml-stop": ("<link href=a|b rel=stylesheet>", "", False),
    "link-type-entity": ('<link rel="alternate" type="text/ht&#109;l" href="/x">', "", False),
    "link-in-body": ("", '<link href="/in-body">', False),
    "entry-in-comment": ("", "<!-- <entry><title>x</title></entry> -->", False),
    "item-in-script": ("<script>var s = '<item>';</script>", "", False),
    "item-in-cdata": ("", "<![CDATA[<item>x</item>]]>", False),
    "prefixed-item": ("", "<rss:item><rss:title>t</rss:title></rss:item>", False),
    "end-tag-blank": ("", "</ item>", False),
    "source": ("", '<video><source src="v.mp4"></video>', False),
    "summary": ("", "<details><summary>More</summary>hidden</details>", False),
    "channel": ("", "<channel><title>Inside</title></channel>", False),
    "feed": ("", "<feed><title>Inside</title></feed>", False),
    "netscape": ("<!-- my.netscape.com -->", "", False),
    "atom-ns": ("", '<div xmlns="http://www.w3.org/2005/Atom">x</div>', False),
    "script-lt": ("<script>if (a<b && i<items.length) {}</script>", "", True),
    "word-prefix": ("", "<o:p>x</o:p>", False),
    "non-ascii-tag": ("", "<it\u0117m>x</it\u0117m>", False),
    "short-tag": ("", "<br/><img src=x/><span/>", True),
}


@pytest.mark.parametrize(
    "xmlns", ["", ' xmlns="http://www.w3.org/1999/xhtml"', ' xmlns="http://other.example/"']
)
@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("broken", [False, True], ids=["closed", "broken"])
def test_html_pages_like_feedparser(name: str, xmlns: str, broken: bool) -> None:
    head, body, inert = PAGES[name]
    page = PAGE.format(xmlns=xmlns, head=head, body=body)
    if broken:
        page = page.replace("</body>", "<p>unclosed <b>bold</body>")
    data = page.encode("utf-8")
    assert inert_page(data) == (inert and "other" not in xmlns)
    for content_type in (None, "text/html"):
        slow, fast = _both(data, "https://site.example/dir/page", content_type)
        assert fast == slow
        assert fast.problem == slow.problem


def test_generated_pages_like_feedparser() -> None:
    """Soup of HTML pieces (feedparser's handler names among them, links of every kind, broken
    markup): whatever the shortcut decides, the ParsedFeed is feedparser's."""
    rng = random.Random(16)
    names = ["p", "div", "a", "span", "title", "body", "link", "item", "entry", "source", "x", "image", "br"]
    attrs = [
        'rel="alternate"',
        "rel=stylesheet",
        'type="text/html"',
        "type='application/rss+xml'",
        'href="/f"',
        "href=https://a.example/b?c=1&amp;d=2",
        "url=/u",
        "REL=Alternate",
        "",
        "x=y",
    ]
    pieces = ["text", "&amp;", "&nbsp;", "<!-- c -->", "<script>1<2</script>", "</", "<", ">", "\n", "é"]
    taken = 0
    for _ in range(400):
        parts = ["<!DOCTYPE html><html><head>"]
        for _ in range(rng.randint(1, 12)):
            roll = rng.random()
            name = rng.choice(names)
            if roll < 0.3:
                chosen = " ".join(rng.sample(attrs, rng.randint(0, 3)))
                parts.append(f"<link {chosen}>" if rng.random() < 0.5 else f"<{name} {chosen}>")
            elif roll < 0.6:
                parts.append(f"<{name}>{rng.choice(pieces)}</{name}>")
            else:
                parts.append(rng.choice(pieces))
        parts.append("</head><body>ok</body></html>")
        data = "".join(parts).encode("utf-8")
        slow, fast = _both(data, "https://site.example/page")
        assert fast == slow, data
        taken += fast.problem == HTML_PAGE and inert_page(data)
    assert taken > 20  # the shortcut is exercised, not only refused


def test_fix_skips_the_c1_scan_only_for_printable_text() -> None:
    """``_fix`` looks for C1 controls only in a text that is not printable: the same values as
    scanning every text, for every C1 character among printable and unprintable neighbours."""

    def scanned(text: str) -> str:
        if text.isascii():
            return text
        with contextlib.suppress(UnicodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        return text.translate(parse_fast._CP1252) if parse_fast._C1.search(text) else text

    rng = random.Random(17)
    pieces = ["a", " ", "\n", "\t", "\xe9", "\xc3\xa9", "\u2019", "\u65e5", "\xa0", "\x7f", "\xad", "\u200b"]
    pieces += [chr(c) for c in range(0x80, 0xA0)]
    texts = [p + q for p in pieces for q in pieces]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.choice((2, 8, 40)))) for _ in range(5000)]
    for text in texts:
        assert parse_fast._fix(text) == scanned(text), repr(text)


def test_entry_tag_scan_agrees_with_its_case_folding_regex() -> None:
    """``_ENTRY_TAG`` spells the names' cases out: the same matches as under re.I, on every corpus
    file and on generated soup of prefixes, cases and what may follow a name."""
    folded = re.compile(rb"<(?:[A-Za-z_][\w.-]*+:)?+(?:item|entry)(?=[\s/>])", re.I)
    corpus = need_shared("corpus", "feeds")
    bodies = [p.read_bytes() for p in corpus.rglob("*") if p.is_file() and p.name != "manifest.jsonl"]
    rng = random.Random(17)
    pieces = [b"<", b"</", b"item", b"ITEM", b"Item", b"iTeM", b"entry", b"ENTRY", b"eNtRy", b"items",
              b"rss:", b"a.b-c_1:", b"x:y:", b":", b" ", b"\t", b"\n", b"/", b">", b"e", b"i", b"\xc3\xa9",
              b"1"]  # fmt: skip
    bodies += [b"".join(rng.choice(pieces) for _ in range(rng.choice((3, 10, 40)))) for _ in range(20_000)]
    found = 0
    for body in bodies:
        matches = folded.findall(body)
        assert parse_fast._ENTRY_TAG.findall(body) == matches, body[:200]
        found += bool(matches)
    assert found > 1_000
