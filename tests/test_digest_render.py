"""Pure digest rendering: grouping, subject, text/HTML, email, webhook bodies, signatures."""

from __future__ import annotations

import email
import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from watcher.deliver.webhook import encode_body
from watcher.digest import (
    build_email,
    group_stories,
    render_html,
    render_text,
    sign,
    subject,
    verify,
    webhook_bodies,
)
from watcher.digest.text import excerpt, one_line, safe_link
from watcher.digest.webhook import (
    DISCORD_CONTENT_CHARS,
    DISCORD_DESCRIPTION_CHARS,
    DISCORD_MAX_EMBEDS,
    DISCORD_TITLE_CHARS,
    DISCORD_TOTAL_CHARS,
    SLACK_HEADER_CHARS,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_CHARS,
)
from watcher.values import Digest, DigestItem

T0 = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
SUMMARY = (
    "The UN special envoy met Khalifa Haftar in Benghazi on Tuesday to discuss a timetable for "
    "national elections and the unification of the country's rival governments."
)


VOCAB = [
    "tripoli",
    "benghazi",
    "misrata",
    "sirte",
    "envoy",
    "parliament",
    "oil",
    "ceasefire",
    "militia",
    "election",
    "budget",
    "port",
    "migrants",
    "coastguard",
    "court",
    "bank",
    "governor",
    "talks",
    "summit",
    "tribe",
    "border",
    "drone",
    "embassy",
    "minister",
]


def words(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def item(match_id: int, **kw: object) -> DigestItem:
    base: dict[str, object] = {
        "match_id": match_id,
        "profile": "libya",
        "title": f"{words(match_id, 7).capitalize()} ({match_id})",
        "link": f"https://news{match_id}.example/story/{match_id}",
        "source": f"Outlet {match_id}",
        "published": T0 - timedelta(minutes=match_id),
        "excerpt": words(-match_id, 30),
        "score": 1.0 + match_id / 100,
        "terms": ("libya", "tripoli"),
    }
    base.update(kw)
    return DigestItem(**base)  # type: ignore[arg-type]


def digest_of(*items: DigestItem, profiles: tuple[str, ...] = ("libya",), key: str = "libya-k1") -> Digest:
    return Digest(name="libya-daily", key=key, created=T0, items=tuple(items), profiles=profiles)


HOSTILE = item(
    66,
    title='<img src=x onerror="alert(1)">Pwned\r\nBcc: evil@x',
    link="javascript:alert(document.cookie)",
    source="Evil <script>alert(2)</script>Feed",
    excerpt='<script>alert("x")</script><a href="javascript:alert(3)" onclick="steal()">click</a> & more',
    terms=("<b>term</b>",),
    also=(("Mirror", "javascript:alert(4)"), ("Safe mirror", "https://safe.example/a")),
)


# --- grouping -------------------------------------------------------------------------------------


def test_same_link_from_two_feeds_is_one_story_led_by_the_best_score() -> None:
    a = item(1, link="https://example.com/a", source="Reuters", score=2.0)
    b = item(2, link="http://www.example.com/a/", source="Yahoo News", score=3.0, title="Other words")
    out = group_stories([a, b])
    assert len(out) == 1
    assert out[0].match_id == 2  # the higher score leads
    assert out[0].also == (("Reuters", "https://example.com/a"),)
    assert out[0].extra_match_ids == (1,)


def test_near_identical_wire_copy_groups_and_distinct_stories_do_not() -> None:
    a = item(1, title="UN envoy meets Haftar in Benghazi", excerpt=SUMMARY, score=3.0, source="AP")
    b = item(
        2,
        title="UN Envoy Meets Haftar in Benghazi.",
        excerpt=SUMMARY.replace("Tuesday", "Tuesday,") + " More follows.",
        score=2.5,
        source="ABC News",
    )
    c = item(3, title="UN envoy meets Dbeibah in Tripoli", excerpt="Talks on the budget.", score=2.0)
    out = group_stories([c, b, a])
    assert [it.match_id for it in out] == [1, 3]
    assert out[0].also == (("ABC News", b.link),)
    assert out[0].extra_match_ids == (2,)
    assert out[1].also == ()


def test_grouping_stays_within_a_profile_and_orders_profiles_then_scores() -> None:
    a = item(1, profile="sahel", link="https://x.example/same", score=5.0)
    b = item(2, profile="libya", link="https://x.example/same", score=1.0)
    c = item(3, profile="libya", score=4.0)
    out = group_stories([a, b, c], profiles=("libya", "sahel"))
    assert [(it.profile, it.match_id) for it in out] == [("libya", 3), ("libya", 2), ("sahel", 1)]
    assert all(it.also == () for it in out)


def test_grouping_is_idempotent() -> None:
    items = [
        item(1, link="https://a.example/x", score=2.0),
        item(2, link="https://a.example/x", score=1.0),
        item(3),
    ]
    once = group_stories(items)
    assert group_stories(once) == once


# --- text helpers ---------------------------------------------------------------------------------


def test_excerpt_is_plain_short_and_cut_at_a_word() -> None:
    text = excerpt("<p>Hello <b>world</b> &amp; friends</p> " + "word " * 200)
    assert text.startswith("Hello world & friends")
    assert len(text) <= 300
    assert text.endswith("…") and not text[:-1].endswith("wor")


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", " data:text/html,x", "/relative", "https://a b"]
)
def test_unsafe_links_are_dropped(link: str) -> None:
    assert safe_link(link) is None


