"""Hostile XML: entity limits hold whatever the encoding, and a parse cannot grow past its input.

Every attack runs in a child process under a memory cap (tests/bounded.py) and its time and
peak memory are asserted: before these guards, an EBCDIC or UTF-7 body of 106 KB took 978 MB
and 30-50 s, and a 5 MB UTF-8 body using a 64-character entity 1.7 M times took 578 MB.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bounded import run_bounded

from watcher.parse import parse_feed
from watcher.parse_guard import MAX_ENTITY_EXPANSION, prepare_xml

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PEAK_MB = 150  # the interpreter with watcher.parse imported is about 40 MB

SETUP = """
def entity_doc(value, refs, encoding="utf-8", declare=True, name="a"):
    decl = f'<?xml version="1.0" encoding="{encoding}"?>\\n' if declare else ""
    return (
        f'{decl}<!DOCTYPE rss [\\n<!ENTITY {name} "{value}">\\n]>\\n'
        '<rss version="2.0"><channel><title>t</title><item><title>boom</title>'
        f'<link>https://example.org/1</link><description>{("&" + name + ";") * refs}</description>'
        "</item></channel></rss>"
    )
"""

PARSE = """
from datetime import UTC, datetime
from watcher.parse import parse_feed
now = datetime(2026, 3, 1, tzinfo=UTC)
parsed = parse_feed(body, url="https://example.org/feed", content_type=ctype, now=now)
report(
    entries=len(parsed.entries),
    chars=sum(len(e.title) + len(e.summary) for e in parsed.entries),
    problem=parsed.problem,
)
"""

# (id, how the body is made from the document text `doc`, Content-Type)
ENCODED = [
    ("ebcdic-cp500-declared-in-header", "doc.encode('cp500')", "application/rss+xml; charset=cp500"),
    ("ebcdic-cp037-sniffed", "doc.replace('utf-8', 'cp037').encode('cp037')", "application/rss+xml"),
    (
        "ebcdic-cp500-header-says-utf8",
        "doc.replace('utf-8', 'cp500').encode('cp500')",
        "text/xml; charset=utf-8",
    ),
    (
        "utf7-hidden-markup",
        "doc.replace('utf-8', 'utf-7').encode('utf-7').replace(b'<!', b'+ADwAIQ-')",
        "application/xml; charset=utf-7",
    ),
    ("utf16le-no-bom", "doc.replace('utf-8', 'utf-16').encode('utf-16-le')", None),
    ("utf16be-bom", "doc.replace('utf-8', 'utf-16').encode('utf-16')", "application/atom+xml"),
    ("utf32le-no-bom", "doc.replace('utf-8', 'utf-32').encode('utf-32-le')", None),
    ("utf32be-bom", "b'\\x00\\x00\\xfe\\xff' + doc.replace('utf-8', 'utf-32').encode('utf-32-be')", None),
    ("utf16-declared-utf8-sent", "doc.encode('utf-8')", "application/rss+xml; charset=utf-16"),
    ("no-declaration-utf16", "entity_doc('x' * 10_000, 33_000, declare=False).encode('utf-16')", None),
]


@pytest.mark.parametrize(("make", "ctype"), [e[1:] for e in ENCODED], ids=[e[0] for e in ENCODED])
def test_oversized_entity_is_refused_in_any_encoding(make: str, ctype: str | None) -> None:
    # Decoded as the header or the missing declaration says, these two bodies are noise to every parser.
    expect_refusal = not make.startswith(("doc.encode('utf-8')", "entity_doc"))
    setup = SETUP + f"doc = entity_doc('x' * 10_000, 33_000)\nbody = {make}\nctype = {ctype!r}\n"
    r = run_bounded(PARSE, setup=setup, memory_mb=1024, timeout=30)
    # Refused, or (where the declared encoding turns the body to noise) not a feed: never expanded.
    assert r["entries"] == 0 and r["chars"] == 0 and r["problem"], r
    if expect_refusal:
        assert r["problem"].startswith("refused:"), r
    assert r["seconds"] < 3 and r["peak_mb"] < PEAK_MB, r


def test_expansion_within_the_per_entity_limit_is_bounded_too() -> None:
    # A 64-character entity is allowed, but not 1.7 million references to it (5 MB of body).
    setup = SETUP + "body = entity_doc('y' * 64, 1_700_000).encode()\nctype = 'application/rss+xml'\n"
    r = run_bounded(PARSE, setup=setup, memory_mb=1024, timeout=30)
    assert r["problem"].startswith("refused:") and "would add 108,800,000 characters" in r["problem"]
    assert r["seconds"] < 3 and r["peak_mb"] < PEAK_MB + 40, r  # the 5 MB body itself, twice


@pytest.mark.parametrize("codec", ["utf-8", "cp500", "utf-16", "utf-7"])
def test_plain_symbol_entities_still_expand_after_decoding(codec: str) -> None:
    doc = (
        f'<?xml version="1.0" encoding="{codec}"?>\n<!DOCTYPE rss [\n<!ENTITY c "(C)">\n]>\n'
        '<rss version="2.0"><channel><title>T &c;</title><item><title>Rights &c; 2026</title>'
        "<link>https://example.org/1</link></item></channel></rss>"
    )
    parsed = parse_feed(doc.encode(codec), content_type=f"application/rss+xml; charset={codec}", now=NOW)
    assert [e.title for e in parsed.entries] == ["Rights (C) 2026"]
    assert parsed.title == "T (C)"


def test_many_small_references_up_to_the_budget_are_fine() -> None:
    refs = MAX_ENTITY_EXPANSION // 3
    doc = (
        '<?xml version="1.0"?><!DOCTYPE rss [\n<!ENTITY c "(C)">\n]>\n<rss version="2.0"><channel>'
        f"<item><title>t</title><description>{'&c; ' * refs}</description></item></channel></rss>"
    )
    assert prepare_xml(doc.encode(), None).refusal is None
    over = doc.replace("(C)", "(C)(C)")
    assert "would add" in (prepare_xml(over.encode(), None).refusal or "")


@pytest.mark.parametrize(
    "dtd",
    [
        # expat skips a comment; feedparser's fallback regex does not, and would declare it
        '<!DOCTYPE rss [\n<!--\n<!ENTITY a "{v}">\n-->\n]>',
        # lower case: expat refuses the prolog, a lenient parser might not care
        '<!DOCTYPE rss [\n<!entity a "{v}">\n]>',
        # a parameter entity that would declare the real one
        "<!DOCTYPE rss [\n<!ENTITY % p \"<!ENTITY a '{v}'>\">\n%p;\n]>",
        # two DOCTYPEs, the second carrying the entity
        '<!DOCTYPE rss>\n<!DOCTYPE rss [\n<!ENTITY a "{v}">\n]>',
    ],
    ids=["in-a-comment", "lower-case", "via-parameter-entity", "second-doctype"],
)
def test_declarations_a_lenient_parser_could_see_are_refused_or_inert(dtd: str) -> None:
    setup = (
        f"dtd = {dtd!r}.format(v='z' * 60)\n"
        "doc = ('<?xml version=\"1.0\"?>\\n' + dtd + '\\n<rss version=\"2.0\"><channel><title>t</title>'"
        " + '<item><title>x</title><description>' + '&a;' * 1_500_000"
        " + '</description></item></channel></rss>')\n"
        "body = doc.encode()\nctype = 'application/rss+xml'\n"
    )
    r = run_bounded(PARSE, setup=setup, memory_mb=1024, timeout=30)
    assert r["chars"] < 10_000, r  # nothing expanded the 90 M characters
    assert r["seconds"] < 5 and r["peak_mb"] < PEAK_MB + 40, r


def test_hostile_xml_base_cannot_multiply_itself() -> None:
    # feedparser copies xml:base into every relative href it rewrites: 20 KB × 20,000 links was 1.2 GB.
    setup = (
        "base = 'https://example.org/' + 'b' * 20_000 + '/'\n"
        "content = '&lt;a href=&quot;x&quot;&gt;y&lt;/a&gt;' * 20_000\n"
        'body = (f\'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>\''
        " f'<item xml:base=\"{base}\"><title>x</title><description>{content}</description></item>'"
        " '</channel></rss>').encode()\nctype = 'application/rss+xml'\n"
    )
    r = run_bounded(PARSE, setup=setup, memory_mb=1024, timeout=30)
    assert r["entries"] == 1
    assert r["seconds"] < 5 and r["peak_mb"] < PEAK_MB, r


def test_wrong_declared_encoding_is_still_reported() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>caf\xe9</title><link>https://example.org/1</link></item></channel></rss>"
    ).encode("latin-1")
    parsed = parse_feed(body, content_type="application/rss+xml", now=NOW)
    assert [e.title for e in parsed.entries] == ["café"]
    assert parsed.problem and parsed.problem.startswith("wrong character encoding declared")
