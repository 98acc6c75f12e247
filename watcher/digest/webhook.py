"""Digest → webhook request bodies: generic JSON, Slack (Block Kit) or Discord (embeds).

Generic JSON is one body with this schema::

    {"id": <digest key>, "digest": <name>, "created": <ISO 8601 UTC>, "profiles": [<name>, ...],
     "items": [{"match_id": int, "profile": str, "title": str, "link": str | null, "source": str,
                "published": <ISO 8601 UTC>, "score": float, "terms": [str, ...], "excerpt": str,
                "also": [{"source": str, "link": str | null}, ...],
                "feedback": {"relevant": <url>, "not_relevant": <url>}}, ...]}

``feedback`` is there only when the web side is configured (``[web]``); Slack and Discord
then show the same two links under each item.

Slack and Discord cap the size of one message, so a long digest becomes several
bodies; each names the digest id and its part ("part 2/5") in its visible text,
and the sender adds ``Idempotency-Key: <key>:<part>``. Links that are not
http(s) are ``null`` in JSON and never become a link in chat formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from watcher.digest.render import view_subject
from watcher.digest.text import shorten
from watcher.digest.view import DigestView, ItemView, digest_view
from watcher.values import Digest

Format = Literal["json", "slack", "discord"]

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
SLACK_CONTEXT_CHARS = 3000
# Discord embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
DISCORD_MAX_EMBEDS = 10
DISCORD_TITLE_CHARS = 256
DISCORD_DESCRIPTION_CHARS = 4096
DISCORD_FOOTER_CHARS = 2048
DISCORD_AUTHOR_CHARS = 256
DISCORD_TOTAL_CHARS = 6000
DISCORD_CONTENT_CHARS = 2000

MAX_ALSO_SHOWN = 10  # a story picked up by 40 outlets should not crowd out the others
_DISCORD_COLOR = 0x1D4ED8


def webhook_bodies(digest: Digest, fmt: Format) -> list[dict[str, Any]]:
    view = digest_view(digest)
    headline = view_subject(view, prefix="").strip()
    if fmt == "json":
        return [_json_body(view)]
    if fmt == "slack":
        return _slack_bodies(view, headline)
    if fmt == "discord":
        return _discord_bodies(view, headline)
    raise ValueError(f"unknown webhook format {fmt!r} (expected json, slack or discord)")


def items_in_body(body: dict[str, Any], fmt: Format) -> int:
    """How many digest items (grouped stories) one body carries, in the order they were packed."""
    if fmt == "json":
        return len(body.get("items", []))
    if fmt == "discord":
        return len(body.get("embeds", []))
    # Slack: one context block per item, and one for the part label.
    return max(sum(1 for b in body.get("blocks", []) if b.get("type") == "context") - 1, 0)


# --- generic JSON ---------------------------------------------------------------------------------


def _json_body(view: DigestView) -> dict[str, Any]:
    return {
        "id": view.key,
        "digest": view.name,
        "created": view.created_iso,
        "profiles": list(view.profiles),
        "items": [
            {
                "match_id": it.match_id,
                "profile": it.profile,
                "title": it.title,
                "link": it.link,
                "source": it.source,
                "published": it.published_iso,
                "score": it.score,
                "terms": list(it.terms),
                "excerpt": it.excerpt,
                "also": [{"source": a.source, "link": a.link} for a in it.also],
                **_json_feedback(it),
            }
            for it in view.items
        ],
    }


def _json_feedback(it: ItemView) -> dict[str, Any]:
    if it.feedback is None:
        return {}
    return {"feedback": {"relevant": it.feedback.relevant, "not_relevant": it.feedback.not_relevant}}


def _part_label(view: DigestView, part: int, parts: int) -> str:
    return f"digest {view.name} · part {part}/{parts} · id {view.key}"


def _pack(units: Iterable[tuple[int, Any]], budget: int) -> list[list[Any]]:
    """Greedy packing of (cost, unit) into groups whose cost stays within ``budget``."""
    groups: list[list[Any]] = []
    used = budget + 1
    for cost, unit in units:
        if used + cost > budget:
            groups.append([])
            used = 0
        groups[-1].append(unit)
        used += cost
    return groups or [[]]


# --- Slack ----------------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters; escaping "<" also defuses <!channel>-style mentions.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(link: str, label: str) -> str:
    url = link.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{url}|{_slack_escape(label)}>"


def _also_text(it: ItemView, link: Callable[[str, str], str], escape: Callable[[str], str]) -> str:
    """The first few other outlets of a story, linked in the service's own markup."""
    shown = [link(a.link, a.source) if a.link else escape(a.source) for a in it.also[:MAX_ALSO_SHOWN]]
    more = len(it.also) - MAX_ALSO_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _plain(text: str, limit: int = SLACK_SECTION_CHARS) -> dict[str, Any]:
    """A plain_text object: Slack interprets nothing in it (no *bold*, no <links>, no :emoji:)."""
    return {"type": "plain_text", "text": shorten(text, limit) or " ", "emoji": False}


def _host(link: str) -> str:
    """The link's host name as a label of our own, safe in mrkdwn (no markup characters)."""
    host = urlsplit(link).hostname or "link"
    return re.sub(r"[^A-Za-z0-9.-]", "", host.removeprefix("www.")) or "link"


