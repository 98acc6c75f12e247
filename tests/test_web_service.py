"""The web side as users run it: `watcher run` serving it beside the scheduler, `watcher web` alone.

Real parts only: feeds from a loopback HTTP server, the digest through a real SMTP server,
the web side on 127.0.0.1, and a real browser (Debian's chromium, driven by selenium) that
follows a digest's "not relevant" link. Screenshots of the pages go to ``docs/`` when
``WATCHER_SCREENSHOTS=docs`` is set.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import tomlkit
from feedgen.feed import FeedGenerator
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import IN_CI, REPO
from tests.feedserver import FeedServer
from tests.receivers import SmtpSink
from tests.webside import FEEDBACK_LINK, SECRET, free_port, shipped_profile
from watcher.web.tokens import FeedbackSigner

ITEMS = {
    "berlin": (
        "Foreign ministers meet in Berlin on Libya's stalled election roadmap",
        "Envoys from Germany, Turkey and Egypt urged Libyan rivals to agree a date for elections "
        "and to remove foreign forces and mercenaries, the UN mission said.",
    ),
    "jmc": (
        "Libya's 5+5 military commission agrees plan to withdraw mercenaries",
        "The Joint Military Commission met in Sirte to secure the ceasefire between the Government of "
        "National Unity in Tripoli and Haftar's Libyan National Army.",
    ),
    "covid": (
        "Libya launches booster drive as vaccination rates lag",
        "The health ministry in Tripoli opened clinics across the country for a new vaccination round.",
    ),
    "football": ("Bayern Munich beat Dortmund 3-1 in Berlin derby", "Goals in the second half settled it."),
}


def rss(base: str) -> bytes:
    fg = FeedGenerator()
    fg.title("Loopback Wire")
    fg.link(href=base)
    fg.description("test feed")
    start = datetime.now(UTC) - timedelta(hours=6)
    for i, (slug, (head, body)) in enumerate(ITEMS.items()):
        fe = fg.add_entry(order="append")
        fe.id(f"{base}/{slug}")
        fe.title(head)
        fe.link(href=f"{base}/{slug}")
        fe.description(body)
        fe.pubDate(start + timedelta(hours=i))
    return fg.rss_str()


def write_config(folder: Path, *, feed: str, smtp_port: int, web_port: int, **web: object) -> Path:
    cfg = {
        "database": {"url": f"sqlite:///{folder / 'watcher.db'}"},
        "polling": {"allow_private_networks": True, "tick": "1s", "interval": "5m"},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "watcher <watcher@news.example>"},
        "feeds": [{"url": feed}],
        "profiles": {"libya": shipped_profile().model_dump()},
        "digests": [{"name": "desk", "profiles": ["libya"], "channel": "email", "to": ["desk@news.example"]}],
        "web": {"listen": f"127.0.0.1:{web_port}", **web},
    }
    path = folder / "watcher.toml"
    path.write_text(tomlkit.dumps(cfg), encoding="utf-8")
    return path


def environment(config: Path, *, secret: str | None = SECRET, password: str | None = None) -> dict[str, str]:
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    for key in ("WATCHER_DATABASE_URL", "WATCHER_WEB_PASSWORD", "WATCHER_WEB_SECRET", "WATCHER_WEB_LISTEN"):
        env.pop(key, None)
    if secret:
        env["WATCHER_WEB_SECRET"] = secret
    if password:
        env["WATCHER_WEB_PASSWORD"] = password
    return env


def watcher(*args: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env,
        cwd=cwd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for(check, timeout: float, what: str, log: Path | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(
        f"timed out waiting for {what}\n" + (log.read_text(errors="replace")[-4000:] if log else "")
    )


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@dataclass
class Service:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    folder: Path
    sink: SmtpSink


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`watcher run` with [web] listen: it polls the feed, mails the digest and serves the pages."""
    folder = tmp_path_factory.mktemp("service")
    with FeedServer() as feeds, SmtpSink() as sink:
        feeds.route("/wire.xml", rss(feeds.url("/news")))
        port = free_port()
        config = write_config(folder, feed=feeds.url("/wire.xml"), smtp_port=sink.port, web_port=port)
        log = folder / "run.log"
        proc = watcher("run", env=environment(config), cwd=folder, log=log)
        svc = Service(f"http://127.0.0.1:{port}", port, proc, log, folder, sink)
        try:
            wait_for(lambda: sink.messages, 60, "the digest mail", log)
            wait_for(
                lambda: httpx.get(f"{svc.base}/healthz", timeout=5).status_code == 200, 30, "healthz", log
            )
            yield svc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_digest_mail_carries_two_feedback_links_per_item(service: Service) -> None:
    (mail,) = service.sink.messages
    msg = mail.message
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    items = text.count("\n   Not relevant: ")
    assert items >= 2  # the Libya items matched; the football one did not
    for body in (text, html):
        links = set(FEEDBACK_LINK.findall(body))
        assert len(links) == 2 * items
        assert all(link.startswith(f"{service.base}/feedback/") for link in links)
        verdicts = sorted(FeedbackSigner(SECRET).read(link.rsplit("/", 1)[1])[1] for link in links)
        assert verdicts == ["not_relevant"] * items + ["relevant"] * items


