"""``html_to_text``'s shortcuts against its general path, over every text of the corpus.

The shortcuts: control characters found by a byte scan before any regex runs (the general path
drops them first, always), and with ``limit`` only the head of a long text is collapsed and
cleaned. The reference below is the general path written out: every pass in full, in that order.
"""

from __future__ import annotations

import io
import json
import random
import re
from html import unescape

import pytest
from lxml import etree

from tests.conftest import need_shared
from watcher import parse_fast
from watcher.parse import (
    _BLOCK_TAG,
    _CONTROL,
    _DOCUMENT_END,
    _LOOKS_LIKE_TAG,
    _UNICODE_SPACE,
    _UNICODE_SPACE_UTF8,
    _clean,
    _html_parser,
    _marked,
    _TextExtractor,
    _trusted_encoding,
    html_to_text,
    shorten,
)
from watcher.parse_guard import prepare_xml

LIMITS = (1, 2, 10, 120, 200, 4000)


def _markup_reference(html: str) -> str:
    marked = _BLOCK_TAG.sub(" <", _DOCUMENT_END.sub("", _CONTROL.sub("", html)))
    try:
        root = etree.fromstring(marked.encode("utf-8", "replace"), _html_parser())
        if root is None:
            return ""
        etree.strip_elements(root, *_TextExtractor.SKIP, with_tail=False)
        return etree.tostring(root, method="text", encoding=str)
    except (etree.LxmlError, ValueError):
        parser = _TextExtractor()
        parser.feed(html)
        parser.close()
        return "".join(parser.parts)


def _reference(html: str | None) -> str:
    if not html:
        return ""
    text = html
    for _ in range(2):
        if "<" in text:
            text = " ".join(_markup_reference(text).split())
        else:
            text = " ".join((unescape(text) if "&" in text else text).split())
        if "<" not in text or not _LOOKS_LIKE_TAG.search(text):
            break
    return _CONTROL.sub("", text)


def _check(html: str | None) -> None:
    full = _reference(html)
    assert html_to_text(html) == full, repr(html)[:200]
    for limit in LIMITS:
        assert html_to_text(html, limit) == shorten(full, limit), (limit, repr(html)[:200])


def _corpus_texts() -> list[str]:
    """Every feed title, entry title, summary, content and author markup of the corpus, as the
    fast path reads it, or feedparser where the fast path hands a body over."""
    import feedparser

    corpus = need_shared("corpus", "feeds")
    texts: list[str] = []
    for line in (corpus / "manifest.jsonl").read_text().splitlines():
        xml_in = prepare_xml((corpus / json.loads(line)["path"]).read_bytes(), None, None)
        if xml_in.refusal:
            continue
        try:
            if not _trusted_encoding(xml_in):
                raise parse_fast.Untrusted("encoding")
            feed, raws, _ = parse_fast.parse_xml(xml_in.body, None, xml_in.content_type)
        except Exception:  # parse_fast.Untrusted and kin: what feedparser reads instead
            result = feedparser.parse(
                io.BytesIO(xml_in.body), sanitize_html=False, resolve_relative_uris=False
            )
            feed, raws = result.get("feed", {}), result.get("entries", [])
        texts.append(feed.get("title") or "")
        for raw in raws:
            texts += [raw.get(k) or "" for k in ("title", "summary", "author")]
            texts += [c.get("value") or "" for c in raw.get("content") or ()]
    return [t for t in texts if t]


def test_corpus_texts_same_as_general_path() -> None:
    texts = _corpus_texts()
    assert len(texts) > 10_000
    for text in texts:
        _check(text)


EDGE = [
    "",
    None,
    "plain",
    "  lead and trail  ",
    "a\x01<p>b</p>",
    "<\x01p>x</p>y",
    "<p>a\x0bb\x1cc\x7fd</p>",
    "a \x01 b",  # a control between spaces leaves two spaces
    "<b>\ufffe</b>x\uffff",
    "<p>lone \ud800 surrogate</p>",
    "x&#1;y<b>z</b>",
    "&lt;p&gt;a &amp;#1; b&lt;/p&gt;",
    "&lt;p&gt;double&lt;/p&gt;",
    "</body>after<p>x</p>",
    "<dİv>kelvin \u212a</dİv>",
    "<p>" + "word " * 3000 + "</p>",
    "<p>" + " " * 9000 + "late" + " x" * 3000 + "</p>",  # the head first tried is all blanks
    "\n" * 20000 + "<b>y</b>",
    "<p>" + "a" * 5000 + "</p>",  # one word longer than any limit
    "<p>" + "w " * 2500 + "\x01" * 3000 + "v " * 2000 + "</p>",
    "<p>" + "w " * 2000 + "&lt;b&gt;tail&lt;/b&gt;</p>",  # a tag only in the tail: a second pass
    "<p>" + "z " * 2000 + "</p>" + "<script>" + "s " * 5000 + "</script>end",
    # Tags the UTF-8 patterns must read as the str patterns do: case, Unicode spaces, folds.
    "a<DIV>b</Div\u3000>c<p\xa0>d<li\x85>e<br\u2028/>f<td\x1c>g",
    "x</BODY\u2003 >y<p>z</html\x0b>w",
    "<\u017fection>long s</section>x<blo\u212aquote>kelvin</blockquote>y<d\u0131v>i</div>z",
    "<p>caf\xe9</p><\u0130>dotted</p>",
    "<p>wide \u65e5\u672c</p><P\u3000>next",
    # Elements whose text is dropped, and those before which libxml2 implies a <head>.
    "<meta charset=utf-8>after meta<p>x</p>",
    "<LINK rel=x>text<p>y</p>",
    "<base href=x>t<b>u</b>",
    "<TITLE>t</TITLE>body text",
    "<Script>s()</script>shown",
    "<svg><text>drawn</text></svg>shown",
    "<math><mi>x</mi></math>shown",
    "<template><p>t</p></template>shown",
    "<noscript>n</noscript>shown",
    "<head><title>h</title></head><body>b</body>",
    "<p>x</p><style>p{}</style>y",
    "<scripted>not hidden</scripted><b>x</b>",
]


