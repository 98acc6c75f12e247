"""Feed text is never interpreted as markup in Slack mrkdwn, Discord markdown or the HTML email."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from watcher.digest import render_html, render_text, webhook_bodies
from watcher.digest.view import digest_view
from watcher.values import Digest, DigestItem

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
# Markup of every service in titles, excerpts and outlet names.
MARKUP = [
    "*URGENT* _now_ ~gone~ `rm -rf` ```block```",
    "<!channel> <!here> <@U123> <#C123|general> <https://evil.example|click here>",
    "[click](https://evil.example) ||spoiler|| **bold** __under__ @everyone @here",
    "# Heading\n> quote\n- list item\n1. numbered\n-# subtext",
    ":rotating_light: &amp; &lt;b&gt; <b>tag</b>",
]


def hostile_digest() -> Digest:
    items = tuple(
        DigestItem(
            match_id=i,
            profile="libya",
            title=f"Libya {i}: {text}",
            link=f"https://news.example/story/{i}",
            source=f"Outlet {text}",
            published=T0,
            excerpt=f"Excerpt {text}",
            score=3.0,
            terms=("libya",),
            also=((f"Mirror {text}", f"https://mirror.example/{i}"),),
        )
        for i, text in enumerate(MARKUP, 1)
    )
    return Digest(name="d", key="k", created=T0, items=items, profiles=("libya",))


def _text_objects(node: object) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            found.append(node)
        for value in node.values():
            found.extend(_text_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_text_objects(value))
    return found


def test_slack_mrkdwn_carries_no_feed_text() -> None:
    bodies = webhook_bodies(hostile_digest(), "slack")
    objects = [o for b in bodies for o in _text_objects(b["blocks"])]
    mrkdwn = [o["text"] for o in objects if o["type"] == "mrkdwn"]
    # Our own text only: part labels and links labelled by their host.
    for text in mrkdwn:
        stripped = re.sub(r"<https://[^|<>]+\|[A-Za-z0-9.-]+>", "", text)
        assert not re.search(r"[*_~`<>]|evil|URGENT|channel|everyone", stripped), text
    plain = " ".join(o["text"] for o in objects if o["type"] == "plain_text")
    for word in ("*URGENT*", "||spoiler||", "[click](https://evil.example)", "# Heading", "- list item"):
        assert word in plain  # the feed's words reach the reader as typed (tag-like "<…>" text is dropped)
    assert all(o.get("emoji") is False for o in objects if o["type"] == "plain_text")
    for n in range(1, len(MARKUP) + 1):  # every item still named by its link
        assert any(f"<https://news.example/story/{n}|" in t for t in mrkdwn)


_UNESCAPED = re.compile(r"(?<!\\)[*_~`|\[\]()>#<]")


def _unescape(text: str) -> str:
    return re.sub(r"\\([^A-Za-z0-9\s])", r"\1", text)


def test_discord_markdown_shows_feed_text_as_typed() -> None:
    d = hostile_digest()
    embeds = [e for b in webhook_bodies(d, "discord") for e in b["embeds"]]
    assert len(embeds) == len(MARKUP)
    for e, it in zip(embeds, digest_view(d).items, strict=True):
        assert not _UNESCAPED.search(e["title"]), e["title"]
        assert _unescape(e["title"]) == it.title  # what the reader sees is the feed's text
        first = e["description"].split("\n")[0]  # the excerpt: feed text
        assert not _UNESCAPED.search(first), first
        assert not re.search(r"^\s*(?:[-+]|\d+\.)\s", first, re.M)  # no list or subtext starts
    for b in webhook_bodies(d, "discord"):
        assert b["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize("line", ["- list", "+ list", "-# subtext", "12. numbered", "  - indented"])
def test_discord_line_starts_are_escaped(line: str) -> None:
    from watcher.digest.webhook import _discord_escape

    escaped = _discord_escape(f"first\n{line}")
    assert _unescape(escaped) == f"first\n{line}"
    assert not re.search(r"^\s*(?:[-+]|\d+\.)\s", escaped.split("\n")[1])


def test_html_and_text_show_markup_as_text() -> None:
    d = hostile_digest()
    html = render_html(d)
    assert "<b>tag</b>" not in html and "<!channel>" not in html
    assert "*URGENT*" in html and "[click](https://evil.example)" in html  # shown, not interpreted
    assert "*URGENT*" in render_text(d)  # plain text is plain