def test_metrics_after_a_cycle(service: Service) -> None:
    body = httpx.get(f"{service.base}/metrics", timeout=10)
    assert body.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.text)}
    assert families and all(name.startswith("watcher_") for name in families)

    def value(family: str, sample: str | None = None, **labels: str) -> float:
        for s in families[family].samples:
            if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError(f"no sample {family}{labels} in\n{body.text}")

    assert value("watcher_polls", "watcher_polls_total", status="ok") >= 1
    assert value("watcher_polls", "watcher_polls_total", status="error") == 0
    assert value("watcher_items_stored", "watcher_items_stored_total") == len(ITEMS)
    assert value("watcher_matches", "watcher_matches_total", profile="libya") >= 2
    assert (
        value(
            "watcher_digest_sends",
            "watcher_digest_sends_total",
            digest="desk",
            channel="email",
            status="sent",
        )
        == 1
    )
    assert value("watcher_cycle_duration_seconds", "watcher_cycle_duration_seconds_count") >= 1
    assert value("watcher_last_good_cycle_timestamp_seconds") > time.time() - 600
    assert value("watcher_scheduler_running") == 1
    assert value("watcher_database_up") == 1
    assert value("watcher_feeds", status="ok") == 1
    assert value("watcher_stored_items") == len(ITEMS)
    assert value("watcher_stored_matches", profile="libya") == value(
        "watcher_matches", "watcher_matches_total", profile="libya"
    )
    assert value("watcher_digest_runs", digest="desk", status="sent") == 1
    assert SECRET not in body.text and "desk@news.example" not in body.text


PHONE_WIDTH = 412


