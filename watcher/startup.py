"""The `watcher` command's entry point: start-up without the cyclic garbage collector.

Start-up (imports, config, the database and HTTP client) makes 70,000-120,000 objects that the
collector tracks, nearly all of which live as long as the process: modules, classes, functions,
SQLAlchemy's and pydantic's structures. Before `watcher run` fetched its first feed the collector
walked them ~150 times, one full pass included: 0.07-0.14 s of CPU, about an eighth of start-up,
to free under a thousand objects. So it is off from the first import until the command is ready
to work; then what start-up made is frozen (later collections do not walk it again; the little
garbage among it is kept, once) and the collector is on as usual. `run` says when that is (its
first poll; the service also when it starts its scheduler, or waits for its database); every
other command at once, before its own work.
"""

from __future__ import annotations

import gc

_paused = False


def main() -> None:
    """`watcher`: the CLI, started with the collector paused."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
    from watcher.cli import main as cli_main

    cli_main()


def finished() -> None:
    """Start-up is over: freeze what it made, and collect as usual from now on.

    Does nothing when the collector was not paused by :func:`main` (watcher imported as a library,
    the tests, `python -m watcher.cli`), or after the first call.
    """
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
