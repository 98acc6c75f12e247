"""Run hostile work in a child interpreter with a memory cap and a time limit, and measure it.

    r = run_bounded("from watcher.parse import parse_feed; ...; report(entries=3)", memory_mb=800)
    assert r["peak_mb"] < 200 and r["seconds"] < 5 and r["entries"] == 3

The child gets ``report(**values)`` to hand values back; ``seconds`` (wall time of the code)
and ``peak_mb`` (the child's own VmHWM) are added. An attack that still works shows as a
failed test (killed at the cap or timed out), never as a machine out of memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

_PRELUDE = """
import json as _json, time as _time
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
_t0 = _time.perf_counter()
def report(**values):
    values["seconds"] = _time.perf_counter() - _t0
    values["peak_mb"] = _hwm()
    print("RESULT " + _json.dumps(values, default=str), flush=True)
"""


def run_bounded(
    code: str, *, memory_mb: int = 1024, timeout: float = 30.0, setup: str = ""
) -> dict[str, Any]:
    """Run ``setup`` (not timed) then ``code`` in a fresh interpreter; return what it reported."""

    def limit() -> None:
        cap = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    source = textwrap.dedent(setup) + _PRELUDE + textwrap.dedent(code)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", source],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the child did not finish within {timeout:g} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(f"the child reported nothing (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