def _slack_item_blocks(it: ItemView) -> list[dict[str, Any]]:
    """One item: feed text only ever in plain_text; mrkdwn carries only links labelled by their host.

    Slack's mrkdwn has no escape for * _ ~ ` (a title "*URGENT*" would turn bold), so feed text
    (title, excerpt, source, outlet names) never goes into it.
    """
    text = shorten(it.title, 300) + (f"\n{it.excerpt}" if it.excerpt else "")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _plain(text)}]
    elements: list[dict[str, Any]] = []
    if it.link:
        elements.append({"type": "mrkdwn", "text": _slack_link(it.link, _host(it.link))})
    elements.append(_plain(f"{it.source} · {it.published} · score {it.score_text}"))
    if it.terms:
        elements.append(_plain("Matched: " + ", ".join(it.terms)))
    if it.also:
        shown = it.also[:MAX_ALSO_SHOWN]
        more = len(it.also) - len(shown)
        names = ", ".join(a.source for a in shown) + (f" and {more} more" if more > 0 else "")
        elements.append(_plain("Also reported by: " + names))
        links = [_slack_link(a.link, _host(a.link)) for a in shown if a.link]
        if links:
            elements.append({"type": "mrkdwn", "text": shorten(" · ".join(links), SLACK_CONTEXT_CHARS)})
    if it.feedback:  # our own links and labels: safe in mrkdwn
        relevant = _slack_link(it.feedback.relevant, "Relevant")
        elements.append(
            {
                "type": "mrkdwn",
                "text": relevant + " · " + _slack_link(it.feedback.not_relevant, "Not relevant"),
            }
        )
    blocks.append({"type": "context", "elements": elements})
    return blocks


def _slack_bodies(view: DigestView, headline: str) -> list[dict[str, Any]]:
    units: list[tuple[int, list[dict[str, Any]]]] = []
    for section in view.sections:
        for i, it in enumerate(section.items):
            blocks = [*_slack_item_blocks(it), {"type": "divider"}]
            if i == 0:  # the profile heading travels with its first item: never orphaned at a part's end
                blocks.insert(0, {"type": "section", "text": _plain(section.profile, 200)})
            units.append((len(blocks), blocks))
    groups = _pack(units, SLACK_MAX_BLOCKS - 2)  # 2: header and context of every part
    bodies = []
    for n, group in enumerate(groups, 1):
        label = _part_label(view, n, len(groups))
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": _plain(headline, SLACK_HEADER_CHARS)},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": shorten(_slack_escape(label), SLACK_CONTEXT_CHARS)}],
            },
        ]
        for unit in group:
            blocks.extend(unit)
        if not view.count:
            blocks.append({"type": "section", "text": _plain("No new items.")})
        bodies.append({"text": f"{headline} ({label})", "blocks": blocks})
    return bodies


# --- Discord --------------------------------------------------------------------------------------

_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|\[\]()>#<])")
# Line starts that make a list or subtext ("- ", "+ ", "-# ", "1. "): escape the marker itself.
_DISCORD_LINE_START = re.compile(r"^(\s*)([-+])|^(\s*\d+)(\.)", re.M)


def _discord_escape(text: str) -> str:
    """Discord markdown shown as typed: a backslash before every character that could format.

    Discord drops the backslash before any punctuation, so the reader sees the feed's own text.
    """
    text = _DISCORD_MARKDOWN.sub(r"\\\1", text)
    return _DISCORD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(m: re.Match[str]) -> str:
    if m.group(2):
        return m.group(1) + "\\" + m.group(2)
    return m.group(3) + "\\" + m.group(4)


def _discord_link(link: str, label: str) -> str:
    url = link.replace("(", "%28").replace(")", "%29")
    return f"[{_discord_escape(label)}]({url})"


def _discord_embed(it: ItemView) -> dict[str, Any]:
    lines = [_discord_escape(it.excerpt)] if it.excerpt else []
    if it.terms:
        lines.append("**Matched:** " + _discord_escape(", ".join(it.terms)))
    if it.also:
        lines.append("**Also reported by:** " + _also_text(it, _discord_link, _discord_escape))
    if it.link:
        lines.append(it.link)  # the item named by its link in the visible text too
    feedback = ""
    if it.feedback:
        relevant = _discord_link(it.feedback.relevant, "Relevant")
        feedback = "\n" + relevant + " · " + _discord_link(it.feedback.not_relevant, "Not relevant")
    description = shorten("\n".join(lines), DISCORD_DESCRIPTION_CHARS - len(feedback)) + feedback
    embed: dict[str, Any] = {
        "title": shorten(_discord_escape(it.title), DISCORD_TITLE_CHARS),
        "description": description.lstrip("\n"),
        "author": {"name": shorten(it.source, DISCORD_AUTHOR_CHARS)},
        "footer": {"text": shorten(f"{it.profile} · score {it.score_text}", DISCORD_FOOTER_CHARS)},
        "timestamp": it.published_iso,
        "color": _DISCORD_COLOR,
    }
    if it.link:
        embed["url"] = it.link
    return embed


def _embed_chars(embed: dict[str, Any]) -> int:
    return (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["author"]["name"])
        + len(embed["footer"]["text"])
    )


def _discord_bodies(view: DigestView, headline: str) -> list[dict[str, Any]]:
    embeds = [_discord_embed(it) for it in view.items]
    # The 6000-character total is per message; pack by characters, then split any group over 10 embeds.
    groups = [
        g[i : i + DISCORD_MAX_EMBEDS]
        for g in _pack(((_embed_chars(e), e) for e in embeds), DISCORD_TOTAL_CHARS)
        for i in range(0, max(len(g), 1), DISCORD_MAX_EMBEDS)
    ]
    bodies = []
    for n, group in enumerate(groups, 1):
        name, key = view.name.replace("`", ""), view.key.replace("`", "")
        content = f"**{_discord_escape(headline)}**\npart {n}/{len(groups)} · digest `{name}` · id `{key}`"
        if not view.count:
            content += "\nNo new items."
        bodies.append(
            {
                "content": shorten(content, DISCORD_CONTENT_CHARS),
                "embeds": group,
                "allowed_mentions": {"parse": []},  # feed text must never ping anyone
            }
        )
    return bodies
