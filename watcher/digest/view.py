"""Digest → display-ready view: the one place feed text is cleaned for output.

Every format (text, HTML, JSON, Slack, Discord) renders from these views, so
they all show the same cleaned title, safe link, excerpt and time.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from watcher.digest.group import grouped
from watcher.digest.text import excerpt, format_score, iso, one_line, plain_text, readable_time, safe_link
from watcher.values import Digest, DigestItem, FeedbackLinks


@dataclass(frozen=True, slots=True)
class AlsoView:
    source: str
    link: str | None  # None when the feed's link is not a safe http(s) URL


@dataclass(frozen=True, slots=True)
class ItemView:
    match_id: int
    profile: str
    title: str
    link: str | None
    source: str
    published: str  # readable, in the digest's time zone
    published_iso: str
    excerpt: str
    score: float
    score_text: str
    terms: tuple[str, ...]
    also: tuple[AlsoView, ...]
    feedback: FeedbackLinks | None = None  # "relevant" / "not relevant" links, when the web side is on


@dataclass(frozen=True, slots=True)
class SectionView:
    profile: str
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class DigestView:
    name: str
    key: str
    created: str
    created_iso: str
    count: int
    profiles: tuple[str, ...]
    sections: tuple[SectionView, ...]
    matches: int = 0  # matched items behind the ``count`` stories (copies from several feeds fold into one)

    @property
    def items(self) -> tuple[ItemView, ...]:
        return tuple(it for s in self.sections for it in s.items)


def item_view(item: DigestItem, timezone: str = "UTC") -> ItemView:
    return ItemView(
        match_id=item.match_id,
        profile=one_line(item.profile),
        title=plain_text(item.title) or "(untitled)",
        link=safe_link(item.link),
        source=plain_text(item.source) or "unknown source",
        published=readable_time(item.published, timezone),
        published_iso=iso(item.published),
        excerpt=excerpt(item.excerpt),
        score=float(item.score),
        score_text=format_score(item.score),
        terms=tuple(t for t in (one_line(t) for t in item.terms) if t),
        also=tuple(AlsoView(plain_text(src) or "another source", safe_link(link)) for src, link in item.also),
        feedback=_safe_feedback(item.feedback),
    )


def _safe_feedback(links: FeedbackLinks | None) -> FeedbackLinks | None:
    if links is None:
        return None
    relevant, not_relevant = safe_link(links.relevant), safe_link(links.not_relevant)
    return FeedbackLinks(relevant, not_relevant) if relevant and not_relevant else None


def profile_names(digest: Digest) -> tuple[str, ...]:
    names = digest.profiles or tuple(dict.fromkeys(it.profile for it in digest.items))
    return tuple(n for n in (one_line(p) for p in names) if n)


def digest_view(digest: Digest) -> DigestView:
    """Group duplicates, then clean every field for display."""
    g = grouped(digest)
    sections = tuple(
        SectionView(one_line(profile), tuple(item_view(it, digest.timezone) for it in items))
        for profile, items in groupby(g.items, key=lambda it: it.profile)
    )
    return DigestView(
        name=one_line(digest.name),
        key=digest.key,
        created=readable_time(digest.created, digest.timezone),
        created_iso=iso(digest.created),
        count=len(g.items),
        profiles=profile_names(digest),
        sections=sections,
        matches=len(digest.match_ids),
    )