def test_one_line_strips_every_control_character() -> None:
    assert one_line("a\r\nBcc: x\x00\x1b[31m\u2028b\tc") == "a Bcc: x [31m b c"


# --- subject, text, HTML --------------------------------------------------------------------------


def test_subject_counts_stories_and_names_profiles() -> None:
    d = digest_of(*(item(i) for i in range(1, 8)))
    assert subject(d) == "[watcher] 7 new items for libya"
    d2 = digest_of(item(1), profiles=("libya", "sahel"))
    assert subject(d2, prefix="[news]") == "[news] 1 new item for libya, sahel"
    assert subject(digest_of()) == "[watcher] No new items for libya"


def test_subject_never_carries_control_characters() -> None:
    d = replace(digest_of(HOSTILE), profiles=("li\r\nbya",))
    s = subject(d, prefix="[x]\r\nBcc: evil@x")
    assert not re.search(r"[\x00-\x1f\x7f]", s)


def test_text_and_html_name_every_item_by_its_link_grouped_by_profile() -> None:
    items = [item(i, profile="libya" if i % 2 else "sahel") for i in range(1, 7)]
    d = digest_of(*items, profiles=("sahel", "libya"))
    text, html = render_text(d), render_html(d)
    for it in items:
        assert it.link in text
        assert f'href="{it.link}"' in html
    assert text.index("== sahel") < text.index("== libya")
    assert html.index(">sahel <") < html.index(">libya <")
    assert "Tue 14 May 2024, 09:29 UTC" in text  # readable UTC time
    assert "<script" not in html and "http-equiv" not in html and "src=" not in html


def test_duplicates_show_as_also_reported_by() -> None:
    a = item(1, link="https://example.com/a", source="Reuters", score=2.0)
    b = item(2, link="https://example.com/a?", source="Al Jazeera", score=1.0)
    c = item(3, title=a.title, excerpt=a.excerpt, link="https://libyaobserver.example/a", source="Observer")
    d = digest_of(a, b, c)
    text, html = render_text(d), render_html(d)
    assert "Also reported by" in text and "Also reported by" in html
    assert 'href="https://libyaobserver.example/a"' in html and ">Observer</a>" in html
    assert subject(d) == "[watcher] 1 new item for libya"


def test_hostile_item_is_sanitized_everywhere() -> None:
    d = digest_of(HOSTILE, item(1))
    html = render_html(d)
    lowered = html.lower()
    assert "<script" not in lowered
    assert "onerror" not in lowered and "onclick" not in lowered
    assert "javascript:" not in lowered
    assert "<img" not in lowered
    assert 'href="https://safe.example/a"' in html  # the safe duplicate link survives
    assert "Pwned" in html
    text = render_text(d)
    assert "javascript:" not in text.lower() and "<script" not in text.lower()
    for fmt in ("json", "slack", "discord"):
        raw = json.dumps(webhook_bodies(d, fmt)).lower()
        assert "javascript:" not in raw, fmt
        assert "<script" not in raw, fmt


def test_empty_digest_renders() -> None:
    d = digest_of()
    assert "No new items" in render_text(d)
    assert "No new items" in render_html(d)
    for fmt in ("json", "slack", "discord"):
        assert len(webhook_bodies(d, fmt)) == 1


# --- email ----------------------------------------------------------------------------------------


def _parse(msg: email.message.EmailMessage) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def test_email_has_both_parts_headers_and_every_link() -> None:
    items = [item(i) for i in range(1, 5)]
    msg = _parse(
        build_email(
            digest_of(*items),
            sender="watcher <w@news.example>",
            to=["a@x.example"],
            subject_prefix="[watcher]",
        )
    )
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    for it in items:
        assert it.link in plain.get_content()
        assert it.link in html.get_content()
    assert msg["Subject"] == "[watcher] 4 new items for libya"
    assert msg["X-Watcher-Digest"] == "libya-daily"
    assert msg["To"] == "a@x.example"
    assert msg["Date"] == "Tue, 14 May 2024 09:30:00 +0000"
    assert msg["Message-ID"].endswith("@news.example>")


