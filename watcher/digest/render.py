"""Digest → subject line, plain text and HTML (jinja2 templates, autoescaped).

The HTML body is rendered as a fragment and passed through nh3 with an
allowlist of exactly what the template uses: autoescaping already turns feed
text into text, and the sanitizer guarantees that even a template mistake
cannot let a script, an event handler or a ``javascript:`` href through.
"""

from __future__ import annotations

import nh3
from jinja2 import Environment, PackageLoader, StrictUndefined

from watcher.digest.text import one_line, plural
from watcher.digest.view import DigestView, digest_view
from watcher.values import Digest

SUBJECT_MAX = 200  # keep subjects readable; folding handles the rest

_env = Environment(
    loader=PackageLoader("watcher.digest", "templates"),
    autoescape=lambda name: not (name or "").endswith(".txt.j2"),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["split_lines"] = lambda s: s.splitlines()

# What body.html.j2 emits, and nothing more.
_TAGS = {"table", "tr", "td", "h1", "h2", "h3", "p", "a", "span", "strong"}
_ATTRIBUTES = {
    "*": {"style"},
    "table": {"role", "width", "cellpadding", "cellspacing", "border"},
    "td": {"align"},
    "a": {"href"},
}
_STYLE_PROPERTIES = {
    "margin",
    "padding",
    "width",
    "max-width",
    "background-color",
    "border",
    "border-bottom",
    "border-radius",
    "color",
    "font-family",
    "font-size",
    "font-weight",
    "line-height",
    "letter-spacing",
    "text-transform",
    "text-decoration",
    "word-break",
}


def sanitize_html(fragment: str) -> str:
    """The one sanitizer pass every HTML fragment takes before it reaches an email."""
    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
    )


def _headline(view: DigestView) -> str:
    target = ", ".join(view.profiles) or view.name
    if not view.count:
        return f"No new items for {target}"
    return f"{plural(view.count, 'new item')} for {target}"


def subject(digest: Digest, prefix: str = "[watcher]") -> str:
    """E.g. ``[watcher] 7 new items for libya, sahel``: one line, no control characters."""
    return view_subject(digest_view(digest), prefix)


def view_subject(view: DigestView, prefix: str = "[watcher]") -> str:
    """:func:`subject` of a digest whose view is already built (a renderer builds it once)."""
    line = one_line(f"{one_line(prefix)} {_headline(view)}")
    if len(line) > SUBJECT_MAX:
        line = line[: SUBJECT_MAX - 1].rstrip() + "…"
    return line


def render_text(digest: Digest) -> str:
    view = digest_view(digest)
    return _env.get_template("digest.txt.j2").render(view=view, title=_headline(view))


def render_html(digest: Digest) -> str:
    view = digest_view(digest)
    headline = _headline(view)
    body = _env.get_template("body.html.j2").render(view=view, headline=headline)
    return _env.get_template("digest.html.j2").render(body=sanitize_html(body), title=headline)
