"""A private PostgreSQL cluster of one's own: its own data folder and port, to stop, start and
restart at will without touching the machine's server (other work uses that one).

    with PgCluster(tmp_path / "pg") as pg:   # initdb + start
        url = pg.url("postgres")
        pg.restart()
        pg.stop(); pg.start()

PostgreSQL refuses to run as root: as root, its programs run as the ``postgres`` user on a
folder that user owns. The binaries come from ``WATCHER_TEST_PG_BIN`` or the newest
/usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


def pg_bin() -> Path | None:
    given = os.environ.get("WATCHER_TEST_PG_BIN")
    if given:
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, root: Path, port: int | None = None) -> None:
        binary = pg_bin()
        if binary is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found")
        self.bin = binary
        self.root = root
        self.data = root / "data"
        self.port = port or free_port()
        self.log = root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
        self._made = False

    # -- running the programs -----------------------------------------------------------------
    def _run(self, *argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            # The folders above must let that user through.
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\nmax_connections = 100\n"
            )
        self._made = True

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart"
        )

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    # -- for clients ---------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def connections(self, database: str) -> int:
        """Client connections to ``database`` (this query's own not counted)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if ok.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the private PostgreSQL on port {self.port} did not become ready")

    def __enter__(self) -> PgCluster:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._made:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
