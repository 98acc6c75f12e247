"""`watcher run` reaches its first fetch without importing what only later stages or other commands
need (issue 14: start-up to the first fetch). What is checked is which modules are loaded, in a
fresh interpreter; how long start-up takes is `benchmarks/bench_startup.py`'s job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.feedserver import FeedServer
from watcher.imports import import_without

RSS = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>Tripoli talks resume</title><link>http://example.com/1</link><guid>1</guid>
<description>Talks in Tripoli resumed.</description></item></channel></rss>"""

# Loaded by a command only when it needs them: other commands' modules, profile derivation,
# the ORM, migrations, parsing, rendering and sending, and extras of libraries watcher never uses.
NOT_BEFORE_FIRST_FETCH = [
    "watcher.cli_profile",
    "watcher.cli_tune",
    "watcher.cli_feeds",
    "watcher.cli_digest",
    "watcher.cli_web",
    "watcher.profiles.derive",
    "watcher.parse",
    "watcher.store.models",
    "watcher.store.items",
    "watcher.store.outbox",
    "watcher.deliver",
    "watcher.digest",
    "watcher.web.app",
    "sqlalchemy.orm",
    "alembic",
    "feedparser",
    "lxml",
    "jinja2",
    "apscheduler",
    "rapidfuzz",
    "tomlkit",
    "trio",
    "httpx._main",
    "rich.progress",
    "multiprocessing",
]


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_importing_the_cli_loads_no_command_group_or_later_stage() -> None:
    done = _python("-c", "import sys, json, watcher.cli; print(json.dumps(sorted(sys.modules)))")
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "watcher.cli" in loaded
    assert sorted(m for m in NOT_BEFORE_FIRST_FETCH if m in loaded) == []


def test_run_once_fetches_before_loading_the_rest_and_then_does_the_whole_cycle(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.route("/feed.xml", body=RSS)
        config = tmp_path / "watcher.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n[polling]\nallow_private_networks = true\n'
            f'[[feeds]]\nurl = "{srv.url("/feed.xml")}"\n'
            "[profiles.libya]\nthreshold = 1.0\nanchors = { tripoli = 2.0 }\n",
            encoding="utf-8",
        )
        # The service's normal start: a database whose schema is current (a new one is migrated by
        # Alembic, which loads the ORM models).
        migrate = _python("-m", "watcher.cli", "--config", str(config), "db", "upgrade", cwd=tmp_path)
        assert migrate.returncode == 0, migrate.stderr
        # The modules loaded when the first fetch starts, then the whole run as `watcher` runs it.
        done = _python(
            "-c",
            textwrap.dedent(f"""
            import json, sys
            import watcher.pipeline as pipeline
            from watcher.cli import main

            real_fetch, first = pipeline.fetch, []

            def fetch(*args, **kwargs):
                if not first:
                    first.append(sorted(sys.modules))
                return real_fetch(*args, **kwargs)

            pipeline.fetch = fetch
            sys.argv = ["watcher", "--config", {str(config)!r}, "run", "--once"]
            try:
                main()
            except SystemExit as exit:
                code = exit.code
            else:
                code = 0
            loaded = {{"first": first[0] if first else None, "last": sorted(sys.modules)}}
            print(json.dumps({{"code": code, **loaded}}))
            """),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert srv.hits("/feed.xml") == 1
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] in (0, None), done.stdout + done.stderr
    assert "new items: 1" in done.stdout and "matches for profile libya: 1" in done.stdout
    first, last = set(result["first"]), set(result["last"])
    assert {"watcher.service", "watcher.fetch", "sqlalchemy", "httpx"} <= first
    assert sorted(m for m in NOT_BEFORE_FIRST_FETCH if m in first) == []
    # What was left out is loaded when needed: the body was parsed, scored and stored.
    assert {"watcher.parse", "watcher.store.items", "sqlalchemy.orm"} <= last


def test_import_without_hides_an_optional_module_for_that_import_only(tmp_path: Path) -> None:
    (tmp_path / "optextra.py").write_text("VALUE = 1\n", encoding="utf-8")
    (tmp_path / "optuser.py").write_text(
        "try:\n    import optextra\nexcept ImportError:\n    optextra = None\n", encoding="utf-8"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        user = import_without("optuser", "optextra")
        assert user.optextra is None  # the library went on without its extra
        import optextra  # type: ignore[import-not-found]  # and the extra still imports normally

        assert optextra.VALUE == 1
        assert import_without("optuser", "optextra") is user  # already imported: left alone
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("optuser", "optextra"):
            sys.modules.pop(name, None)
