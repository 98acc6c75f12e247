"""Render docs/digest-example.html from made-up items.

Run once: .venv/bin/python scripts/render_digest_example.py
All outlets, links and events here are fictional; two items are the same story
from two sources, to show "also reported by".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from watcher.digest import render_html
from watcher.values import Digest, DigestItem

OUT = Path(__file__).resolve().parents[1] / "docs" / "digest-example.html"


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


ITEMS = (
    DigestItem(
        101,
        "libya",
        "UN envoy opens new round of talks on Libya's unified government",
        "https://wire.example.org/world/africa/un-envoy-libya-talks-2025-03-11",
        "Example Wire",
        at(11, 8, 45),
        "The UN special envoy for Libya opened a new round of talks in Geneva on Tuesday with delegates "
        "from the House of Representatives and the High Council of State, seeking agreement on a "
        "unified interim government and a timetable for national elections.",
        4.82,
        ("un envoy", "house of representatives", "high council of state", "elections"),
    ),
    DigestItem(
        102,
        "libya",
        "UN envoy opens new round of talks on Libya's unified government",
        "https://globalpost.example.com/2025/03/11/libya-talks-geneva",
        "Global Post",
        at(11, 9, 10),
        "The UN special envoy for Libya opened a new round of talks in Geneva on Tuesday with delegates "
        "from the House of Representatives and the High Council of State, seeking agreement on a "
        "unified interim government.",
        4.41,
        ("un envoy", "house of representatives", "high council of state"),
    ),
    DigestItem(
        103,
        "libya",
        "Central bank dispute: Tripoli and Benghazi agree on interim board",
        "https://maghreb-economy.example.net/central-bank-interim-board",
        "Maghreb Economy Review",
        at(11, 7, 5),
        "Rival authorities agreed on a three-member interim board for the Central Bank of Libya, ending "
        "a standoff that had halted oil revenue transfers for several weeks and raised fears of a fuel "
        "shortage in the west of the country.",
        3.97,
        ("central bank of libya", "tripoli", "benghazi", "oil revenue"),
    ),
    DigestItem(
        104,
        "libya",
        "Berlin process partners call for withdrawal of foreign fighters",
        "https://diplomat-daily.example.com/berlin-process-statement",
        "Diplomat Daily",
        at(10, 18, 30),
        "Foreign ministers from the Berlin process renewed their call for the withdrawal of all foreign "
        "fighters and mercenaries from Libya & urged both sides to respect the 2020 ceasefire agreement.",
        3.55,
        ("berlin process", "foreign fighters", "ceasefire"),
    ),
    DigestItem(
        105,
        "libya",
        "Haftar meets Egyptian officials in Cairo ahead of Geneva round",
        "https://nile-observer.example.org/haftar-cairo-visit",
        "Nile Observer",
        at(10, 15, 0),
        "Field marshal Khalifa Haftar held talks with senior Egyptian officials in Cairo on Monday, a day "
        "before the UN-backed negotiations resumed.",
        3.12,
        ("haftar", "cairo", "un-backed"),
    ),
    DigestItem(
        106,
        "libya",
        "Misrata municipal council backs election roadmap",
        "https://libya-local.example.ly/misrata-council-roadmap",
        "Libya Local News",
        at(10, 11, 20),
        "The municipal council of Misrata said it supports the roadmap proposed by the UN mission, "
        "provided that the electoral laws are approved by both legislative bodies.",
        2.64,
        ("misrata", "roadmap", "electoral laws"),
    ),
    DigestItem(
        201,
        "sahel",
        "Niger and Chad discuss border security with regional partners",
        "https://sahel-monitor.example.org/niger-chad-border-security",
        "Sahel Monitor",
        at(11, 6, 50),
        "Security officials from Niger and Chad met in N'Djamena to coordinate patrols along the "
        "southern Libyan border, where smuggling routes have expanded since last year.",
        2.88,
        ("niger", "chad", "border security", "smuggling"),
    ),
    DigestItem(
        202,
        "sahel",
        "Migration routes shift east as Mediterranean crossings fall",
        "https://migration-notes.example.com/routes-shift-east",
        "Migration Notes",
        at(9, 20, 15),
        "Researchers tracking departures say fewer boats now leave from western Libya, while crossings "
        "from the eastern coast have grown, changing the work of coastguards and aid groups.",
        2.21,
        ("migration", "crossings", "coastguard"),
    ),
)

DIGEST = Digest(
    name="libya-daily",
    key="libya-daily-5b0c2f4e9a7d4c1e8f3a6b2d9e0c7a15",
    created=at(11, 10, 0),
    items=ITEMS,
    profiles=("libya", "sahel"),
)


if __name__ == "__main__":
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(render_html(DIGEST), encoding="utf-8")
    print(f"wrote {OUT}")