def test_message_id_and_bytes_are_stable_for_the_same_key() -> None:
    d = digest_of(item(1), item(2))
    kw = {"sender": "w@news.example", "to": ["a@x.example"], "subject_prefix": "[w]"}
    one, two = build_email(d, **kw), build_email(d, **kw)  # type: ignore[arg-type]
    assert one["Message-ID"] == two["Message-ID"]
    assert one.as_bytes() == two.as_bytes()
    other = build_email(replace(d, key="libya-k2"), **kw)  # type: ignore[arg-type]
    assert other["Message-ID"] != one["Message-ID"]


def test_header_injection_is_impossible() -> None:
    d = replace(digest_of(HOSTILE), name="libya\r\nBcc: evil@x")
    raw = build_email(
        d, sender="w@x.example\r\nBcc: evil@x", to=["a@x.example\r\nBcc: evil@x"], subject_prefix="[w]\r\n"
    ).as_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", head, re.MULTILINE | re.IGNORECASE)
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]


def test_non_ascii_titles_survive_the_round_trip() -> None:
    it = item(1, title="Ghassan Salamé à Tripoli — المبعوث", source="Libya Al-Ahrar ليبيا")
    msg = _parse(build_email(digest_of(it), sender="w@x.example", to=["a@x.example"], subject_prefix="[w]"))
    assert "Ghassan Salamé à Tripoli — المبعوث" in msg.get_body(("plain",)).get_content()
    assert "Salamé" in msg.get_body(("html",)).get_content()


# --- webhook bodies -------------------------------------------------------------------------------


def test_generic_json_follows_the_documented_schema() -> None:
    a = item(1, link="https://example.com/a", score=2.0)
    b = item(2, link="https://example.com/a", source="Mirror", score=1.0)
    [body] = webhook_bodies(digest_of(a, b, item(3)), "json")
    assert set(body) == {"id", "digest", "created", "profiles", "items"}
    assert body["id"] == "libya-k1" and body["digest"] == "libya-daily"
    assert body["created"] == "2024-05-14T09:30:00Z" and body["profiles"] == ["libya"]
    first = body["items"][0]
    assert set(first) == {
        "match_id", "profile", "title", "link", "source", "published", "score", "terms", "excerpt", "also"
    }  # fmt: skip
    assert first["match_id"] == 1 and first["link"] == "https://example.com/a"
    assert first["also"] == [{"source": "Mirror", "link": "https://example.com/a"}]
    assert first["published"] == "2024-05-14T09:29:00Z"
    json.dumps(body)  # plain JSON types only


def _long_digest(n: int = 120) -> tuple[Digest, list[DigestItem]]:
    items = [
        item(
            i,
            title=f"{words(i, 60)} ({i})",
            excerpt=words(-i, 120),
            terms=tuple(f"term{j}" for j in range(12)),
            also=tuple((f"Mirror {j}", f"https://mirror{j}.example/{i}") for j in range(15)),
        )
        for i in range(1, n + 1)
    ]
    return digest_of(*items), items


