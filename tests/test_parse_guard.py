"""prepare_xml decodes exactly as feedparser's convert_to_utf8, its shortcut for UTF-8 bodies included."""

from __future__ import annotations

import itertools
import random

import pytest
from feedparser.encodings import convert_to_utf8

from tests.conftest import need_shared
from watcher.parse_guard import _ENTITY_DECL, _declares_entities, prepare_xml

URL = "https://corpus.invalid/feed"
CONTENT_TYPES = (
    None,
    "application/rss+xml",
    "application/atom+xml; charset=utf-8",
    "application/xml; charset=iso-8859-1",
    "application/xml; charset=us-ascii",
    "text/xml",
    "text/xml; charset=UTF-8",
    "text/html",
    "text/plain; charset=windows-1252",
    "application/octet-stream",
)


def _feedparsers(body: bytes, content_type: str | None) -> tuple[bytes, str, str | None]:
    headers = {"content-location": URL}
    if content_type:
        headers["content-type"] = content_type
    result: dict[str, object] = {}
    utf8 = convert_to_utf8(headers, body, result)
    problem = result.get("bozo_exception") if result.get("bozo") else None
    encoding = str(result.get("encoding") or "")
    return (
        (utf8 if encoding else body),
        encoding,
        (f"{type(problem).__name__}: {problem}" if problem else None),
    )


def _ours(body: bytes, content_type: str | None) -> tuple[bytes, str, str | None]:
    got = prepare_xml(body, content_type, URL)
    problem = got.encoding_problem
    return got.body, got.encoding, (f"{type(problem).__name__}: {problem}" if problem else None)


def test_corpus_decodes_as_feedparser_under_every_content_type() -> None:
    corpus = need_shared("corpus", "feeds")
    paths = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "manifest.jsonl")
    assert len(paths) >= 270
    compared = 0
    for path, ctype in itertools.product(paths, CONTENT_TYPES):
        body = path.read_bytes()
        assert _ours(body, ctype) == _feedparsers(body, ctype), (path, ctype)
        compared += 1
    assert compared == len(paths) * len(CONTENT_TYPES)


HEAD = b"<?xml version='1.0' encoding='utf-8'?>"
EDGE_CASES = [
    b"<rss><channel/></rss>",  # no declaration, one line
    b"<rss>\n<channel/></rss>",  # no declaration
    b'<?xml version="1.0"\n  encoding="utf-8"?>\n<rss/>',  # a declaration over two lines
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss>caf\xc3\xa9</rss>',
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss>caf\xe9</rss>',  # not UTF-8 after the first line
    b'<?xml version="1.0" encoding="us-ascii"?>\n<rss>caf\xc3\xa9</rss>',  # declared ASCII, is not
    b'<?xml version="1.0" encoding="us-ascii"?>\n<rss>cafe</rss>',
    b'<?xml version="1.0" encoding="iso-8859-1"?>\n<rss>caf\xe9</rss>',
    b'<?xml version="1.0" encoding="utf-16"?>\n<rss>x</rss>',  # declared UTF-16, is not
    b'<?xml version="1.0" encoding="bogus-charset"?>\n<rss>x</rss>',
    b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<rss>\xc3\xa9</rss>',  # UTF-8 byte order mark
    b"\xef\xbb\xbf<rss>\n\xc3\xa9</rss>",
    b'\n\n<?xml version="1.0" encoding="utf-8"?>\n<rss/>',  # blank lines before the declaration
    b"ab\n<rss/>",
    b'<?xml version="1.0"?><rss>' + b"x" * 5000 + b"\n</rss>",  # a first line longer than 4 KB
    b'<?xml version="1.0" encoding="utf-8"?>\r<rss>\xc3\xa9</rss>\r',  # carriage returns only
    b"caf\xc3\xa9\n<rss/>",  # non-ASCII in the first line
    b"caf\xe9\n<rss>\xc3\xa9</rss>",  # a first line that is not UTF-8
    '<?xml version="1.0" encoding="utf-16"?>\n<rss>\u00e9</rss>'.encode("utf-16"),  # byte order marks
    '<?xml version="1.0" encoding="utf-16le"?>\n<rss>\u00e9</rss>'.encode("utf-16le"),
    '<?xml version="1.0" encoding="utf-32"?>\n<rss>\u00e9</rss>'.encode("utf-32"),
    '<?xml version="1.0" encoding="cp037"?>\n<rss>x</rss>'.encode("cp037"),
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss>\xed\xa0\x80</rss>',  # an encoded surrogate
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss>\xc0\xaf</rss>',  # an overlong form
    b'<?xml version="1.0" encoding="utf-8" ?><!-- encoding="latin-1" ?>\n<rss/>',
    b"<?xml version='1.0' encoding='UTF8'?>\n<rss>\xe2\x80\x99</rss>",
    b"<?xml version='1.0' encoding='gb2312'?>\n<rss>x</rss>",
    b'<?xml version="1.0" encoding="windows-1252"?>\n<rss>x</rss>',
    b'<?xml version="1.0" encoding="windows-1252"?>\n<rss>\x93x\x94</rss>',
    b'<?xml version="1.0" encoding="koi8-r"?>\n<rss>x</rss>',
]


@pytest.mark.parametrize("ctype", CONTENT_TYPES)
@pytest.mark.parametrize("body", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_decode_as_feedparser(body: bytes, ctype: str | None) -> None:
    assert _ours(body, ctype) == _feedparsers(body, ctype)


def test_utf8_body_keeps_its_bytes_behind_the_new_declaration() -> None:
    body = b'<?xml version="1.0" encoding="utf-8"?>\n<rss>caf\xc3\xa9 \xe2\x80\x99</rss>'
    assert prepare_xml(body, None).body == HEAD + b"\n<rss>caf\xc3\xa9 \xe2\x80\x99</rss>"


# The scan for entity declarations, against the regex it stands for: every corpus file and
# generated soup of its pieces.
def test_entity_scan_agrees_with_its_regex_on_the_corpus() -> None:
    corpus = need_shared("corpus", "feeds")
    paths = [p for p in corpus.rglob("*") if p.is_file() and p.name != "manifest.jsonl"]
    assert len(paths) >= 270
    bangs = 0
    for path in paths:  # none declares entities: this is about the "!"s of CDATA, comments and text
        body = path.read_bytes()
        bangs += body.count(b"!")
        assert _declares_entities(body) == (_ENTITY_DECL.search(body) is not None), path
    assert bangs > 5_000


ENTITY_PIECES = [b"<", b"!", b"<!", b"ENTITY", b"entity", b"EnTiTy", b"ENTIT", b"Y", b" ", b"\t", b"\n"]
ENTITY_PIECES += [b"\x0b", b"\x0c", b"\r", b"--", b"[CDATA[", b"x", b"\xc3\xa9", b"\x00"]


def test_entity_scan_agrees_with_its_regex_on_generated_soup() -> None:
    rng = random.Random(13)
    found = 0
    for _ in range(30_000):
        body = b"".join(rng.choice(ENTITY_PIECES) for _ in range(rng.randint(0, 8)))
        expected = _ENTITY_DECL.search(body) is not None
        found += expected
        assert _declares_entities(body) == expected, body
    assert found > 300
