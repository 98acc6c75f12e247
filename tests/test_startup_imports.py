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

import pytest

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
    "watcher.cli_service",  # demo and status
    "watcher.profiles.derive",
    "watcher.parse",
    "watcher.store.models",
    "watcher.store.items",
    "watcher.store.outbox",
    "watcher.store.feed_views",  # what `feeds list` and the health check read
    "watcher.store.tables_rest",  # the tables no start-up step reads (exported by watcher.store.tables)
    "watcher.values_stored",  # digests' and stored items' values (exported by watcher.values)
    # What a poll makes once its request is under way, and a cycle's report (exported by watcher.fetch,
    # watcher.store.feeds, watcher.values, watcher.pipeline and watcher.service)
    "watcher.values_polled",
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
    "anyio",  # httpcore's async support; the web side's starlette imports it when it is served
    "httpx._main",
    "rich",  # off a terminal: the consoles are made when first printed to (watcher.console)
    "multiprocessing",
    "prometheus_client",  # the service's metrics: made when first counted
    "itsdangerous",  # feedback links: signed when a digest is made
]


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # Not a terminal (output is captured), and nothing that would make rich call it one.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WATCHER_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }
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
    done = _python(
        "-c",
        textwrap.dedent("""
        import sys, json, watcher.cli, watcher.config as c
        # No config model builds its validator at import (defer_build, factories for defaults):
        # loading a config builds Settings' once.
        models = [c.Settings, c.DatabaseSettings, c.PollingSettings, c.DigestSettings, c.ProfileSpec]
        built = [m.__name__ for m in models if m.__pydantic_complete__]
        print(json.dumps({"modules": sorted(sys.modules), "built": built}))
        """),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    loaded = set(result["modules"])
    assert "watcher.cli" in loaded
    assert sorted(m for m in NOT_BEFORE_FIRST_FETCH if m in loaded) == []
    assert result["built"] == []


def test_loading_a_config_builds_one_validator_and_its_defaults_are_the_sections_own(tmp_path: Path) -> None:
    """Sections left out are validated by Settings' validator from an empty table: none of their
    models builds a validator of its own, and each is what the model makes by itself."""
    config = tmp_path / "watcher.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n', encoding="utf-8")
    done = _python(
        "-c",
        textwrap.dedent(f"""
        import json, pathlib, watcher.config as c
        s = c.load_settings(pathlib.Path({str(config)!r}))
        models = [c.Settings, c.PollingSettings, c.SmtpSettings, c.RetentionSettings, c.LoggingSettings]
        built = [m.__name__ for m in models if m.__pydantic_complete__]
        print(json.dumps({{"built": built, "smtp": s.smtp.model_dump(), "polling": s.polling.model_dump(),
                          "retention": s.retention.model_dump(), "logging": s.logging.model_dump(),
                          "set": sorted(s.model_fields_set)}}))
        """),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["built"] == ["Settings"]
    from watcher.config import LoggingSettings, PollingSettings, RetentionSettings, Settings, SmtpSettings

    assert result["smtp"] == SmtpSettings().model_dump()
    assert result["polling"] == PollingSettings().model_dump()
    assert result["polling"]["user_agent"].startswith("watcher/")
    assert result["retention"] == RetentionSettings().model_dump()
    assert result["logging"] == LoggingSettings().model_dump()
    assert result["set"] == ["database", "source"]
    # Each Settings gets sections of its own, and each profile its own empty tables.
    a, b = Settings(), Settings()
    assert a.smtp == b.smtp and a.smtp is not b.smtp and a.polling is not b.polling
    from watcher.profiles.spec import ProfileSpec

    one, two = ProfileSpec(anchors={"libya": 2.0}), ProfileSpec(anchors={"libya": 2.0})
    one.terms["ceasefire"] = 1.0
    one.exclude.append("lebanon")
    assert two.terms == {} and two.exclude == [] and two.origin == {} and two.ambiguous == {}


def test_the_version_is_the_installed_metadata_s() -> None:
    """`watcher.version()` reads the Version field from the metadata's header lines only."""
    from importlib.metadata import version as metadata_version

    from watcher import version

    assert version() == metadata_version("watcher")


def test_the_values_of_digests_and_stored_items_load_when_named() -> None:
    done = _python(
        "-c",
        "import sys, watcher.values as v; print('watcher.values_stored' in sys.modules); "
        "from watcher.values import Digest, DigestItem, FeedbackLinks, StoredItem; "
        "import watcher.values_stored as s; "
        "print(Digest is s.Digest and DigestItem is s.DigestItem and FeedbackLinks is s.FeedbackLinks "
        "and StoredItem is s.StoredItem); print(sorted(v.__all__) == sorted(set(v.__all__)))",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]
    import watcher.values

    with pytest.raises(AttributeError, match="NoSuchValue"):
        watcher.values.NoSuchValue  # noqa: B018


def test_the_orm_s_metadata_has_every_table() -> None:
    """The tables defined apart (watcher.store.tables_rest) are on the metadata once the ORM is loaded,
    and watcher.store.tables exports them."""
    done = _python(
        "-c",
        "import sys, watcher.store.tables as t; print('watcher.store.tables_rest' in sys.modules); "
        "import watcher.store.models as m; print(' '.join(sorted(m.Base.metadata.tables))); "
        "import watcher.store.tables_rest as r; "
        "print(t.matches is r.matches and t.suggestions is r.suggestions)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "False",
        "deliveries digest_runs digest_schedules entries entry_keys feeds matches suggestions verdicts",
        "True",
    ]
    import watcher.store.tables

    with pytest.raises(AttributeError, match="no_such_table"):
        watcher.store.tables.no_such_table  # noqa: B018


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
        # The modules loaded when the first fetch starts, then the whole run as `watcher` runs it
        # (its entry point: the garbage collector paused while starting up).
        done = _python(
            "-c",
            textwrap.dedent(f"""
            import gc, json, sys
            gc.disable()  # as the entry point does, before any of watcher is imported
            import watcher.startup as startup
            startup._paused = True
            import watcher.pipeline as pipeline

            collections, ended, first = [], [], []
            gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
            real_finished, real_fetch = startup.finished, pipeline.fetch

            def finished():
                if not ended:
                    ended.append(len(collections))
                real_finished()

            def fetch(*args, **kwargs):
                if not first:
                    import watcher.cli_common, watcher.config, watcher.redact
                    first.append({{
                        "modules": sorted(sys.modules),
                        "collector": gc.isenabled(),
                        "frozen": gc.get_freeze_count(),
                        # Patterns compiled when first needed, not at import (none of them is yet).
                        "patterns": [
                            f.__qualname__ for f in (
                                watcher.redact._patterns,
                                watcher.cli_common._terminal_patterns,
                                watcher.config._listen_pattern,
                            ) if f.cache_info().currsize
                        ],
                    }})
                return real_fetch(*args, **kwargs)

            startup.finished, pipeline.fetch = finished, fetch
            sys.argv = ["watcher", "--config", {str(config)!r}, "run", "--once"]
            try:
                startup.main()
            except SystemExit as exit:
                code = exit.code
            else:
                code = 0
            loaded = {{"first": first[0] if first else None, "last": sorted(sys.modules)}}
            print(json.dumps({{"code": code, "collections_in_startup": ended, **loaded}}))
            """),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert srv.hits("/feed.xml") == 1
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] in (0, None), done.stdout + done.stderr
    assert "new items: 1" in done.stdout and "matches for profile libya: 1" in done.stdout
    first, last = set(result["first"]["modules"]), set(result["last"])
    assert {"watcher.service", "watcher.fetch", "sqlalchemy", "httpx"} <= first
    assert sorted(m for m in NOT_BEFORE_FIRST_FETCH if m in first) == []
    # What was left out is loaded when needed: the body was parsed, scored and stored.
    assert {"watcher.parse", "watcher.store.items", "sqlalchemy.orm"} <= last
    # No collection while starting up; by the first fetch what start-up made is frozen and the
    # collector is on again.
    assert result["collections_in_startup"] == [0]
    assert result["first"]["collector"] is True
    assert result["first"]["frozen"] > 10_000
    assert result["first"]["patterns"] == []


def test_other_commands_end_start_up_before_their_own_work(tmp_path: Path) -> None:
    """Every command but `run` turns the collector back on before it starts (its garbage is its own)."""
    config = tmp_path / "watcher.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n', encoding="utf-8")
    done = _python(
        "-c",
        textwrap.dedent(f"""
        import gc, json, sys
        import watcher.logs as logs
        import watcher.startup as startup

        real_apply, seen = logs.apply_settings, []

        def apply_settings(*args):  # a command's first step: its config read (cli_common.settings)
            seen.append({{"collector": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}})
            return real_apply(*args)

        logs.apply_settings = apply_settings
        sys.argv = ["watcher", "--config", {str(config)!r}, "db", "upgrade"]
        try:
            startup.main()
        except SystemExit:
            pass
        print(json.dumps(seen))
        """),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [{"collector": True, "frozen": True}]


def test_without_the_entry_point_the_collector_is_left_alone() -> None:
    """watcher imported as a library (the tests, `python -m watcher.cli`): nothing paused, nothing frozen."""
    done = _python(
        "-c",
        "import gc, watcher.cli, watcher.startup as s; s.finished(); "
        "print(gc.isenabled(), gc.get_freeze_count())",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0"]


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