@pytest.mark.parametrize("html", EDGE)
def test_edge_cases_same_as_general_path(html: str | None) -> None:
    _check(html)


def test_generated_fragments_same_as_general_path() -> None:
    rng = random.Random(14)
    pieces = [
        "<p>", "</p>", "<br>", "<br/>", "<div class=x>", "</div>", "<b>", "</b>", "<img src=a>", "&amp;",
        "&lt;", "&gt;", "&#8212;", "&#1;", "&nbsp;", " ", "\n", "\t", "\xa0", "\u2003", "\x01", "\x1f",
        "\x7f", "\ufffe", "word", "mot", "日本", "é", "<script>", "</script>", "<!-- c -->", "</body>",
        "<", ">", "&lt;p&gt;", "<li>", "</ul>", "<P>", "</DIV>", "<p\u3000>", "</body\xa0>", "<d\u0131v>",
        "<\u017fection>", "\u212a", "<meta>", "<LINK>", "<title>", "</title>", "<base>", "<Style>", "<svg>",
    ]  # fmt: skip
    for _ in range(3000):
        size = rng.choice((3, 10, 40, 400))
        _check("".join(rng.choice(pieces) for _ in range(size)))


def test_spelled_out_spaces_are_what_backslash_s_takes() -> None:
    """``_UNICODE_SPACE`` (a str class) and ``_UNICODE_SPACE_UTF8`` (its UTF-8) take exactly the
    characters "\\s" takes, over every code point."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    spaces = re.findall(r"\s", every)
    assert re.findall(f"[{_UNICODE_SPACE}]", every) == spaces
    utf8 = re.compile(_UNICODE_SPACE_UTF8)
    assert [c for c in every if utf8.fullmatch(c.encode())] == spaces
    assert utf8.findall(every.encode()) == [c.encode() for c in spaces]


def test_marked_utf8_same_as_str_patterns() -> None:
    """``_marked`` runs the block-tag and document-end patterns on UTF-8: the same bytes as the str
    patterns' output encoded, for the edge cases, every space after every tag and generated soup."""
    rng = random.Random(17)
    tails = [chr(c) for c in range(0x3001) if re.fullmatch(r"[\s/>a-z\x80-\xff]", chr(c))]
    htmls = [h for h in EDGE if h] + [
        f"a<{t}{c}b</{t}{c}" for t in ("p", "DiV", "body", "html") for c in tails
    ]
    pieces = ["<p", "</P", "<div", "<Li", "</body", "</HTML", "<br", " ", "\xa0", "\u3000", "\x85", ">", "/",
              "\u212a", "\u017f", "\u0131", "\u0130", "x", "\xe9", "\u65e5", "\ud800", "<", "<bLoCkQuOtE",
              "<H1", "</tBody", "<Hr", "<FigCaption", "<nav", "<MAIN", "<secTION", "<span", "<i",
              "<a"]  # fmt: skip
    htmls += ["".join(rng.choice(pieces) for _ in range(rng.choice((3, 12, 60)))) for _ in range(5000)]
    for html in htmls:
        expected = _BLOCK_TAG.sub(" <", _DOCUMENT_END.sub("", html)).encode("utf-8", "replace")
        assert _marked(html) == expected, repr(html)


def test_clean_skips_split_and_join_only_where_they_change_nothing() -> None:
    """``_clean`` trusts a printable text whose only whitespace is single inner spaces: every other
    whitespace character is unprintable, and the result is the split-and-join one for any text."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert [c for c in every if c.isspace() and c.isprintable()] == [" "]
    rng = random.Random(17)
    pieces = [
        "a",
        "b c",
        " ",
        "  ",
        "\n",
        "\t",
        "\xa0",
        "\u3000",
        "\x01",
        "\x1c",
        "\x7f",
        "\ufffe",
        "\xe9",
        "\u65e5",
    ]
    texts = [p + q + r for p in pieces for q in pieces for r in pieces]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.choice((1, 5, 30)))) for _ in range(3000)]
    for text in texts:
        assert _clean(text) == _CONTROL.sub("", " ".join(text.split())), repr(text)
