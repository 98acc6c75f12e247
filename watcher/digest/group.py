"""Fold cross-feed duplicates of one story into a single digest item.

Two items of the same profile are the same story when they share a canonical
link, or when their title and summary are near-identical (wire copy
republished by several outlets). The highest-scoring copy leads; the others
are listed under ``also`` and their match ids ride along in
``extra_match_ids`` so every folded match is marked delivered with the digest.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from rapidfuzz import fuzz, process

from watcher.digest.text import plain_text
from watcher.values import Digest, DigestItem

TITLE_SIMILARITY = 90.0  # rapidfuzz ratio (0–100) on normalized titles
SUMMARY_SIMILARITY = 85.0  # … and on the start of the summaries
TITLE_ONLY_SIMILARITY = 96.0  # when one side has no summary, the title must carry it alone
_SUMMARY_PREFIX = 240  # outlets truncate summaries differently; compare the start only

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _norm_text(value: str) -> str:
    return _NON_WORD.sub(" ", plain_text(value).casefold()).strip()


def link_key(link: str | None) -> str | None:
    """Comparable form of a canonical link: scheme-agnostic, host lower-cased, no fragment or trailing /."""
    if not link:
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return link.strip()
    if not parts.netloc:
        return link.strip()
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    return urlunsplit(("", host, path, parts.query, ""))


@dataclasses.dataclass(slots=True)
class _Story:
    lead: DigestItem
    link: str | None
    title: str
    summary: str
    also: list[tuple[str, str | None]]
    extra: list[int]


_NUMBER = re.compile(r"\d+")


def _similar(story: _Story, title: str, summary: str) -> bool:
    """Summary check for a story whose title already matched at TITLE_SIMILARITY."""
    if _NUMBER.findall(title) != _NUMBER.findall(story.title):
        return False  # "round 3 of talks" and "round 4 of talks" are two events, however alike
    if not summary or not story.summary:
        return fuzz.ratio(title, story.title, score_cutoff=TITLE_ONLY_SIMILARITY) > 0
    a, b = summary[:_SUMMARY_PREFIX], story.summary[:_SUMMARY_PREFIX]
    return fuzz.ratio(a, b, score_cutoff=SUMMARY_SIMILARITY) > 0


@dataclasses.dataclass(slots=True)
class _Profile:
    stories: list[_Story] = dataclasses.field(default_factory=list)
    # Story titles by the numbers in them: a title with other numbers is never the same story
    # (see _similar), so an item's title is compared only with those that carry its numbers.
    by_numbers: dict[tuple[str, ...], tuple[list[str], list[int]]] = dataclasses.field(default_factory=dict)
    by_link: dict[str, int] = dataclasses.field(default_factory=dict)

    def find(self, link: str | None, title: str, summary: str) -> _Story | None:
        if link is not None and link in self.by_link:
            return self.stories[self.by_link[link]]
        bucket = self.by_numbers.get(tuple(_NUMBER.findall(title)))
        if bucket is None:
            return None
        titles, indices = bucket
        # Earliest (best-scored) similar story wins; rapidfuzz scans the titles in C.
        hits = process.extract(title, titles, scorer=fuzz.ratio, score_cutoff=TITLE_SIMILARITY, limit=None)
        for i in sorted(indices[k] for _, _, k in hits):
            if _similar(self.stories[i], title, summary):
                return self.stories[i]
        return None

    def add(self, story: _Story) -> None:
        if story.link is not None:
            self.by_link.setdefault(story.link, len(self.stories))
        titles, indices = self.by_numbers.setdefault(tuple(_NUMBER.findall(story.title)), ([], []))
        titles.append(story.title)
        indices.append(len(self.stories))
        self.stories.append(story)


def group_stories(items: Sequence[DigestItem], profiles: Sequence[str] = ()) -> list[DigestItem]:
    """Collapse duplicates within each profile; highest score first within a profile.

    Profiles come out in the order of ``profiles``, then any others in order of first
    appearance. Grouping an already grouped list returns it unchanged.
    """
    order = {p: i for i, p in enumerate(dict.fromkeys([*profiles, *(it.profile for it in items)]))}
    ranked = sorted(items, key=lambda it: (order[it.profile], -it.score, it.match_id))
    groups: dict[str, _Profile] = {}
    for item in ranked:
        link, title, summary = link_key(item.link), _norm_text(item.title), _norm_text(item.excerpt)
        group = groups.setdefault(item.profile, _Profile())
        # Compare with each story's lead only: grouping stays predictable (no chains of
        # "similar to something similar") and idempotent.
        home = group.find(link, title, summary)
        if home is None:
            group.add(_Story(item, link, title, summary, list(item.also), list(item.extra_match_ids)))
            continue
        for pair in ((item.source or "", item.link), *item.also):
            if pair not in home.also:
                home.also.append(pair)
        home.extra.extend((item.match_id, *item.extra_match_ids))
    return [
        dataclasses.replace(s.lead, also=tuple(s.also), extra_match_ids=tuple(s.extra))
        for group in groups.values()
        for s in group.stories
    ]


def grouped(digest: Digest) -> Digest:
    """The digest with its items grouped into stories; every renderer works from this."""
    try:
        return _grouped_cached(digest)
    except TypeError:  # a list where a tuple was promised makes the value unhashable: skip the cache
        return _group(digest)


def _group(digest: Digest) -> Digest:
    return dataclasses.replace(digest, items=tuple(group_stories(digest.items, digest.profiles)))


# build_email renders subject, text and HTML from one digest: group it once, not three times.
_grouped_cached = lru_cache(maxsize=16)(_group)
