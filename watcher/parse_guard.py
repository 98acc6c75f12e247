"""What an XML body must pass before any parser sees it: one decoding, entity checks on the text.

A check on raw bytes can be walked around with an encoding the check does not read (a body in
EBCDIC or UTF-7 has no ``<!ENTITY`` byte string, yet declares entities once decoded). So the
body is decoded once, with feedparser's own rules (BOM, Content-Type charset, XML declaration,
sniffing, fallbacks), into UTF-8 with an ``encoding='utf-8'`` declaration; the entity checks run
on those UTF-8 bytes, and every parse path parses exactly those bytes. What was checked is what
is parsed, whatever the encoding, declared or sniffed.

Pure: bytes in, a value out.
"""

from __future__ import annotations

import codecs
import io
import re
import xml.sax
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

__all__ = [
    "AUTHOR_REGEX_LIMIT",
    "MAX_ENTITY_EXPANSION",
    "MAX_ENTITY_VALUE",
    "XmlInput",
    "cut_excess_entries",
    "entity_refusal",
    "prepare_xml",
]

MAX_ENTITY_VALUE = 64  # characters; real feeds declare entities for a symbol or a short name
# Characters all references to declared entities may add together: a few symbols, used many times,
# fit; a body that would grow by megabytes (an entity referenced a million times) does not.
MAX_ENTITY_EXPANSION = 100_000

# feedparser looks for an e-mail address in every author string (author, dc:creator,
# managingEditor, webMaster, itunes:author, …) with a regex whose time grows with the square of
# the string's length: 20 authors of 8,000 characters took 25 s, one of 4 MB would hold a worker for
# hours. Authors are cut to this before that regex runs (watcher keeps 200 characters of one).
AUTHOR_REGEX_LIMIT = 512

_ENTITY_DECL = re.compile(rb"<!\s*ENTITY", re.I)  # any case: a lenient parser may not care
_LOOSE_DECL = re.compile(rb"<!\s*ENTITY\s+(?:%\s*)?([^\s>]+)", re.I)
_FIRST_ELEMENT = re.compile(rb"<\w")


@dataclass(frozen=True, slots=True)
class XmlInput:
    """A body made ready for parsing: UTF-8, checked, or the reason it is refused."""

    body: bytes  # UTF-8 with an encoding='utf-8' declaration (the original when undecodable)
    content_type: str | None  # the Content-Type with its charset set to what ``body`` now is
    encoding: str  # what the body was decoded from ("" when no encoding worked)
    encoding_problem: BaseException | None  # feedparser's note on the encoding (wrong one declared, …)
    refusal: str | None = None


def prepare_xml(body: bytes, content_type: str | None, url: str | None = None) -> XmlInput:
    """Decode ``body`` once and check its entity declarations on the decoded text."""
    from feedparser.encodings import convert_to_utf8  # on first use: feedparser costs start-up time

    headers = {"content-location": url or ""}
    if content_type:
        headers["content-type"] = content_type
    scratch: dict[str, object] = {}
    utf8 = _utf8_as_is(headers, body, scratch)
    if utf8 is None:
        utf8 = convert_to_utf8(headers, body, scratch)
    encoding = str(scratch.get("encoding") or "")
    problem = scratch.get("bozo_exception") if scratch.get("bozo") else None
    if not encoding:  # nothing decoded it: parsers see raw bytes, so those are what gets checked
        if _ENTITY_DECL.search(body.replace(b"\x00", b"")):
            refusal = "refused: the document declares XML entities in an encoding that cannot be read"
            return XmlInput(body, content_type, "", problem, refusal)  # type: ignore[arg-type]
        return XmlInput(body, content_type, "", problem)  # type: ignore[arg-type]
    ctype = _with_utf8_charset(content_type)
    return XmlInput(utf8, ctype, encoding, problem, entity_refusal(utf8))  # type: ignore[arg-type]


