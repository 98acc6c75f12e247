"""Start-up: from `watcher run --once` starting to its first feed request, in wall and CPU seconds.

A loopback server in this process serves one small feed and notes when the first request
arrives; at that moment the child's CPU time is read from /proc, so the CPU figure holds on a
busy machine. Each run gets the same existing database (the service's normal start: the
schema is current) and is repeated; medians are reported. The first run on a new database,
which also creates the schema, is shown apart. `python -X importtime` gives the modules that
cost the most to import.

watcher runs from a copy of its package, as an installation has it: byte-compiled, as pip
compiles what it installs (the Dockerfile's install included), in an environment of its own that
sees this checkout's installed libraries but not its editable install, whose import hook runs at
every start of this development environment (an installation has none). This development
environment also has `PYTHONDONTWRITEBYTECODE=1`, so there every start compiles watcher's own
modules from source; that figure is shown beside it (a copy without bytecode, in this
environment). Python still reads bytecode that exists with that variable set; it only stops
writing it. A third row starts with the shipped config (`config/watcher.toml`: its profile and its
cron e-mail digest, the loopback feed instead of its feeds), which also validates an address and a
cron schedule before fetching.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import tomlkit

from benchmarks.common import PYTHON, REPO, WATCHER, Table, quiet_env, show
from watcher.fetch import LEAN_IMPORTS

_LEAN = json.dumps(LEAN_IMPORTS)

TARGET_S = 0.3
REPEAT = 7
# One loopback feed on a database of its own.
_CONFIG = (
    '[database]\nurl = "sqlite:///{database}"\n[polling]\nallow_private_networks = true\n'
    '[[feeds]]\nurl = "{url}"\n'
)
# Run in a child on the installed copy: `watcher run --once` in-process against a loopback server
# of its own; at the first request, print the modules imported since the harness was ready, less
# watcher's own (what the first fetch cannot do without), and those loaded before, and leave.
_NEEDED = r"""
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        mods = [m for m in sys.modules if m not in before and m.split(".")[0] != "watcher"]
        sys.stdout.write(json.dumps({"needed": mods, "before": sorted(before)}))
        sys.stdout.flush()
        os._exit(0)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
config, database, template = sys.argv[1:4]
with open(config, "w", encoding="utf-8") as f:
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    f.write(template.format(database=database, url=url))
before = set(sys.modules)
sys.argv = ["watcher", "--config", config, "run", "--once"]
from watcher.cli import main
main()
os._exit(3)  # no request was made
"""
# Import only those modules, as `watcher` would: the collector off, and httpcore and httpx first
# through watcher's own import_without, without the optional extras watcher.fetch keeps from them
# (argv[2], its LEAN_IMPORTS), which would otherwise come in with them. Then leave without
# tear-down (with --list, print the modules loaded first: _check_floor makes sure the floor
# imports nothing more).
_FLOOR = """
import gc, importlib, json, os, sys
gc.disable()
from watcher.imports import import_without
for name, extras in json.loads(sys.argv[2]).items():
    import_without(name, *extras)
for name in sys.argv[3:]:
    importlib.import_module(name)
if sys.argv[1] == "--list":
    sys.stdout.write(" ".join(sys.modules))
    sys.stdout.flush()
os._exit(0)
"""

FEED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>One</title><guid>1</guid><description>text</description></item></channel></rss>"""


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Probe:
    def __init__(self) -> None:
        self.pid = 0
        self.first: tuple[float, float] | None = None  # (monotonic time, child CPU s)
        self.lock = threading.Lock()
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with probe.lock:
                    if probe.first is None and probe.pid:
                        try:
                            probe.first = (time.monotonic(), _cpu_seconds(probe.pid))
                        except (OSError, IndexError, ValueError):
                            probe.first = (time.monotonic(), float("nan"))
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(FEED)))
                self.end_headers()
                self.wfile.write(FEED)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"


def _python(checkout: Path) -> Path:
    return checkout / PYTHON.relative_to(REPO)


@dataclass(frozen=True)
class Install:
    """Where a measured `watcher` comes from: its interpreter, its entry script, its environment."""

    python: Path
    script: Path
    env: dict[str, str]


