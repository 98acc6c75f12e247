"""The web side against the real server on 127.0.0.1 (uvicorn in a thread) and a real database.

Feedback links come from a digest rendered the way a send renders it; a mail scanner's GETs
and HEADs record nothing; only the page's POST form does. Tampered links answer 4xx. Every
form needs its CSRF token. Feed text is escaped everywhere.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import timedelta

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from tests.webside import FEEDBACK_LINK, NOW, SECRET, Story, csrf_of, free_port, seed, serving, web_settings
from watcher.config import ConfigError, DigestSettings, WebSettings
from watcher.digest import build_email, render_html, render_text, webhook_bodies
from watcher.store import make_engine, open_store
from watcher.store.feedback import list_verdicts, verdicts_for
from watcher.store.outbox import preview_digest
from watcher.web.security import check_listen
from watcher.web.tokens import FeedbackSigner

STORIES = [
    Story(
        "berlin",
        "Foreign ministers meet in Berlin on Libya's stalled election roadmap",
        "Envoys urged rivals.",
    ),
    Story(
        "sirte", "Libya's 5+5 commission agrees plan to withdraw mercenaries", "The JMC met in Sirte.", 7.5
    ),
    Story("tripoli-lb", "Clashes in Tripoli, northern Lebanon", "Gunmen fought in the port city.", 2.1),
]


@pytest.fixture
def web_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_WEB_SECRET", SECRET)
    monkeypatch.delenv("WATCHER_WEB_PASSWORD", raising=False)


def digest_links(engine, settings) -> dict[str, list[str]]:
    """Every feedback link in every format of the next digest, as a send would render it."""
    d = DigestSettings(name="mail", profiles=["libya"], channel="email", to=["a@news.example"])
    links = FeedbackSigner(SECRET).links(settings.web.url)
    digest = preview_digest(engine, d, NOW).with_feedback(links)
    mail = build_email(digest, sender="w@news.example", to=d.to, subject_prefix="[w]")
    formats = {
        "html": render_html(digest),
        "text": render_text(digest),
        # What a mail client shows: the decoded text and HTML parts of the real message.
        **{f"email {p.get_content_subtype()}": p.get_content() for p in mail.walk() if not p.is_multipart()},
        **{fmt: json.dumps(webhook_bodies(digest, fmt)) for fmt in ("json", "slack", "discord")},
    }
    return {name: FEEDBACK_LINK.findall(body) for name, body in formats.items()}


def test_scanner_gets_record_nothing_and_the_form_records_once(db_url: str, web_env: None) -> None:
    settings = web_settings(db_url)
    engine = open_store(db_url)
    ids = seed(engine, STORIES)
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        found = digest_links(engine, settings)
        for fmt, links in found.items():
            # Two links per story (relevant, not relevant), under base_url.
            assert len(set(links)) == 2 * len(STORIES), fmt
            assert all(link.startswith(base + "/feedback/") for link in links), fmt
        every = sorted({link for links in found.values() for link in links})
        # A mail security scanner fetches every link, with GET and HEAD, following redirects.
        for link in every:
            assert http.get(link, follow_redirects=True).status_code == 200
            assert http.head(link).status_code == 200
        assert verdicts_for(engine, ids.values()) == {}

        signer = FeedbackSigner(SECRET)
        nay = f"{base}/feedback/{signer.token(ids['tripoli-lb'], 'not_relevant')}"
        assert nay in every
        page = http.get(nay)
        assert "Is this item on the story?" in page.text and "Clashes in Tripoli" in page.text
        assert "Mark as not relevant" in page.text
        posted = http.post(nay, data={"note": "Lebanon, not Libya"})
        assert posted.status_code == 303 and posted.headers["location"].endswith(nay.removeprefix(base))
        assert verdicts_for(engine, [ids["tripoli-lb"]]) == {ids["tripoli-lb"]: "not_relevant"}
        confirmed = http.get(nay)
        assert "Recorded: not relevant" in confirmed.text and "Lebanon, not Libya" in confirmed.text

        # The same POST again changes nothing; the other verdict replaces the first.
        http.post(nay, data={"note": "Lebanon, not Libya"})
        assert len(list_verdicts(engine)) == 1
        yea = f"{base}/feedback/{signer.token(ids['tripoli-lb'], 'relevant')}"
        assert http.post(yea, data={}).status_code == 303
        (v,) = list_verdicts(engine)
        assert (v.match_id, v.verdict, v.note, v.via) == (ids["tripoli-lb"], "relevant", None, "web")
    engine.dispose()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_forged_or_tampered_links_answer_4xx_and_record_nothing(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    ids = seed(engine, STORIES)
    signer = FeedbackSigner(SECRET)
    good = signer.token(ids["berlin"], "relevant")
    payload, sig = good.split(".")
    forged = {
        "flipped signature": f"{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}",
        "another item, same signature": f"{_b64(json.dumps([ids['sirte'], 'r']).encode())}.{sig}",
        "other verdict, same signature": f"{_b64(json.dumps([ids['berlin'], 'n']).encode())}.{sig}",
        "wrong secret": URLSafeSerializer("not-the-secret-0123456789", salt="watcher.feedback.v1").dumps(
            [ids["berlin"], "r"]
        ),
        "no signature": payload,
        "garbage": "not-a-token",
        "cut short": good[:-5],
    }
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        assert http.get(f"{base}/feedback/{good}").status_code == 200
        for what, token in forged.items():
            for method in ("GET", "POST"):
                r = http.request(method, f"{base}/feedback/{token}", data={} if method == "POST" else None)
                assert 400 <= r.status_code < 500, (what, method, r.status_code)
                assert "not valid" in r.text, what
        # A well-signed token for an item that is not stored (pruned, say): 404, nothing recorded.
        gone = signer.token(99_999, "relevant")
        assert http.post(f"{base}/feedback/{gone}", data={}).status_code == 404
    assert verdicts_for(engine, ids.values()) == {}
    engine.dispose()


def test_every_form_needs_its_csrf_token(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    ids = seed(engine, STORIES)
    mid = ids["sirte"]
    with serving(settings, engine) as base:
        # A cross-site form post: no cookie, no token (a loopback service has no login to ride on).
        with httpx.Client(timeout=10) as stranger:
            r = stranger.post(f"{base}/matches/{mid}/verdict", data={"verdict": "not_relevant"})
            assert r.status_code == 403 and "CSRF" in r.text
            r = stranger.post(f"{base}/profiles/libya/backtest", data={"profile": "threshold = 9"})
            assert r.status_code == 403
        with httpx.Client(timeout=10) as browser:
            page = browser.get(f"{base}/matches")
            token = csrf_of(page.text)
            assert "csrftoken" in browser.cookies
            # A cookie but a wrong (or another session's) token in the form.
            bad = browser.post(
                f"{base}/matches/{mid}/verdict", data={"verdict": "relevant", "csrftoken": "x"}
            )
            assert bad.status_code == 403
            assert verdicts_for(engine, [mid]) == {}
            ok = browser.post(
                f"{base}/matches/{mid}/verdict",
                data={"verdict": "relevant", "csrftoken": token, "next": "//evil.example/"},
            )
            assert ok.status_code == 303 and ok.headers["location"] == "/matches"  # no open redirect
            assert verdicts_for(engine, [mid]) == {mid: "relevant"}
            shown = browser.get(f"{base}/matches?verdict=relevant").text
            assert 'data-verdict="relevant"' in shown and "5+5 commission" in shown
    engine.dispose()


def test_feed_text_is_escaped_on_every_page(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> Libya talks'
    ids = seed(
        engine,
        [Story("evil", evil, "<b>bold</b> & <iframe src=//x>", link="javascript:alert(1)")],
    )
    (match_id,) = ids.values()
    token = FeedbackSigner(SECRET).token(match_id, "relevant")
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        for path in ("/matches", f"/feedback/{token}", "/profiles/libya?threshold=100"):
            body = http.get(base + path).text
            assert "<script>alert" not in body and "<img src=x" not in body and "<iframe" not in body, path
            assert "&lt;script&gt;" in body, path
            assert 'href="javascript:' not in body, path
        data = http.get(f"{base}/matches.json").json()
        assert data["matches"][0]["title"] == evil  # JSON carries the text as it is, for programs
    engine.dispose()


def test_pages_answer_as_json_with_filters_and_precision(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    stories = [
        *STORIES,
        Story("old", "Libya's parliament rejects the budget", "Tobruk vote.", 4.0, days_ago=3),
    ]
    ids = seed(engine, stories)
    signer = FeedbackSigner(SECRET)
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        for slug, verdict in (("berlin", "relevant"), ("sirte", "relevant"), ("tripoli-lb", "not_relevant")):
            assert http.post(f"{base}/feedback/{signer.token(ids[slug], verdict)}").status_code == 303

        every = http.get(f"{base}/matches.json").json()["matches"]
        assert {m["id"] for m in every} == set(ids.values())
        assert all(m["why"] and m["feed"].endswith("/feed.xml") for m in every)
        today = http.get(f"{base}/matches.json", params={"day": NOW.date().isoformat()}).json()["matches"]
        assert {m["id"] for m in today} == {ids["berlin"], ids["sirte"], ids["tripoli-lb"]}
        old_day = (NOW - timedelta(days=3)).date().isoformat()
        assert [
            m["id"] for m in http.get(f"{base}/matches.json", params={"day": old_day}).json()["matches"]
        ] == [ids["old"]]
        nays = http.get(f"{base}/matches.json", params={"verdict": "not_relevant"}).json()["matches"]
        assert [m["id"] for m in nays] == [ids["tripoli-lb"]]
        unjudged = http.get(f"{base}/matches.json", params={"verdict": "none"}).json()["matches"]
        assert [m["id"] for m in unjudged] == [ids["old"]]
        assert http.get(f"{base}/matches.json", params={"profile": "other"}).json()["matches"] == []
        assert http.get(f"{base}/matches.json", params={"day": "yesterday"}).status_code == 400

        (libya,) = http.get(f"{base}/profiles.json").json()["profiles"]
        assert (libya["judged"], libya["relevant"], libya["matches"]) == (3, 2, 4)
        assert libya["precision"] == pytest.approx(2 / 3)
        feeds = http.get(f"{base}/feeds.json").json()["feeds"]
        assert [(f["name"], f["entries"]) for f in feeds] == [("Test Wire", 4)]
        assert http.get(f"{base}/digests.json").json() == {"digests": [], "runs": []}
        for page in ("/matches", "/feeds", "/digests", "/profiles", "/profiles/libya"):
            r = http.get(base + page)
            assert r.status_code == 200 and 'name="viewport"' in r.text, page
        assert http.get(f"{base}/profiles/nope").status_code == 404
        assert http.get(f"{base}/").headers.get("location") == "/matches"
    engine.dispose()


def test_profile_backtest_by_threshold_and_by_pasted_profile(tmp_path, web_env: None) -> None:
    """The stored items re-scored: a higher threshold drops every item, an exclusion drops the floods."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    floods = Story("derna", "Heavy rain floods Derna in eastern Libya", "Residents of the Libyan city fled.")
    ids = seed(engine, [*STORIES, floods])
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        yea = FeedbackSigner(SECRET).token(ids["sirte"], "relevant")
        nay = FeedbackSigner(SECRET).token(ids["tripoli-lb"], "not_relevant")
        http.post(f"{base}/feedback/{yea}")
        http.post(f"{base}/feedback/{nay}")
        now = http.get(f"{base}/profiles/libya.json").json()
        assert now["backtest"] is None and now["profile"]["precision"] == 0.5

        # Nothing changes at the profile's own threshold; a huge one drops every match.
        spec = settings.profiles["libya"]
        same = http.get(f"{base}/profiles/libya.json", params={"threshold": spec.threshold}).json()[
            "backtest"
        ]
        assert same["added_total"] == same["dropped_total"] == 0
        assert same["matched_before"] == same["matched_after"]
        high = http.get(f"{base}/profiles/libya.json", params={"threshold": 500}).json()["backtest"]
        assert high["matched_after"] == 0 and high["dropped_total"] == high["matched_before"] > 0
        assert high["verdicts_after"]["matched"] == 0
        assert http.get(f"{base}/profiles/libya.json", params={"threshold": "-1"}).status_code == 400

        page = http.get(f"{base}/profiles/libya")
        pasted = re.search(r'<textarea id="profile"[^>]*>(.*?)</textarea>', page.text, re.S)
        assert pasted
        text = html.unescape(pasted.group(1)).replace("exclude = []", 'exclude = ["floods"]')
        r = http.post(
            f"{base}/profiles/libya/backtest", data={"profile": text, "csrftoken": csrf_of(page.text)}
        )
        assert r.status_code == 200, r.text[:500]
        dropped = r.text.split("Would be dropped")[1]
        assert "Heavy rain floods Derna" in dropped and "5+5 commission" not in dropped
        assert "Backtest: the pasted profile" in r.text

        broken = http.post(
            f"{base}/profiles/libya/backtest",
            data={"profile": "threshold = [", "csrftoken": csrf_of(page.text)},
        )
        assert broken.status_code == 400 and "not valid TOML" in broken.text
    engine.dispose()