_XML_DECLARATION = re.compile(rb"<\?xml[^>]*?>")  # feedparser's RE_XML_DECLARATION, on bytes
_NEW_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"
# Codecs whose text, encoded as UTF-8, is the bytes it was decoded from: UTF-8 for any bytes it
# decodes, these for ASCII bytes.
_ASCII_ROUND_TRIP = frozenset({"ascii", "iso8859-1", "cp1252"})


def _utf8_as_is(headers: dict[str, str], body: bytes, result: dict[str, object]) -> bytes | None:
    """What feedparser's ``convert_to_utf8`` gives for a body that its first try decodes as UTF-8
    (or ASCII), without decoding and re-encoding the whole body: the same bytes behind its new
    XML declaration. None when that is not certain (then ``convert_to_utf8`` itself runs).

    Its choice of a first encoding reads only the first four bytes (byte order marks), the
    headers and the first line (its declaration pattern cannot cross a newline), so running it
    on the first line decides for the whole body too when the body has no byte order mark or
    marker of another encoding and the whole body decodes with that first encoding.
    """
    from feedparser.encodings import convert_to_utf8

    end = body.find(b"\n", 0, 4096) + 1
    if end < 4 or body[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in body[:4] or body[:4] == b"Lo\xa7\x94":
        return None
    convert_to_utf8(headers, body[:end], result)  # decides the encoding, notes problems
    data = body[3:] if body.startswith(b"\xef\xbb\xbf") else body  # without its byte order mark
    if not _decodes_as_first_try(result, data):
        result.clear()  # the whole body decides, as convert_to_utf8 itself
        return None
    declaration = _XML_DECLARATION.match(data)
    if declaration is None:
        return _NEW_DECLARATION + b"\n" + data
    return _NEW_DECLARATION + data[declaration.end() :]


def _decodes_as_first_try(result: dict[str, object], data: bytes) -> bool:
    """Did the first line decode with feedparser's first choice, and does the whole body (its
    byte order mark stripped) decode with it to text that is those same bytes in UTF-8?"""
    encoding = str(result.get("encoding") or "")
    problem = result.get("bozo_exception")
    if not encoding or (problem is not None and type(problem).__name__ != "NonXMLContentType"):
        return False  # no encoding worked, or not the first one tried (an override)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    if data.isascii():
        return name == "utf-8" or name in _ASCII_ROUND_TRIP
    if name != "utf-8":
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _with_utf8_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip()
    return f"{media}; charset=utf-8" if media else None


def entity_refusal(utf8: bytes) -> str | None:
    """Why this UTF-8 document must not reach an XML parser, or None when it is safe.

    Plain text entities (``<!ENTITY copy "(C)">``) are allowed while all their references
    together add at most MAX_ENTITY_EXPANSION characters; parameter, external, unparsed,
    nested and oversized ones are refused.
    """
    if not _declares_entities(utf8):
        return None
    guard = _DtdGuard()
    try:
        guard.parse(io.BytesIO(utf8))
    except _PrologDone:
        pass
    except _UnsafeXml as exc:
        return f"refused: the document {exc} (possible entity-expansion or external-entity attack)"
    except DefusedXmlException as exc:
        return f"refused: the document uses a forbidden XML construct ({exc!r})"
    except (xml.sax.SAXException, ValueError, LookupError) as exc:
        # An unreadable prolog: do not gamble on what a lenient parser would make of it.
        return f"refused: the document declares XML entities in a prolog that cannot be checked ({exc})"
    # feedparser's fallback finds declarations with a regex over the text before the first element,
    # comments included: every name it could find there must be one expat saw and checked.
    first = _FIRST_ELEMENT.search(utf8)
    head = utf8[: first.start()] if first else utf8
    found = {m.group(1).decode("utf-8", "replace") for m in _LOOSE_DECL.finditer(head)}
    unchecked = found - set(guard.entities)
    if unchecked:
        names = ", ".join(sorted(repr(n) for n in unchecked)[:3])
        return f"refused: the document declares XML entities outside its DTD's reach ({names})"
    growth = sum(len(v) * utf8.count(b"&" + n.encode() + b";") for n, v in guard.entities.items())
    if growth > MAX_ENTITY_EXPANSION:
        return (
            f"refused: the document's entity references would add {growth:,} characters "
            f"(limit {MAX_ENTITY_EXPANSION:,}; possible entity-expansion attack)"
        )
    return None


def _declares_entities(utf8: bytes) -> bool:
    """``_ENTITY_DECL.search(utf8)``: is there a ``<!`` followed by optional whitespace and
    ENTITY in any case? Found from the "!"s (bytes.find runs on memchr; the regex engine steps
    through every byte for its "<" and costs several times more on a whole body)."""
    at = utf8.find(b"!")
    while at >= 0:
        if at and _ENTITY_DECL.match(utf8, at - 1):
            return True
        at = utf8.find(b"!", at + 1)
    return False


class _DtdGuard(DefusedExpatParser):
    """Reads only the prolog; records plain text entities, refuses every other kind."""

    def __init__(self) -> None:
        # forbid_entities installs the hooks below, which let plain text entities through.
        super().__init__(forbid_dtd=False, forbid_entities=True, forbid_external=True)
        self.entities: dict[str, str] = {}
        self.setContentHandler(_StopAtRoot())

    def defused_entity_decl(self, name, is_parameter_entity, value, base, sysid, pubid, notation_name):  # type: ignore[no-untyped-def]
        if is_parameter_entity:
            kind = "a parameter"
        elif value is None or sysid or pubid or notation_name:
            kind = "an external"
        elif "&" in value or "%" in value:
            kind = "a nested"
        elif len(value) > MAX_ENTITY_VALUE:  # quadratic blowup: one big entity used many times
            kind = "an oversized"
        else:
            self.entities[name] = value  # plain text, e.g. <!ENTITY copy "(C)">
            return
        raise _UnsafeXml(f"declares {kind} XML entity {name!r}")

    def defused_unparsed_entity_decl(self, name, base, sysid, pubid, notation_name):  # type: ignore[no-untyped-def]
        raise _UnsafeXml(f"declares an unparsed XML entity {name!r}")


class _StopAtRoot(xml.sax.ContentHandler):
    """The DTD precedes the root element, so the check ends where the content begins."""

    def startElement(self, *args: object) -> None:
        raise _PrologDone

    startElementNS = startElement


class _PrologDone(Exception):
    pass


class _UnsafeXml(Exception):
    pass


_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")


def cut_excess_entries(utf8: bytes, keep: int) -> tuple[bytes, int]:
    """The document with only its first ``keep`` entries (RSS items, Atom entries), and how many
    it had. A 5 MB body can hold 170,000 tiny items, which cost a parser most of a minute; the
    entries after the first ``keep`` are cut out up to the document's own closing tags.
    """
    ends = [m.end() for m in _ENTRY_END.finditer(utf8)]
    if len(ends) <= keep:
        return utf8, len(ends)
    return utf8[: ends[keep - 1]] + utf8[ends[-1] :], len(ends)


def _cap_authors_before_feedparsers_regex() -> None:
    """Install the author cut in feedparser (once; a no-op if feedparser changes its internals)."""
    try:
        from feedparser.mixin import _FeedParserMixin
    except ImportError:  # pragma: no cover - a feedparser without the mixin has no such regex either
        return
    original = getattr(_FeedParserMixin, "_sync_author_detail", None)
    if original is None or getattr(original, "watcher_capped", False):
        return

    def capped(self, key="author"):  # type: ignore[no-untyped-def]
        context = self._get_context()
        value = context.get(key)
        if isinstance(value, str) and len(value) > AUTHOR_REGEX_LIMIT:
            context[key] = value[:AUTHOR_REGEX_LIMIT]
        return original(self, key)

    capped.watcher_capped = True  # type: ignore[attr-defined]
    _FeedParserMixin._sync_author_detail = capped  # type: ignore[method-assign]


_cap_authors_before_feedparsers_regex()