def _purelib(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _plain_env(checkout: Path, dest: Path) -> tuple[Path, Path]:
    """(python, watcher script) of a new environment under ``dest`` that reads the checkout's
    installed libraries as a path entry, so the checkout's .pth files (its editable install's
    import hook) do not run, as in an installation. setuptools' distutils-precedence.pth, which
    an installation on Python 3.11 has (venv and the python image both bring setuptools), is kept."""
    subprocess.run([str(_python(checkout)), "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    libraries = Path(_purelib(_python(checkout)))
    site = Path(_purelib(python))
    (site / "_checkout_libraries.pth").write_text(f"{libraries}\n", encoding="utf-8")
    hack = libraries / "distutils-precedence.pth"
    if hack.exists():
        shutil.copyfile(hack, site / hack.name)
    # The console script pip writes for [project.scripts] watcher, for this interpreter
    project = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, function = project["scripts"]["watcher"].split(":")
    script = dest / "bin" / "watcher"
    script.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\nif __name__ == '__main__':\n"
        f"    sys.exit({function}())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return python, script


def _install(checkout: Path, dest: Path, compiled: bool) -> Install:
    """A copy of the checkout's watcher package under ``dest`` (byte-compiled or not), and how to
    start it: byte-compiled in an environment like an installation's (:func:`_plain_env`); from
    source in this development environment, where it comes first on the path."""
    shutil.copytree(checkout / "watcher", dest / "watcher", ignore=shutil.ignore_patterns("__pycache__"))
    if compiled:  # what pip does at install time (it writes bytecode whatever PYTHONDONTWRITEBYTECODE says)
        subprocess.run([str(_python(checkout)), "-m", "compileall", "-q", str(dest / "watcher")], check=True)
        python, script = _plain_env(checkout, dest / "env")
    else:
        python, script = _python(checkout), checkout / WATCHER.relative_to(REPO)
    env = quiet_env(PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [str(python), "-c", "import watcher; print(watcher.__file__)"],
        env=env,
        cwd=dest,  # not this checkout: `-c` puts the current directory first on the path
        capture_output=True,
        text=True,
        check=True,
    )
    if not done.stdout.strip().startswith(str(dest)):
        raise RuntimeError(f"watcher imported from {done.stdout.strip()}, not from the copy in {dest}")
    return Install(python, script, env)


def _run(probe: _Probe, install: Install, config: Path, cwd: Path) -> tuple[float, float, float]:
    """(wall s to the first request, child CPU s at it, whole run's CPU s)."""
    probe.first = None
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(install.script), "--config", str(config), "run", "--once"],
        env=install.env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    probe.pid = proc.pid
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Exit code 1 is a due digest not delivered (the shipped config's e-mail digest, should its
    # time come during a run; nothing listens for SMTP here): the start-up was measured all the same.
    if proc.returncode not in (0, 1) or probe.first is None:
        raise RuntimeError(f"watcher run --once failed ({proc.returncode}): {proc.stderr.read()[-400:]!r}")
    return probe.first[0] - t0, probe.first[1], usage.ru_utime + usage.ru_stime


def import_costs(install: Install, top: int = 8, runs: int = 5) -> list[str]:
    """The packages whose own import time is largest when the CLI is imported (median of ``runs``
    runs of ``-X importtime``: one run is too noisy on a busy machine), the garbage collector off."""
    per_run: list[Counter[str]] = []
    for _ in range(runs):
        done = subprocess.run(
            # The collector paused, as the entry point has it: a collection's pause would be charged
            # to whichever module happened to be importing then.
            [str(install.python), "-X", "importtime", "-c", "import gc; gc.disable(); import watcher.cli"],
            capture_output=True,
            text=True,
            cwd=install.env["PYTHONPATH"],
            env=install.env,
            check=False,
            timeout=60,
        )
        costs: Counter[str] = Counter()
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if m:
                costs[m.group(2).split(".")[0]] += int(m.group(1))
        per_run.append(costs)
    names = set().union(*per_run)
    median = {name: statistics.median(c[name] for c in per_run) for name in names}
    total = statistics.median(sum(c.values()) for c in per_run)
    largest = sorted(median.items(), key=lambda kv: -kv[1])[:top]
    head = (
        f"import watcher.cli (installed, collector off): {total / 1e6:.3f} s of imports "
        f"(-X importtime, median of {runs}); largest: "
    )
    return [head + ", ".join(f"{name} {us / 1e3:.0f} ms" for name, us in largest)]


def _needed_modules(install: Install, tmp: Path) -> tuple[list[str], set[str]]:
    """The modules (not watcher's own) a `watcher run --once` has imported at its first request,
    and those its harness had loaded before it started."""
    db = tmp / "needed.db"
    for first in (True, False):  # the first run creates the schema (importing more); keep the second
        if not first:
            _make_due(db)
        done = subprocess.run(
            [str(install.python), "-c", _NEEDED, str(tmp / "needed.toml"), str(db), _CONFIG],
            env=install.env,
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"finding the modules the first fetch needs failed: {done.stderr[-400:]!r}")
    found = json.loads(done.stdout)
    return found["needed"], set(found["before"])


def _check_floor(install: Install, cwd: Path, needed: list[str], before: set[str]) -> None:
    """The floor must load no module that `watcher run` had not loaded by its first request (an
    optional extra of a library that watcher keeps out, say): it would not be a floor then."""
    done = subprocess.run(
        [str(install.python), "-c", _FLOOR, "--list", _LEAN, *needed],
        env=install.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    # watcher's own modules in the floor are only `watcher.imports`, for import_without
    loaded = {m for m in done.stdout.split() if m.split(".")[0] != "watcher"}
    extra = loaded - set(needed) - before
    if extra:
        raise RuntimeError(f"the floor imports modules watcher's start does not: {sorted(extra)[:10]}")


def _floor_run(install: Install, cwd: Path, modules: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of a fresh interpreter that imports ``modules`` and leaves."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(install.python), "-c", _FLOOR, "--time", _LEAN, *modules],
        env=install.env,
        cwd=cwd,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"importing the first fetch's modules failed: {proc.stderr.read()[-400:]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def _shipped_config(checkout: Path, url: str, database: str) -> str:
    """config/watcher.toml with the loopback feed instead of its feeds, and a database of its own."""
    doc = tomlkit.parse((checkout / "config" / "watcher.toml").read_text(encoding="utf-8"))
    doc["database"]["url"] = database  # type: ignore[index]
    doc["polling"]["allow_private_networks"] = True  # type: ignore[index]
    feeds = tomlkit.aot()
    feeds.append(tomlkit.item({"url": url}))
    doc["feeds"] = feeds
    return tomlkit.dumps(doc)


def _make_due(db: Path) -> None:
    db.touch()
    subprocess.run(  # make the feed due again
        [
            sys.executable,
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
            "c.execute('update feeds set next_poll_at=\"2000-01-01 00:00:00.000000\"'); c.commit()",
            str(db),
        ],
        check=True,
    )


def measure(repeat: int, checkout: Path = REPO) -> Table:
    probe = _Probe()
    with tempfile.TemporaryDirectory(prefix="watcher-startup-") as tmp_name:
        tmp = Path(tmp_name)
        installed = _install(checkout, tmp / "installed", compiled=True)
        source = _install(checkout, tmp / "source", compiled=False)
        config = tmp / "watcher.toml"
        config.write_text(_CONFIG.format(database=tmp / "w.db", url=probe.url), encoding="utf-8")
        shipped = tmp / "shipped.toml"
        shipped.write_text(
            _shipped_config(checkout, probe.url, f"sqlite:///{tmp}/shipped.db"), encoding="utf-8"
        )
        fresh = _run(probe, installed, config, tmp)
        _run(probe, installed, shipped, tmp)  # creates its database
        variants = {  # label -> (config, database, environment)
            "existing (current schema)": (config, tmp / "w.db", installed),
            "existing, watcher from source (this dev environment)": (config, tmp / "w.db", source),
            "existing, the shipped config (profile, cron e-mail digest)": (
                shipped,
                tmp / "shipped.db",
                installed,
            ),
        }
        needed, before = _needed_modules(installed, tmp)
        _check_floor(installed, tmp, needed, before)
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in variants}
        floor: list[tuple[float, float]] = []
        for _ in range(repeat):  # round-robin, so the machine's load weighs on every variant alike
            for label, (cfg, db, install) in variants.items():
                _make_due(db)
                runs[label].append(_run(probe, install, cfg, tmp))
            floor.append(_floor_run(installed, tmp, needed))
        imports = import_costs(installed)
    probe.server.shutdown()
    t = Table(
        f"Start-up: `watcher run --once` to its first feed request (one feed; median of {repeat})",
        ["database", "wall s to first request", "CPU s to first request", "CPU s whole run", "runs"],
    )
    t.add("new (schema created)", fresh[0], fresh[1], fresh[2], 1)
    medians = {}
    for label, rs in runs.items():
        medians[label] = [statistics.median(r[k] for r in rs) for k in range(3)]
        t.add(label, *medians[label], repeat)
    floor_wall, floor_cpu = (statistics.median(r[k] for r in floor) for k in range(2))
    floor_label = f"floor: a fresh interpreter importing only the {len(needed)} modules the first fetch needs"
    t.add(floor_label, floor_wall, floor_cpu, floor_cpu, repeat)
    med = medians["existing (current schema)"]
    verdict = "meets" if med[0] <= TARGET_S else "misses"
    t.notes.append(
        f"target start-up to the first fetch <= {TARGET_S} s: {med[0]:.3f} s wall "
        f"({med[1]:.3f} s CPU) on an existing database, {verdict} it"
    )
    t.notes.append(
        f"floor: the libraries and standard modules imported by the first request, watcher's own excluded "
        f"but for its import_without helper "
        f"(SQLAlchemy, pydantic, typer, httpx and what they import), cost {floor_wall:.3f} s wall "
        f"({floor_cpu:.3f} s CPU) on their own, {floor_wall / TARGET_S:.0%} of the target; watcher's share "
        f"(its modules, config, database, HTTP client, first claim) is the rest: "
        f"{med[0] - floor_wall:.3f} s wall, {med[1] - floor_cpu:.3f} s CPU"
    )
    t.notes.append(
        "watcher runs from a byte-compiled copy of its package, as installed (pip compiles at install), "
        "in an environment without this checkout's editable install (its import hook runs at every start); "
        "'from source' is the same copy without bytecode in this development environment, as its editable "
        "install runs with PYTHONDONTWRITEBYTECODE=1"
    )
    t.notes += imports
    t.notes.append(
        "CPU s to first request: the child's user + system time (/proc) when the server saw the request; "
        "wall s depends on the machine's load, CPU s much less"
    )
    return t


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=REPEAT)
    ap.add_argument(
        "--checkout",
        type=Path,
        default=REPO,
        help="another checkout of watcher (with its own .venv) to measure, e.g. main for a before/after",
    )
    args = ap.parse_args(argv)
    tables = [measure(max(1, args.repeat), args.checkout.resolve())]
    show(tables)
    return tables


if __name__ == "__main__":
    main()
