"""The fast parse path: lxml reads RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 into the fields feedparser would give.

Each format is mapped into one set of raw fields per entry (the way Miniflux maps each format
into one entry model), following feedparser's own rules for which element wins (first title,
description over content:encoded, the last alternate link, a permalink guid as the link,
``rdf:about`` as the id, relative URIs resolved against ``xml:base``). Watcher's normalization
(:func:`watcher.parse._make_entry`) then turns them into :class:`~watcher.values.Entry` values
exactly as it does for feedparser's output, so the two paths give the same entries.

Whenever this path cannot be trusted for a body it raises :class:`Untrusted` and the caller uses
feedparser instead: XML that is not well-formed, an encoding other than UTF-8 (declared or
sent), a document type with entity declarations, a root it does not know, a number of entries
different from the ``<item>``/``<entry>`` elements in the bytes, markup it does not map (nested
titles or descriptions, base64 or unknown content types), or an entry with nothing to identify it.

Safety: lxml runs with entity resolution, DTD loading and network access off and without
``huge_tree``, and an external DTD the document names reads as empty (nothing is fetched or
opened); the caller's XML guard (:func:`watcher.parse_guard.prepare_xml`) has already refused
dangerous entity declarations before any parser sees the body.
"""

from __future__ import annotations

import calendar
import re
import threading
import urllib.parse
from functools import partial
from typing import Any

from lxml import etree

from watcher.parse import _ABSOLUTE, _alternation, newest

__all__ = ["Untrusted", "parse_xml"]

ATOM10 = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

# Namespaces whose elements feedparser treats as plain RSS/Atom elements, and the prefixes it
# gives the modules watcher reads (feedparser's own table, lower-cased).
_BARE = frozenset(
    {
        "",
        "http://backend.userland.com/rss",
        "http://blogs.law.harvard.edu/tech/rss",
        RSS10,
        RSS090,
        ATOM03,
        ATOM10.lower(),
        "http://purl.org/rss/1.0/modules/rss091#",
    }
)
_PREFIXES = {
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://search.yahoo.com/mrss": "media",
    "http://search.yahoo.com/mrss/": "media",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://www.w3.org/1999/xhtml": "xhtml",
    RDF: "rdf",
}

