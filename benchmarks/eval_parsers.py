"""The fast-parser candidates against feedparser on the real corpus feeds (the choice in FINDINGS.md).

Not part of `make bench`: the candidates are not watcher dependencies. Run it with a Python that
has them and watcher's parse dependencies, e.g.

    python -m venv /tmp/cand && /tmp/cand/bin/pip install feedparser-rs fastfeedparser feedparser \\
        lxml w3lib defusedxml
    PYTHONPATH=. /tmp/cand/bin/python -m benchmarks.eval_parsers

Each candidate parses every real corpus feed from bytes; its feedparser-style result goes through
watcher's own normalization (``_fp_entry``) and is compared, entry by entry, with what watcher's
feedparser path gives (title, canonical link, text, date, key). watcher's fast path (lxml, with its
fall-backs) is measured the same way.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from datetime import UTC, datetime

from benchmarks.bench_parse import real_feeds
from watcher.parse import _fp_entry, _looks_like_json, canonical_link, html_to_text, parse_feed

NOW = datetime(2024, 6, 1, tzinfo=UTC)
FIELDS = ("title", "link", "summary", "published", "key")


def _normalized(result, url):
    feed = result.get("feed", {}) or {}
    title = html_to_text(feed.get("title")) or None
    base = canonical_link(feed.get("link"), url) or url
    out = []
    for raw in result.get("entries", []) or []:
        try:
            out.append(_fp_entry(dict(raw), title, url or base, NOW))
        except Exception:
            out.append(None)
    return out


def main() -> None:
    bodies = [b for b in real_feeds() if not _looks_like_json(b.data, None)]
    reference = {b.path: parse_feed(b.data, url=b.url, now=NOW, parser="feedparser").entries for b in bodies}
    total = sum(len(v) for v in reference.values())
    print(f"{len(bodies)} real XML corpus feeds, {total:,} entries (watcher's feedparser path)")
    t0 = time.process_time()
    import feedparser

    for b in bodies:
        feedparser.parse(b.data)
    base = time.process_time() - t0
    print(f"  feedparser.parse (its defaults): {base:.2f} s CPU")
    for name in ("feedparser_rs", "fastfeedparser"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            print(f"  {name}: not installed")
            continue
        errors, same, fewer = Counter(), 0, 0
        parse_s = norm_s = 0.0
        for b in bodies:
            t = time.process_time()
            try:
                result = mod.parse(b.data)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                parse_s += time.process_time() - t
                continue
            parse_s += time.process_time() - t
            t = time.process_time()
            got = _normalized(result, b.url)
            norm_s += time.process_time() - t
            ref = reference[b.path]
            fewer += len(got) < len(ref)
            same += sum(
                1
                for x, y in zip(ref, got, strict=False)
                if y and all(getattr(x, f) == getattr(y, f) for f in FIELDS)
            )
        version = getattr(mod, "__version__", "?")
        print(
            f"  {name} {version}: parse {parse_s:.2f} s CPU ({base / parse_s:.1f}x feedparser), + watcher's "
            f"normalization {norm_s:.2f} s; raised on {sum(errors.values())} files {dict(errors)}; "
            f"fewer entries than feedparser in {fewer} files; "
            f"same entries {same:,} of {total:,} ({same / total:.1%})"
        )
    t = time.process_time()
    fast = {b.path: parse_feed(b.data, url=b.url, now=NOW, parser="fast").entries for b in bodies}
    fast_s = time.process_time() - t
    same = sum(1 for b in bodies for x, y in zip(reference[b.path], fast[b.path], strict=False) if x == y)
    print(
        f"  watcher fast path (lxml + fall-backs, normalization included): {fast_s:.2f} s CPU "
        f"({base / fast_s:.1f}x feedparser); same entries {same:,} of {total:,} ({same / total:.1%})"
    )


if __name__ == "__main__":
    main()
