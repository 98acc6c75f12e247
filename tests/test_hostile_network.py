"""Addresses and numbers from the network: IPv6 forms that embed IPv4, special-purpose ranges,
and Retry-After / Content-Length values that must never become inf, an overflow or a crash."""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver

from watcher.config import Settings
from watcher.fetch import FetchError, FetchLimits, check_url, embedded_ipv4, fetch, make_client
from watcher.headers import RETRY_AFTER_MAX_S, parse_retry_after
from watcher.pipeline import dispatch_digest
from watcher.store import open_store
from watcher.store.models import DigestRun

# Each embeds an internal IPv4 address (loopback, RFC 1918, link-local metadata) in an IPv6 form.
INWARD = {
    "nat64-well-known-loopback": "64:ff9b::7f00:1",
    "nat64-well-known-metadata": "64:ff9b::a9fe:a9fe",
    "nat64-local-use": "64:ff9b:1::a00:1",
    "6to4-loopback": "2002:7f00:1::1",
    "6to4-metadata": "2002:a9fe:a9fe::1",
    "ipv4-compatible": "::127.0.0.1",
    "ipv4-compatible-rfc1918": "::a00:1",
    "ipv4-mapped": "::ffff:10.0.0.1",
    "ipv4-translated-siit": "::ffff:0:a00:1",
    "teredo": "2001:0:4136:e378:8000:63bf:80ff:fffe",
    "isatap-in-a-global-prefix": "2a00:1450::5efe:a00:1",
}
# Special-purpose ranges (IANA registries) some Python versions still call global.
SPECIAL = {
    "v6-documentation-3fff": "3fff::1",
    "v6-documentation-2001-db8": "2001:db8::1",
    "v6-srv6-sids": "5f00::1",
    "v6-site-local": "fec0::1",
    "v6-unique-local": "fd00::1",
    "v6-link-local": "fe80::1",
    "v6-multicast": "ff02::1",
    "v6-discard": "100::1",
    "v4-6to4-relay": "192.88.99.1",
    "v4-shared-cgnat": "100.64.0.1",
    "v4-benchmarking": "198.18.0.1",
    "v4-reserved": "240.0.0.1",
    "v4-ietf-protocol": "192.0.0.8",
    "v4-broadcast": "255.255.255.255",
}


def _url(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"http://[{ip}]/feed" if ip.version == 6 else f"http://{ip}/feed"


@pytest.mark.parametrize("address", [*INWARD.values(), *SPECIAL.values()], ids=[*INWARD, *SPECIAL])
def test_inward_and_special_addresses_are_refused(address: str) -> None:
    with pytest.raises(FetchError) as info:
        check_url(_url(address))
    assert info.value.kind == "private_address"
    check_url(_url(address), allow_private_networks=True)  # unless the operator allows it


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2a00:1450:4001:82b::200e", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"],
)
def test_public_addresses_and_public_embeddings_pass(address: str) -> None:
    check_url(_url(address))


def test_embedded_ipv4_reads_every_form() -> None:
    assert [str(a) for a in embedded_ipv4(ipaddress.IPv6Address("64:ff9b::7f00:1"))] == ["127.0.0.1"]
    assert "10.0.0.1" in [str(a) for a in embedded_ipv4(ipaddress.IPv6Address("2002:a00:1::5"))]
    assert embedded_ipv4(ipaddress.IPv6Address("2a00:1450:4001:82b::200e")) == []


def test_a_name_resolving_to_an_embedded_form_is_refused_at_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS answers a NAT64 form of 127.0.0.1: the connect-time guard must refuse it before connecting.
    import socket

    def fake(host, port, *args, **kw):  # type: ignore[no-untyped-def]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::7f00:1", port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with make_client() as client, pytest.raises(FetchError) as info:
        fetch(client, "http://nat64.example.test/feed", limits=FetchLimits(deadline=2))
    assert info.value.kind == "private_address"


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9" * 400, RETRY_AFTER_MAX_S),  # was inf
        ("9" * 5000, RETRY_AFTER_MAX_S),
        ("²", None),  # a Unicode digit: was a ValueError
        ("٣٠", None),
        ("-5", None),
        ("1e9", None),
        ("120", 120.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_MAX_S),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("x" * 100_000, None),
    ],
)
def test_retry_after_is_always_a_bounded_number_or_none(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=datetime(2026, 3, 1, tzinfo=UTC)) == expected


@pytest.mark.parametrize("length", ["9" * 5000, "٣٠٠٠٠٠٠٠٠", "99999999999999999999999", " 12 ", "-1", "1e99"])
def test_odd_content_length_never_crashes_a_fetch(length: str) -> None:
    with FeedServer() as srv:
        srv.route("/f", b"<rss/>", headers={"Content-Length": length}, send_length=False)
        # Refused or broken: recorded state either way, never a ValueError.
        with make_client() as client, contextlib.suppress(FetchError):
            fetch(client, srv.url("/f"), limits=FetchLimits(allow_private_networks=True, deadline=3))


def test_webhook_retry_after_of_400_digits_schedules_a_bounded_retry(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        hook.respond(503, headers={"Retry-After": "9" * 400}, times=5)
        settings = Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'w.db'}"},
                "profiles": {"libya": {"anchors": {"libya": 3.0}}},
                "digests": [
                    {
                        "name": "hook",
                        "profiles": ["libya"],
                        "channel": "webhook",
                        "url": hook.url,
                        "send_empty": True,
                    }
                ],
            }
        )
        engine = open_store(settings.database.url)
        now = datetime(2026, 3, 1, tzinfo=UTC)
        with httpx.Client() as client:
            results = dispatch_digest(engine, settings, settings.digests[0], "me", now, client=client)
        assert [r.status for r in results] == ["retry"]
        from sqlalchemy.orm import Session

        with Session(engine) as s:
            run = s.query(DigestRun).one()
        assert now < run.next_attempt_at <= now + timedelta(seconds=RETRY_AFTER_MAX_S)
