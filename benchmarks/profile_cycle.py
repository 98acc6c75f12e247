"""Profile the measured `watcher run --once` of the cycle benchmark with py-spy (all threads).

    .venv/bin/pip install py-spy          # an investigation tool, not a watcher dependency
    .venv/bin/python -m benchmarks.profile_cycle --feeds 2000

Writes the collapsed stacks next to a summary: the functions with the most samples
on the stack (inclusive) and at the top of it (self), watcher's own code marked.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.bench_cycle import HOSTS, make_all_due, write_config
from benchmarks.common import REPO, WATCHER, quiet_env
from benchmarks.farm import Farm

TOP = 40


def collapsed_summary(path: Path, top: int = TOP) -> str:
    """Inclusive and self sample counts per frame from py-spy's ``--format raw`` output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in dict.fromkeys(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    out = [f"{total:,} samples of the thread holding the GIL (py-spy --gil)", "", "inclusive (on the stack):"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "self (top of the stack):"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "watcher-cycle.pyspy.txt")
    ap.add_argument("--rate", type=int, default=250, help="samples per second")
    args = ap.parse_args(argv)
    pyspy = shutil.which("py-spy", path=str(REPO / ".venv" / "bin")) or shutil.which("py-spy")
    if not pyspy:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="watcher-prof-") as tmp, Farm(hosts=HOSTS) as farm:
        db, config = f"sqlite:///{tmp}/prof.db", Path(tmp) / "watcher.toml"
        write_config(config, db, farm, args.feeds)
        farm.set_phase(1)
        cmd = [str(WATCHER), "--config", str(config), "run", "--once"]
        subprocess.run(cmd, env=quiet_env(), cwd=tmp, check=True, capture_output=True, timeout=600)
        make_all_due(db)
        farm.set_phase(2)
        spy = [
            pyspy,
            "record",
            "--gil",
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "-o",
            str(args.out),
            "--",
        ]
        subprocess.run(spy + cmd, env=quiet_env(), cwd=tmp, check=True, capture_output=True, timeout=600)
    print(collapsed_summary(args.out))
    print(f"\ncollapsed stacks: {args.out}")


if __name__ == "__main__":
    main()