def test_slack_bodies_respect_block_kit_limits_and_carry_every_link() -> None:
    d, items = _long_digest()
    bodies = webhook_bodies(d, "slack")
    assert len(bodies) > 1
    seen = ""
    for n, body in enumerate(bodies, 1):
        assert len(body["blocks"]) <= SLACK_MAX_BLOCKS
        assert f"part {n}/{len(bodies)}" in body["text"] and "libya-k1" in body["text"]
        for block in body["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SLACK_SECTION_CHARS
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= SLACK_HEADER_CHARS
        seen += json.dumps(body)
    for it in items:
        assert f"<{it.link}|" in seen


def test_discord_bodies_respect_embed_limits_and_carry_every_link() -> None:
    d, items = _long_digest()
    bodies = webhook_bodies(d, "discord")
    assert len(bodies) >= len(items) / DISCORD_MAX_EMBEDS
    urls = []
    for n, body in enumerate(bodies, 1):
        embeds = body["embeds"]
        assert 1 <= len(embeds) <= DISCORD_MAX_EMBEDS
        assert len(body["content"]) <= DISCORD_CONTENT_CHARS
        assert f"part {n}/{len(bodies)}" in body["content"] and "libya-k1" in body["content"]
        assert body["allowed_mentions"] == {"parse": []}
        total = 0
        for e in embeds:
            assert len(e["title"]) <= DISCORD_TITLE_CHARS
            assert len(e["description"]) <= DISCORD_DESCRIPTION_CHARS
            total += (
                len(e["title"]) + len(e["description"]) + len(e["footer"]["text"]) + len(e["author"]["name"])
            )
            urls.append(e["url"])
        assert total <= DISCORD_TOTAL_CHARS
    assert urls == [it.link for it in sorted(items, key=lambda it: -it.score)]  # score order, each once


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        webhook_bodies(digest_of(item(1)), "teams")  # type: ignore[arg-type]


# --- signatures -----------------------------------------------------------------------------------


def test_signature_verifies_and_tampering_or_replay_fails() -> None:
    body = encode_body(webhook_bodies(digest_of(item(1)), "json")[0])
    sig = sign(body, b"s3cret", 1_700_000_000)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(body, b"s3cret", 1_700_000_000, sig, now=1_700_000_100)
    assert verify(body, b"s3cret", "1700000000", sig, now=1_700_000_100)  # raw header value
    assert not verify(body.replace(b"libya", b"libyb"), b"s3cret", 1_700_000_000, sig, now=1_700_000_100)
    assert not verify(body, b"other", 1_700_000_000, sig, now=1_700_000_100)
    assert not verify(body, b"s3cret", 1_700_000_001, sig, now=1_700_000_100)  # timestamp is signed
    assert not verify(body, b"s3cret", 1_700_000_000, sig, now=1_700_000_301)  # stale: replay
    assert not verify(body, b"s3cret", "soon", sig, now=1_700_000_100)
    assert not verify(body, b"s3cret", 1_700_000_000, "sha256=é", now=1_700_000_100)


def test_titles_that_differ_in_a_number_are_different_stories() -> None:
    from datetime import UTC, datetime

    from watcher.digest import group_stories
    from watcher.values import DigestItem

    def item(i: int, title: str, link: str) -> DigestItem:
        return DigestItem(i, "p", title, link, "S", datetime(2026, 11, 25, tzinfo=UTC), "", 3.0 - i / 10, ())

    grouped = group_stories(
        [
            item(1, "Libya ceasefire talks, day 1", "https://a.example/1"),
            item(2, "Libya ceasefire talks, day 12", "https://b.example/12"),
            item(3, "Libya ceasefire talks: day 1", "https://c.example/1"),
        ]
    )
    assert [(g.match_id, g.extra_match_ids) for g in grouped] == [(1, (3,)), (2, ())]


def test_grouping_finds_what_comparing_with_every_story_finds() -> None:
    """Titles are compared only with stories that carry the same numbers: the same stories as a full scan."""
    import dataclasses

    from rapidfuzz import fuzz

    from watcher.digest import group
    from watcher.digest.text import plain_text

    rng = random.Random(7)
    items = []
    for k in range(1, 400):
        base = rng.randrange(1, 60)  # ~60 stories, each told many ways
        title = words(base, 7).capitalize()
        variants = [title, title + "!", title.replace(" ", "  ", 1), title[:-2], title + f" {base % 3}"]
        title = rng.choice(variants)
        if rng.random() < 0.3:
            title += f" {rng.choice(['2024', '12', '3'])}"
        excerpt = rng.choice([words(-base, 30), words(-base, 30)[:-5], "", words(k, 30)])
        link = f"https://n{rng.randrange(3)}.example/{base}/{rng.randrange(4)}"
        items.append(item(k, title=title, excerpt=excerpt, link=link, profile=rng.choice(["libya", "sahel"])))

    def full_scan(items: list[DigestItem]) -> list[DigestItem]:
        order = {p: i for i, p in enumerate(dict.fromkeys(it.profile for it in items))}
        stories: dict[str, list[group._Story]] = {}
        for it in sorted(items, key=lambda it: (order[it.profile], -it.score, it.match_id)):
            norm = [
                group._NON_WORD.sub(" ", plain_text(v).casefold()).strip() for v in (it.title, it.excerpt)
            ]
            link, title, summary = group.link_key(it.link), *norm
            mine = stories.setdefault(it.profile, [])
            same_link = (s for s in mine if link is not None and s.link == link)
            similar = (
                s for s in mine if fuzz.ratio(title, s.title) >= 90 and group._similar(s, title, summary)
            )
            home = next(same_link, None) or next(similar, None)
            if home is None:
                mine.append(group._Story(it, link, title, summary, list(it.also), list(it.extra_match_ids)))
                continue
            for pair in ((it.source or "", it.link), *it.also):
                if pair not in home.also:
                    home.also.append(pair)
            home.extra.extend((it.match_id, *it.extra_match_ids))
        return [
            dataclasses.replace(s.lead, also=tuple(s.also), extra_match_ids=tuple(s.extra))
            for mine in stories.values()
            for s in mine
        ]

    grouped = group_stories(items)
    assert grouped == full_scan(items)
    assert 60 <= len(grouped) < 300  # copies were folded, distinct stories kept apart