# What each element means to an entry, by feedparser's name for it.
_TITLE = {"title", "dc:title", "media:title"}
_DESCRIPTION = {"description", "dc:description", "media:description"}  # HTML unless typed
_SUMMARY = {"summary", "itunes:summary"}  # text unless typed
_ABSTRACT = {"abstract"}
_CONTENT = {"content": "text/plain", "content:encoded": "text/html", "fullitem": "text/html"}
_XHTML_BODY = {"body", "xhtml:body"}
_PUBLISHED = {"published", "issued", "pubdate", "dcterms:issued"}
_UPDATED = {"updated", "modified", "lastbuilddate", "dc:date", "dcterms:modified"}
_CREATED = {"created", "dcterms:created"}
_AUTHOR = {"author", "dc:creator", "dc:author", "managingeditor"}
_ID = {"guid", "id"}
# Elements that, nested anywhere below an entry, feedparser would read into its fields.
_NESTED_RISK = (
    "{http://search.yahoo.com/mrss/}title",
    "{http://search.yahoo.com/mrss/}description",
    "{http://search.yahoo.com/mrss}title",
    "{http://search.yahoo.com/mrss}description",
    "{http://purl.org/dc/elements/1.1/}title",
    "{http://purl.org/dc/elements/1.1/}description",
    f"{{{ATOM10}}}title",
    f"{{{ATOM10}}}summary",
    f"{{{ATOM10}}}content",
    f"{{{ATOM10}}}link",
    f"{{{ATOM10}}}id",
    "title",
    "description",
    "link",
    "guid",
)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/html", "application/xhtml+xml"})
_SUMMARY_TYPES = _TEXT_TYPES  # content of these types is also the summary when there is none
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
# An <item> or <entry> start tag, any prefix, any case ("<items>" is RSS 1.0's table of contents).
# Possessive: a prefix that is there is never given back (no match needs that), so no backtracking.
# The names' cases spelled out rather than re.I, so the engine passes over a branch whose first
# letter differs at once (the same matches; -13 % of the scan's instructions on the corpus).
_ENTRY_NAMES = _alternation(("item", "entry"), any_case=True).encode()
_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*+:)?+" + _ENTRY_NAMES + rb"(?=[\s/>])")
_SPACED_EQUALS = re.compile(rb"\s*=")
_XML_DECL_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NOT_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.lstrip() keeps
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
# A scheme as urlsplit reads one, then no "/" (no authority, nothing for _URI_FIXER) and no tab or
# line break anywhere (urlsplit drops those, which could make a "//" of what is left).
_OPAQUE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):[^/\t\r\n][^\t\r\n]*")
_RELATIVE_SCHEMES = frozenset(urllib.parse.uses_relative)
_C1 = re.compile("[\x80-\x9f]")
_CP1252 = {
    c: bytes([c]).decode("cp1252") for c in range(0x80, 0xA0) if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")


_PER_ELEMENT: Any = object()  # "ask each element for its xml:base"
_UNREAD: Any = object()


class Untrusted(Exception):
    """This body needs feedparser; ``reason`` is a short class name (for tests and benchmarks)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


_local = threading.local()  # an lxml parser must not be shared between threads


class _NoExternalDtd(etree.Resolver):
    """An external DTD (``<!DOCTYPE rss SYSTEM "http://…/rss-0.91.dtd">``) reads as empty.

    libxml2 asks for the external subset even with DTD loading off; with ``no_network`` that
    request fails the parse, and a local path would be read. feedparser (expat) ignores the
    external subset, so an empty one gives what feedparser gives, and nothing is fetched or read.
    """

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        return self.resolve_string("", context)


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            recover=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )
        parser.resolvers.add(_NoExternalDtd())
    return parser


# ---------------------------------------------------------------- trust checks


def _check_encoding(body: bytes, content_type: str | None) -> None:
    """Only UTF-8 (or ASCII) bodies, declared or sent: the rest is feedparser's art."""
    if body.startswith((b"\xfe\xff", b"\xff\xfe", b"\x00\x00", b"\x00<", b"<\x00", b"\x4c\x6f\xa7\x94")):
        raise Untrusted("encoding", "UTF-16/32 or EBCDIC")
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    first = _NOT_SPACE.search(head)  # where head.lstrip() would start, without copying the body
    m = _XML_DECL_ENCODING.match(head[first.start() : first.start() + 200]) if first else None
    if m and m.group(1).decode("ascii").lower() not in _UTF8:
        raise Untrusted("encoding", f"declared {m.group(1).decode('ascii')}")
    if content_type:
        c = _CHARSET.search(content_type)
        if c and c.group(1).lower() not in _UTF8:
            raise Untrusted("encoding", f"sent as {c.group(1)}")
        if not c and content_type.split(";")[0].strip().lower().startswith("text/"):
            raise Untrusted("encoding", "text/* without a charset")  # RFC 3023 says ASCII; feedparser knows


# ---------------------------------------------------------------- names and text


_names: dict[str, str] = {}


def _name(el: Any) -> str:
    """feedparser's name for an element: a known prefix and the lower-cased local name."""
    tag = el.tag
    name = _names.get(tag)
    if name is not None:
        return name
    if not isinstance(tag, str):  # an entity reference or other non-element node
        return ""
    if tag[0] == "{":
        ns, local = tag[1:].split("}", 1)
        low = ns.lower()
        if low in _BARE:
            name = local.lower()
        elif low in _PREFIXES:
            name = f"{_PREFIXES[low]}:{local.lower()}"
        else:  # an unknown namespace: feedparser uses the prefix the document gave it
            prefix = el.prefix
            return f"{prefix.lower()}:{local.lower()}" if prefix else local.lower()
    else:
        name = tag.lower()
    if len(_names) < 4096:
        _names[tag] = name
    return name


def _fix(text: str) -> str:
    """feedparser's last touches on every text value of a UTF-8 document."""
    if text.isascii():
        return text
    # All of it ISO-8859-1 (else the encode fails, at the first wider character, cheaper than a
    # regex scan for one): perhaps UTF-8 read as ISO-8859-1.
    try:  # noqa: SIM105 (contextlib.suppress costs two Python calls per value)
        text = text.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        pass
    # Windows-1252 code points sent as C1 controls. Those are not printable, so a printable text
    # (most, even of the non-ASCII ones: no line break) needs no scan for them.
    if not text.isprintable() and _C1.search(text):
        text = text.translate(_CP1252)
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_markup_tags: dict[str, tuple[str, str]] = {}


def _markup(el: Any, out: list[str]) -> None:
    """Inline XHTML as markup for html_to_text (local names, attributes left out: only text counts)."""
    tags = _markup_tags
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            pair = tags.get(tag)
            if pair is None:
                local = tag.rsplit("}", 1)[-1]
                pair = (f"<{local}>", f"</{local}>")
                if len(tags) < 4096:
                    tags[tag] = pair
            out.append(pair[0])
            text = child.text
            if text:
                out.append(_escape(text))
            if len(child):  # most inline elements hold text only: no call for them
                _markup(child, out)
            out.append(pair[1])
        tail = child.tail
        if tail:
            out.append(_escape(tail))


def _content(el: Any, ctype: str) -> str:
    """The value feedparser gives a text construct: the text, or its inline markup."""
    if len(el) == 0:
        return (el.text or "").strip()
    _check_markup(el, ctype)
    return _inline(el)


def _check_markup(el: Any, ctype: str) -> None:
    """Markup this path does not read the way feedparser does (an element with children)."""
    if ctype not in ("application/xhtml+xml",) and not ctype.endswith("xml"):
        first = el[0]
        if len(el) == 1 and isinstance(first.tag, str) and first.tag.rsplit("}", 1)[-1].lower() == "div":
            raise Untrusted("structure", "a <div> inside escaped markup")  # feedparser drops it (TypePad)


def _inline(el: Any) -> str:
    """An element's text and inline markup (it has children), stripped."""
    out = [_escape(el.text or "")]
    _markup(el, out)
    return "".join(out).strip()


_SHORT_TYPES = {
    "text": "text/plain",
    "plain": "text/plain",
    "html": "text/html",
    "xhtml": "application/xhtml+xml",
}


def _map_type(value: str) -> str:
    value = value.lower()
    return _SHORT_TYPES.get(value, value)


def _alternate(el: Any, href: str, base: str | None) -> str | None:
    """The href of an Atom-style link that feedparser takes as the page link, else None."""
    rel = (el.get("rel") or "alternate").lower()
    if rel != "alternate":
        return None
    if _map_type(el.get("type") or "text/html") not in _HTML_TYPES:
        return None
    return _urljoin(el.base if base is _PER_ELEMENT else base, href) if href else href


def _text_value(el: Any, default_type: str) -> tuple[str, str]:
    """(value, content type) of a text construct, as feedparser's pop_content gives them."""
    if not len(el):  # most: text only
        return _plain_text(el), _leaf_type(el, default_type)
    ctype = _markup_type(el, default_type)
    return _fix(_content(el, ctype)), ctype


def _markup_type(el: Any, default_type: str) -> str:
    """The content type of a text construct with child elements, checked."""
    ctype = _checked_type(el, default_type)
    if ctype not in _TEXT_TYPES and not ctype.endswith("xml"):
        ctype = "application/xhtml+xml"
    return ctype


def _checked_type(el: Any, default_type: str) -> str:
    """The content type a text construct declares; base64 and binary content are not ours to read."""
    ctype = _map_type(el.get("type", default_type))
    mode = el.get("mode", "")
    if mode == "base64" or not (ctype.startswith("text/") or ctype.endswith(("+xml", "/xml"))):
        raise Untrusted("structure", f"base64 or binary content ({ctype})")
    return ctype


def _leaf_type(el: Any, default_type: str) -> str:
    """The content type of a text construct without child elements (the default when it has no attributes)."""
    return _checked_type(el, default_type) if el.keys() else default_type


def _urljoin(base: str | None, uri: str) -> str:
    """feedparser's ``_urljoin``. Two kinds of URI that urljoin gives back as they are skip the
    work: an absolute http(s) URL (most links) and a URI whose scheme takes no relative references
    (``tag:``, ``urn:``, ``yt:`` ids); both only where urljoin could not refuse the base or the URI
    (brackets or non-ASCII in a host: ValueError, which feedparser turns into "")."""
    if _ABSOLUTE.fullmatch(uri):
        shortcut = uri.isascii() and "[" not in uri and "]" not in uri
    else:
        opaque = _OPAQUE.fullmatch(uri)
        shortcut = opaque is not None and opaque.group(1).lower() not in _RELATIVE_SCHEMES
    if shortcut:
        if not base:
            return uri
        try:
            urllib.parse.urlsplit(base)  # what urljoin parses first (cached), and may refuse
        except ValueError:
            return ""
        return uri
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urllib.parse.urljoin(base or "", uri)
    except ValueError:
        return ""


def _href(el: Any) -> str | None:
    for attr in ("url", "uri", "href"):
        value = el.get(attr)
        if value is not None:
            return value
    return None


# ---------------------------------------------------------------- entries


class _Fields:
    """feedparser's bookkeeping for one entry: which title and summary win, by depth and order."""

    __slots__ = ("contents", "e", "has_content", "summary_depth", "title_depth", "title_store_depth")

    def __init__(self) -> None:
        self.e: dict[str, Any] = {}
        self.contents: list[Any] = []  # text, or an element whose text is read only if needed
        self.has_content = False
        self.title_depth = -1  # depth of the last non-empty title (feedparser's title_depth)
        self.title_store_depth: int | None = None  # depth of the stored title
        self.summary_depth: int | None = None

    def title(self, value: str, depth: int, media: bool) -> None:
        if -1 < self.title_depth <= depth:
            return
        if self.title_store_depth is not None and depth > self.title_store_depth:
            return
        self.e["title"] = value
        self.title_store_depth = depth
        if value and not media:  # media:title never blocks a later title
            self.title_depth = depth

    def summary(self, value: str, depth: int) -> None:
        if self.summary_depth is None or depth <= self.summary_depth:
            self.e["summary"] = value
            self.summary_depth = depth

    def description(self, el: Any, name: str, depth: int) -> None:
        if name in _ABSTRACT:
            self.summary(_text_value(el, "text/plain")[0], depth)
        elif "summary" in self.e and not self.has_content:  # feedparser: a second summary is content
            self.contents.append(_text_value(el, "text/plain")[0])
        else:
            value, _ = _text_value(el, "text/html" if name in _DESCRIPTION else "text/plain")
            self.summary(value, depth)

    def content(self, el: Any, name: str) -> None:
        if name in _XHTML_BODY:
            value, ctype = _text_value(el, "application/xhtml+xml")
        else:
            self.has_content = True
            # Its type (and markup's shape) checked now, its text read at the end if used at all
            # (_deferred): a description usually wins.
            if not len(el):  # text only
                value, ctype = el, _leaf_type(el, _CONTENT[name])
            else:  # markup
                ctype = _markup_type(el, _CONTENT[name])
                _check_markup(el, ctype)
                value = (el,)
        self.contents.append(value)
        if ctype in _SUMMARY_TYPES:
            self.e.setdefault("summary", value)


def _person(el: Any) -> str:
    """An Atom person construct as feedparser writes it: "name (email)", the name, or the email."""
    name = email = ""
    for sub in el:
        if isinstance(sub.tag, str):
            local = sub.tag.rsplit("}", 1)[-1].lower()
            if local == "name" and not name:
                name = _fix((sub.text or "").strip())
            elif local == "email" and not email:
                email = _fix((sub.text or "").strip())
    if name and email:
        return f"{name} ({email})"
    return name or email


def _base_attrs(body: bytes) -> tuple[bool, bool]:
    """(Is there a ``base="..."`` attribute (not ``xml:base``)? feedparser honours it like
    xml:base; does ``xml:base`` occur at all?) One walk over the occurrences of "base" answers
    both: the first is what ``re.finditer(rb"base\\s*=")`` finds, preceded by a space, the second
    ``b"xml:base" in body`` ("base" cannot overlap itself, so no occurrence is skipped). bytes.find
    skips through the body far faster than the regex engine's scan, and "base" is rare."""
    plain = xml = False
    at = body.find(b"base")
    while at >= 0:
        if not xml and body[max(0, at - 4) : at] == b"xml:":
            xml = True
        elif not plain and body[at - 1 : at].isspace() and _SPACED_EQUALS.match(body, at + 4):
            plain = True
        if plain and xml:
            break
        at = body.find(b"base", at + 4)
    return plain, xml


def _has_nested(root: Any, items: list[Any]) -> bool:
    """Is a field element anywhere deeper than a direct child of an entry? (Rare: media:group.)

    A walk over the field elements only (filtered in C), not an XPath: libxml2 merges node sets
    in quadratic time, which a feed of 100,000 tiny items turns into minutes. Entries are known
    by identity (lxml keeps one proxy per element while it is referenced, as ``items`` does).
    """
    entries = set(items)
    for el in root.iter(*_NESTED_RISK):
        parent = el.getparent()
        if parent is None or parent in entries:
            continue
        node = parent.getparent()
        while node is not None:
            if node in entries:
                return True
            node = node.getparent()
    return False


_MEDIA_CONTAINERS = frozenset({"media:content", "media:group"})
_MARKUP = _TITLE | _DESCRIPTION | _SUMMARY | _ABSTRACT | set(_CONTENT) | _XHTML_BODY


def _nested(item: Any) -> dict[int, list[tuple[Any, int]]]:
    """Field elements below a direct child, by the index of that child: media:title and
    media:description inside media:content/media:group count (at their depth), those inside
    markup do not; anywhere else (an Atom <source>, an image) this path does not follow."""
    found: dict[int, list[tuple[Any, int]]] = {}
    for el in item.iter(*_NESTED_RISK):
        parent = el.getparent()
        if el is item or parent is item:
            continue
        chain = []
        node = parent
        while node is not None and node is not item:
            chain.append(node)
            node = node.getparent()
        if node is None:
            continue
        names = [_name(n) for n in chain]
        if any(n in _MARKUP for n in names):
            continue  # inline markup of a text construct, not a field
        if _name(el) in ("media:title", "media:description") and all(n in _MEDIA_CONTAINERS for n in names):
            found.setdefault(item.index(chain[-1]), []).append((el, len(chain) + 1))
            continue
        raise Untrusted("structure", f"{_name(el)} nested in {'/'.join(reversed(names))}")
    return found


# What an entry's child means, by feedparser's name for it: one dict lookup per child.
_K_TITLE, _K_DESCRIPTION, _K_CONTENT, _K_LINK, _K_ID, _K_DATE, _K_AUTHOR, _K_SOURCE = range(8)
_KIND: dict[str, int] = {
    **dict.fromkeys(_TITLE, _K_TITLE),
    **dict.fromkeys(_DESCRIPTION | _SUMMARY | _ABSTRACT, _K_DESCRIPTION),
    **dict.fromkeys([*_CONTENT, *_XHTML_BODY], _K_CONTENT),
    "link": _K_LINK,
    **dict.fromkeys(_ID, _K_ID),
    **dict.fromkeys(_PUBLISHED | _UPDATED | _CREATED, _K_DATE),
    **dict.fromkeys(_AUTHOR, _K_AUTHOR),
    "source": _K_SOURCE,
}
# The field and its parsed twin each date element sets.
_DATE_FIELD = {
    **dict.fromkeys(_PUBLISHED, ("published", "published_parsed")),
    **dict.fromkeys(_UPDATED, ("updated", "updated_parsed")),
    **dict.fromkeys(_CREATED, ("created", "created_parsed")),
}
_RDF_ABOUT = f"{{{RDF}}}about"


def _plain_text(el: Any) -> str:
    """The stripped, repaired text of an element without children."""
    value = el.text
    if not value:
        return ""
    value = value.strip()
    return value if value.isascii() else _fix(value)


def _deferred(value: Any) -> str:
    """A content value as _text_value would have read it: text, a text-only element, or a
    markup element in a 1-tuple (its type and shape already checked)."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return _fix(_inline(value[0]))
    return _plain_text(value)


def _entry(item: Any, parse_date: Any, look_deeper: bool, base: str | None) -> dict[str, Any]:
    """One item/entry as the feedparser fields watcher reads (``_fp_entry``'s input)."""
    f = _Fields()
    e = f.e
    if item.keys():  # most items have no attributes: three lookups saved
        if item.get("lastmod") is not None or item.get("href") is not None:
            raise Untrusted("structure", "CDF attributes on an item")
        about = item.get(_RDF_ABOUT)
        if about:
            e["id"] = about
    nested = _nested(item) if look_deeper else {}
    names, kinds = _names, _KIND
    for index, child in enumerate(item):
        name = names.get(child.tag) or _name(child)
        kind = kinds.get(name)
        if kind is None:  # category, comments, enclosure, …: nothing to read
            pass
        elif kind == _K_TITLE:
            plain = not len(child) and not child.keys()
            value = _plain_text(child) if plain else _text_value(child, "text/plain")[0]
            f.title(value, 1, name == "media:title")
        elif kind == _K_DESCRIPTION:
            if "summary" not in e and not len(child) and not child.keys():
                # The usual first description: text only, no type to check; what f.description
                # gives then for any of its names (no summary yet means no summary depth yet).
                e["summary"] = _plain_text(child)
                f.summary_depth = 1
            else:
                f.description(child, name, 1)
        elif kind == _K_CONTENT:
            f.content(child, name)
        elif kind == _K_LINK:
            href = _href(child) if child.keys() else None  # RSS's <link> has no attributes
            if href is not None:
                alternate = _alternate(child, href, base)
                if alternate is not None:
                    e["link"] = alternate
            else:
                if len(child):
                    raise Untrusted("structure", "markup inside <link>")
                value = _plain_text(child)
                if value:
                    value = _urljoin(child.base if base is _PER_ELEMENT else base, value)
                    if "&" in value:
                        value = _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
                e["link"] = value
        elif kind == _K_ID:
            if len(child):
                raise Untrusted("structure", "markup inside an id")
            is_link = not child.keys() or child.get("isPermaLink", child.get("ispermalink", "true")) == "true"
            value = _plain_text(child)
            if value and is_link:
                value = _urljoin(child.base if base is _PER_ELEMENT else base, value)
            e["id"] = value
            if is_link:
                e.setdefault("link", value)
        elif kind == _K_DATE:
            field, parsed = _DATE_FIELD[name]
            value = "" if len(child) else _plain_text(child)
            e[field] = value
            e[parsed] = parse_date(value)
        elif kind == _K_AUTHOR:
            e["author"] = _person(child) if len(child) else _plain_text(child)
        elif kind == _K_SOURCE and len(child):
            raise Untrusted("structure", "an Atom <source> in an entry")
        if nested:
            for el, depth in nested.get(index, ()):
                if _name(el) == "media:title":
                    f.title(_text_value(el, "text/plain")[0], depth, True)
                else:
                    f.description(el, "media:description", depth)
    summary = e.get("summary")
    if summary is not None and not isinstance(summary, str):  # a content element, read now
        summary = e["summary"] = _deferred(summary)
    if f.contents and not summary:  # watcher reads the content only for want of a summary
        e["content"] = [{"value": _deferred(v)} for v in f.contents]
    if not (e.get("id") or e.get("link") or e.get("title") or e.get("summary") or f.contents):
        raise Untrusted("required", "an entry with no id, link, title or text")
    return e


def _item_date(parse_date: Any, item: Any) -> float | None:
    """What :func:`watcher.parse._fp_date` gives for this item once mapped, without mapping it:
    the last published, updated or created date element of each kind, in that order of preference."""
    found: dict[str, Any] = {}
    for child in item:
        name = _name(child)
        if name in _PUBLISHED:
            found["published"] = child
        elif name in _UPDATED:
            found["updated"] = child
        elif name in _CREATED:
            found["created"] = child
    for kind in ("published", "updated", "created"):
        el = found.get(kind)
        if el is not None:
            value = parse_date("" if len(el) else _fix((el.text or "").strip()))
            if value:
                return float(calendar.timegm(value))
    return None


# ---------------------------------------------------------------- documents


def _feed_fields(channel: Any, base: str | None) -> dict[str, Any]:
    """Title, link and polling hints of the feed (channel) element."""
    feed: dict[str, Any] = {}
    title_set = False
    for child in channel:
        name = _name(child)
        if name == "title" and not title_set:
            feed["title"] = _text_value(child, "text/plain")[0]
            title_set = bool(feed["title"])
        elif name == "link":
            href = _href(child)
            if href is not None:
                alternate = _alternate(child, href, base)
                if alternate is not None:
                    feed["link"] = alternate
            elif not len(child):
                where = child.base if base is _PER_ELEMENT else base
                feed["link"] = _urljoin(where, _fix((child.text or "").strip()))
        elif name in ("ttl", "sy:updateperiod", "sy:updatefrequency"):
            feed[name.replace(":", "_")] = (child.text or "").strip()
    return feed


Fields = dict[str, Any]


def parse_xml(
    body: bytes, url: str | None, content_type: str | None, max_entries: int | None = None
) -> tuple[Fields, list[Fields], int]:
    """(feed fields, entries as feedparser-like dicts, entries in the body) of an RSS/Atom body;
    raises :class:`Untrusted`. With ``max_entries`` only the newest that many are read, chosen the
    way :func:`watcher.parse.newest` chooses among feedparser's entries, before any is mapped."""
    _check_encoding(body, content_type)
    if body[:1].isspace():  # feedparser reads past blank lines before the XML declaration
        body = body.lstrip()
    # The byte scans run before the parse, while the body is still in the CPU's cache (a parsed
    # tree is several times its size); their refusals come in the same order as ever, below.
    raw = len(_ENTRY_TAG.findall(body))
    plain_base, xml_base = _base_attrs(body)
    try:
        root = etree.fromstring(body, _parser(), base_url=url)
    except etree.XMLSyntaxError as exc:
        raise Untrusted("xml", str(exc)) from None
    except (ValueError, LookupError) as exc:
        raise Untrusted("xml", str(exc)) from None
    doc = root.getroottree().docinfo
    if doc.internalDTD is not None and next(doc.internalDTD.iterentities(), None) is not None:
        raise Untrusted("dtd", "the document declares entities")
    # With an external DTD (read as empty) an undefined entity is no error to libxml2: its
    # reference stays in the tree, where feedparser would make something else of it.
    if doc.system_url is not None and next(root.iter(etree.Entity), None) is not None:
        raise Untrusted("dtd", "a reference to an entity of an external DTD")
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag == "rss":
        channel = root.find("channel")
        parent, item_tag = channel, "item"
    elif tag == f"{{{RDF}}}RDF":
        ns = RSS10 if root.find(f"{{{RSS10}}}channel") is not None else RSS090
        channel = root.find(f"{{{ns}}}channel")
        parent, item_tag = root, f"{{{ns}}}item"
    elif tag in (f"{{{ATOM10}}}feed", f"{{{ATOM03}}}feed"):
        ns = tag[1:].split("}", 1)[0]
        channel = parent = root
        item_tag = f"{{{ns}}}entry"
    else:
        raise Untrusted("root", tag or "not an element")
    # Every entry element comes from an entry tag in the bytes, so when the usual parent's
    # entries alone are as many as those tags, they are all the document's entries.
    items = list(parent.iterchildren(item_tag)) if parent is not None else []
    if len(items) != raw:
        items = list(root.iter(item_tag))
    if not items:
        raise Untrusted("empty", "no entries")  # feedparser words the problem
    if raw != len(items):
        raise Untrusted("count", f"{len(items)} entries parsed, {raw} entry tags in the bytes")
    if plain_base:
        raise Untrusted("structure", "a plain base attribute")
    from watcher.parse_dates import parse_date as read_date  # feedparser's rules: both paths date alike

    dates: dict[str, Any] = {}

    def parse_date(value: str) -> Any:
        """read_date, once per string: a document often repeats one (Atom's published and updated)."""
        parsed = dates.get(value, _UNREAD)
        if parsed is _UNREAD:
            parsed = dates[value] = read_date(value)
        return parsed

    # Without xml:base every element's base is the document's URL: no need to ask each one.
    base = _PER_ELEMENT if xml_base else url
    nested = _has_nested(root, items)  # per-entry work only for documents that need it
    total = len(items)
    if max_entries is not None and total > max_entries:
        items = list(newest(items, partial(_item_date, parse_date), max_entries))
    entries = [_entry(item, parse_date, bool(nested), base) for item in items]
    feed = _feed_fields(channel, base) if channel is not None else {}
    return feed, entries, total