def _browser(profile_dir: Path):  # type: ignore[no-untyped-def]
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if IN_CI:
            pytest.fail("chromium and chromium-driver are required in CI (.ci/run installs them)")
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(shutil.which("chromedriver")), options=opts)
    # A phone: 412 CSS pixels wide, mobile viewport rules on.
    phone = {"width": PHONE_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    return driver


def _shot(driver, name: str, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot (to docs/ when WATCHER_SCREENSHOTS names it)."""
    target = Path(os.environ["WATCHER_SCREENSHOTS"]) if os.environ.get("WATCHER_SCREENSHOTS") else folder
    if not target.is_absolute():
        target = REPO / target
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    clip = {"x": 0, "y": 0, "width": PHONE_WIDTH, "height": min(height, 4000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
    (target / name).write_bytes(base64.b64decode(shot["data"]))


def test_browser_follows_not_relevant_confirms_and_sees_the_verdict(service: Service, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import presence_of_element_located
    from selenium.webdriver.support.wait import WebDriverWait

    (mail,) = service.sink.messages
    page = tmp_path / "digest.html"
    page.write_text(mail.message.get_body(("html",)).get_content(), encoding="utf-8")
    driver = _browser(tmp_path / "chromium")
    try:
        driver.set_page_load_timeout(30)
        driver.get(page.as_uri())  # the digest as a mail client shows it
        links = driver.find_elements(By.LINK_TEXT, "Not relevant")
        assert len(links) >= 2
        # Judge the last story (the weakest match): mark it not relevant.
        link = links[-1]
        match_id, verdict = FeedbackSigner(SECRET).read(link.get_attribute("href").rsplit("/", 1)[1])
        assert verdict == "not_relevant"
        link.click()
        # A click that navigates returns before the next page is there: wait for it, then look.
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.current_url.startswith(f"{service.base}/feedback/"))
        heading = wait.until(presence_of_element_located((By.TAG_NAME, "h1")))
        assert heading.text == "Is this item on the story?"
        # Opening the page recorded nothing.
        shown = httpx.get(f"{service.base}/matches.json", timeout=10).json()["matches"]
        assert {m["id"]: m["verdict"] for m in shown}[match_id] is None
        _shot(driver, "feedback-page.png", tmp_path)

        driver.find_element(By.ID, "note").send_keys("A health story, not the diplomacy we follow")
        driver.find_element(By.CSS_SELECTOR, "button.primary").click()
        notice = wait.until(presence_of_element_located((By.CSS_SELECTOR, ".notice.done"))).text
        assert notice.startswith("Recorded: not relevant.")

        driver.get(f"{service.base}/matches")
        card = driver.find_element(By.ID, f"match-{match_id}")
        badge = card.find_element(By.CSS_SELECTOR, "[data-verdict]")
        assert badge.get_attribute("data-verdict") == "not_relevant" and badge.text == "not relevant"
        assert "A health story" in card.text
        others = [
            e.get_attribute("data-verdict")
            for e in driver.find_elements(By.CSS_SELECTOR, "[data-verdict]")
            if e not in (badge,)
        ]
        assert others and set(others) == {"none"}  # only the judged item carries a verdict
        _shot(driver, "matches-page.png", tmp_path)
    finally:
        driver.quit()
    shown = httpx.get(f"{service.base}/matches.json", params={"verdict": "not_relevant"}, timeout=10).json()
    assert [(m["id"], m["note"]) for m in shown["matches"]] == [
        (match_id, "A health story, not the diplomacy we follow")
    ]


def test_sigterm_stops_scheduler_and_web_side_with_exit_0(service: Service) -> None:
    assert service.proc.poll() is None
    assert stop(service.proc) == 0, service.log.read_text()[-3000:]
    assert not port_open(service.port)
    assert "Traceback" not in service.log.read_text()


def test_watcher_web_alone_serves_and_stops_on_sigterm(service: Service, tmp_path: Path) -> None:
    """Beside workers (here: the service's database after it stopped), with no scheduler of its own."""
    port = free_port()
    config = write_config(service.folder, feed="http://127.0.0.1:9/unused.xml", smtp_port=25, web_port=port)
    # The config names another feed now: fine, `watcher web` polls nothing and syncs no feed.
    log = tmp_path / "web.log"
    proc = watcher("web", env=environment(config), cwd=service.folder, log=log)
    try:
        base = f"http://127.0.0.1:{port}"
        health = wait_for(lambda: httpx.get(f"{base}/healthz", timeout=5), 30, "watcher web", log)
        assert health.json()["scheduler"] in ("elsewhere", "stalled")
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "watcher_scheduler_running 0.0" in metrics and "watcher_stored_items 4.0" in metrics
        assert httpx.get(f"{base}/matches.json", timeout=5).json()["matches"]
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()
    assert not port_open(port)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, feed="http://127.0.0.1:9/f.xml", smtp_port=25, web_port=port)
    run = [sys.executable, "-m", "watcher.cli"]
    env = {**environment(config, secret=None), "COLUMNS": "200"}
    for args in (["run", "--once"], ["run"], ["web"], ["digest", "preview", "desk"]):
        line = _one_line_error(
            subprocess.run([*run, *args], env=env, cwd=tmp_path, capture_output=True, text=True)
        )
        assert "WATCHER_WEB_SECRET" in line, args

    # Beyond loopback without a password: refused before anything listens.
    config = write_config(
        tmp_path, feed="http://127.0.0.1:9/f.xml", smtp_port=25, web_port=port, base_url="https://w.example"
    )
    env = {**environment(config), "COLUMNS": "200"}
    line = _one_line_error(
        subprocess.run(
            [*run, "web", "--listen", f"0.0.0.0:{port}"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
    )
    assert "WATCHER_WEB_PASSWORD" in line
    assert not port_open(port)

    # A port already taken is a start-up error too, not a dead thread in a running service.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        config = write_config(tmp_path, feed="http://127.0.0.1:9/f.xml", smtp_port=25, web_port=port)
        line = _one_line_error(
            subprocess.run(
                [*run, "run"],
                env={**environment(config), "COLUMNS": "200"},
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
        )
    assert "cannot listen" in line
