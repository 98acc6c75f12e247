"""OPML in and out (feed lists from other readers). Parsing goes through defusedxml."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

_BARE_AMP = re.compile(rb"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


class OpmlError(Exception):
    pass


def read_opml(data: bytes) -> list[tuple[str, str | None]]:
    """(url, title) of every outline with an xmlUrl, nested folders included, first occurrence kept."""
    try:
        root = fromstring(data)
    except ET.ParseError as exc:
        # Exported lists often carry raw '&' in feed URLs; escape those and try once more.
        repaired = _BARE_AMP.sub(b"&amp;", data)
        if repaired == data:
            raise OpmlError(f"not a readable OPML file: {exc}") from None
        try:
            root = fromstring(repaired)
        except (ET.ParseError, DefusedXmlException) as exc2:
            raise OpmlError(f"not a readable OPML file: {exc2}") from None
    except DefusedXmlException as exc:
        raise OpmlError(f"not a readable OPML file: {exc}") from None
    if root.tag.lower() != "opml":
        raise OpmlError(f"not an OPML file (root element is <{root.tag}>)")
    seen: dict[str, str | None] = {}
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if url and url not in seen:
            seen[url] = (node.get("title") or node.get("text") or "").strip() or None
    return list(seen.items())


def write_opml(feeds: Sequence[tuple[str, str | None]], title: str) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for url, name in feeds:
        ET.SubElement(body, "outline", type="rss", text=name or url, title=name or url, xmlUrl=url)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