def test_security_headers_and_foreign_host(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    ids = seed(engine, STORIES)
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        token = FeedbackSigner(SECRET).token(ids["berlin"], "relevant")
        r = http.get(f"{base}/feedback/{token}")
        # The token must not leak to the news sites the page links to, nor be framed or cached.
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        # A page reached through a DNS-rebinding name is refused.
        assert http.get(f"{base}/matches", headers={"host": "attacker.example"}).status_code == 400
        assert http.get(f"{base}/static/watcher.css").status_code == 200
    engine.dispose()


def test_password_puts_pages_behind_basic_auth_but_not_feedback(
    tmp_path, web_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHER_WEB_PASSWORD", "correct horse battery")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    ids = seed(engine, STORIES)
    with serving(settings, engine) as base, httpx.Client(timeout=10) as http:
        assert http.get(f"{base}/matches").status_code == 401
        assert http.get(f"{base}/metrics").status_code == 401
        assert http.get(f"{base}/matches", auth=("watcher", "wrong")).status_code == 401
        assert http.get(f"{base}/matches", auth=("someone", "correct horse battery")).status_code == 401
        assert http.get(f"{base}/matches", auth=("watcher", "correct horse battery")).status_code == 200
        # The feedback link is its own authorization: a reader of the mail needs no password.
        token = FeedbackSigner(SECRET).token(ids["berlin"], "relevant")
        assert http.get(f"{base}/feedback/{token}").status_code == 200
        assert http.post(f"{base}/feedback/{token}").status_code == 303
        assert http.get(f"{base}/healthz").status_code == 200
    engine.dispose()


def test_listen_beyond_loopback_needs_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_WEB_PASSWORD", raising=False)
    for listen in ("0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"):
        web = WebSettings(listen=listen, base_url="https://watcher.example")
        with pytest.raises(ConfigError, match="WATCHER_WEB_PASSWORD"):
            check_listen(web)
    for listen in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "8080"):
        assert check_listen(WebSettings(listen=listen))[1] == 8080
    monkeypatch.setenv("WATCHER_WEB_PASSWORD", "s3cret-enough")
    assert check_listen(WebSettings(listen="0.0.0.0:8080", base_url="https://w.example")) == ("0.0.0.0", 8080)


def test_healthz_follows_the_scheduler_and_the_database(tmp_path, web_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    settings = web_settings(url)
    engine = open_store(url)
    problem: list[str | None] = [None]
    with (
        serving(settings, engine, scheduler_problem=lambda: problem[0]) as base,
        httpx.Client(timeout=10) as http,
    ):
        r = http.get(f"{base}/healthz")
        assert r.status_code == 200 and r.json()["scheduler"] == "running"
        problem[0] = "the scheduler is not running"
        r = http.get(f"{base}/healthz")
        assert r.status_code == 503 and r.json()["problems"] == ["the scheduler is not running"]

    # `watcher web` (no scheduler here): healthy while no due feed waits long unclaimed.
    seed(engine, STORIES)  # one feed, due at NOW
    clock = [NOW + timedelta(minutes=5)]
    with (
        serving(settings, engine, scheduler_problem=None, clock=lambda: clock[0]) as base,
        httpx.Client(timeout=10) as http,
    ):
        assert http.get(f"{base}/healthz").json()["scheduler"] == "elsewhere"
        clock[0] = NOW + timedelta(hours=2)
        r = http.get(f"{base}/healthz")
        assert r.status_code == 503 and "no worker is polling" in r.json()["problems"][0]

    # The database does not answer: 503, and the page says so without the connection details.
    down = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    with serving(settings, down) as base, httpx.Client(timeout=10) as http:
        r = http.get(f"{base}/healthz")
        assert r.status_code == 503 and r.json()["database"] == "down"
        assert "127.0.0.1" not in r.text
    engine.dispose()
