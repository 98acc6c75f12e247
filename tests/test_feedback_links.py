"""Feedback links in digests (pure rendering) and the tokens behind them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.webside import FEEDBACK_LINK
from watcher.config import ConfigError, Settings, WebSettings
from watcher.digest import build_email, render_html, render_text, webhook_bodies
from watcher.digest.webhook import DISCORD_DESCRIPTION_CHARS, SLACK_SECTION_CHARS
from watcher.values import Digest, DigestItem
from watcher.web.tokens import BadToken, FeedbackSigner, link_maker

SECRET = "unit-test-secret-0123456789"
BASE = "https://watcher.news.example/w"
START = datetime(2026, 11, 20, 8, tzinfo=UTC)


def make_item(match_id: int, **kw: object) -> DigestItem:
    values: dict[str, object] = {
        "match_id": match_id,
        "profile": "libya",
        "title": f"Libya talks, round {match_id}",
        "link": f"https://news.example/{match_id}",
        "source": "Wire",
        "published": START + timedelta(hours=match_id),
        "excerpt": "Envoys met in Berlin.",
        "score": 3.0 + match_id,
        "terms": ("libya", "berlin"),
    }
    values.update(kw)
    return DigestItem(**values)  # type: ignore[arg-type]


def digest(*items: DigestItem) -> Digest:
    return Digest("desk", "desk-k1", START, items, ("libya",))


def every_format(d: Digest) -> dict[str, str]:
    mail = build_email(d, sender="w@news.example", to=["a@news.example"], subject_prefix="[w]")
    return {
        "html": render_html(d),
        "text": render_text(d),
        **{f"mail {p.get_content_subtype()}": p.get_content() for p in mail.walk() if not p.is_multipart()},
        **{fmt: json.dumps(webhook_bodies(d, fmt)) for fmt in ("json", "slack", "discord")},
    }


def test_every_item_of_every_format_carries_both_links() -> None:
    signer = FeedbackSigner(SECRET)
    d = digest(make_item(1), make_item(2), make_item(3)).with_feedback(signer.links(BASE))
    for fmt, body in every_format(d).items():
        links = FEEDBACK_LINK.findall(body)
        assert len(set(links)) == 6, fmt
        read = sorted(signer.read(link.removeprefix(f"{BASE}/feedback/")) for link in set(links))
        assert read == [(m, v) for m in (1, 2, 3) for v in ("not_relevant", "relevant")], fmt
    (body,) = webhook_bodies(d, "json")
    first = body["items"][0]
    assert first["feedback"]["relevant"].startswith(f"{BASE}/feedback/")


def test_without_the_web_side_digests_carry_no_feedback_links() -> None:
    d = digest(make_item(1), make_item(2))
    assert d.with_feedback(None) is d
    for fmt, body in every_format(d).items():
        assert "/feedback/" not in body and "Not relevant" not in body and "Relevant" not in body, fmt
    assert "feedback" not in webhook_bodies(d, "json")[0]["items"][0]
    assert link_maker(Settings()) is None


def test_links_survive_the_chat_size_limits() -> None:
    long = " ".join(["mercenaries"] * 2000)
    others = tuple((f"Outlet {i}", f"https://o{i}.example/{'x' * 150}") for i in range(12))
    d = digest(make_item(1, excerpt=long, also=others)).with_feedback(FeedbackSigner(SECRET).links(BASE))
    (slack,) = webhook_bodies(d, "slack")
    # Feed text sits in plain_text sections; the feedback links in the item's context block (mrkdwn).
    assert all(
        len(b["text"]["text"]) <= SLACK_SECTION_CHARS for b in slack["blocks"] if b["type"] == "section"
    )
    context = [e["text"] for b in slack["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any(re.search(r"\|Relevant> · <[^>]+\|Not relevant>$", t) for t in context)
    (discord,) = webhook_bodies(d, "discord")
    desc = discord["embeds"][0]["description"]
    assert len(desc) <= DISCORD_DESCRIPTION_CHARS and desc.endswith(")") and "[Not relevant](" in desc


def test_tokens_name_one_match_and_one_verdict() -> None:
    signer = FeedbackSigner(SECRET)
    token = signer.token(42, "not_relevant")
    assert signer.read(token) == (42, "not_relevant")
    assert signer.token(42, "not_relevant") == token  # stable: the same link in every format and resend
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token) and len(token) < 80
    with pytest.raises(BadToken):
        FeedbackSigner("another-secret-0123456789").read(token)
    for bad in ("", ".", "abc.def", token + "x", token.replace(".", "..")):
        with pytest.raises(BadToken):
            signer.read(bad)


def test_web_settings_need_a_secret_and_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_WEB_SECRET", raising=False)
    settings = Settings(web=WebSettings(base_url=BASE + "/"))
    with pytest.raises(ConfigError, match="WATCHER_WEB_SECRET"):
        link_maker(settings)
    monkeypatch.setenv("WATCHER_WEB_SECRET", "short")
    with pytest.raises(ConfigError, match="too short"):
        link_maker(settings)
    monkeypatch.setenv("WATCHER_WEB_SECRET", SECRET)
    make = link_maker(settings)
    assert make is not None and make(7).relevant.startswith(f"{BASE}/feedback/")
    assert WebSettings(listen="127.0.0.1:8081").url == "http://127.0.0.1:8081"
    with pytest.raises(ValueError, match="listen"):
        WebSettings()
    with pytest.raises(ValueError, match="base_url"):
        WebSettings(listen="0.0.0.0:8080")
    with pytest.raises(ValueError, match="HOST:PORT"):
        WebSettings(listen="somewhere")
    with pytest.raises(ValueError, match="http"):
        WebSettings(base_url="javascript:alert(1)")
