"""The CLI's consoles, made when first printed to: importing rich costs ~0.02 s of every start.

``watcher run`` asks before its first fetch only whether its stderr is a terminal (for the log
format and the progress bar) and which file it writes to. Off a terminal (a pipe, a service's
log) rich's answer to both is certain without rich, so it is not imported then; anything else
(printing, a terminal, an environment that overrides rich's detection) makes the real Console.
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# Variables that change rich's terminal detection (besides the file's isatty): with either set,
# rich itself decides.
_DETECTION_OVERRIDES = ("TTY_COMPATIBLE", "FORCE_COLOR")


class LazyConsole:
    """A rich ``Console(**options)`` made on first use; attributes are the real Console's."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        """The real Console (made now if not yet)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define
        return getattr(self.rich, name)

    def _stream(self) -> IO[str] | None:
        """What rich's ``Console.file`` gives while no file was set: stdout or stderr at this moment,
        or the file behind rich's own proxy of it. None when rich would substitute its null file."""
        stream = self._options.get("file") or (sys.stderr if self._options.get("stderr") else sys.stdout)
        return getattr(stream, "rich_proxied_file", stream)

    @property
    def file(self) -> IO[str]:
        if self._console is None:
            stream = self._stream()
            if stream is not None:
                return stream
        return self.rich.file

    @property
    def is_terminal(self) -> bool:
        """rich's ``Console.is_terminal``: without rich when the file is no terminal and nothing
        overrides the detection (rich then says False whatever else it checks: Idle, Jupyter)."""
        if self._console is None and "force_terminal" not in self._options:
            stream = self._stream()
            if stream is not None and not any(v in os.environ for v in _DETECTION_OVERRIDES):
                isatty = getattr(stream, "isatty", None)
                try:
                    if isatty is None or not isatty():
                        return False
                except ValueError:  # a closed file: rich says False too
                    return False
        return self.rich.is_terminal


def rich_console(console: Console | LazyConsole) -> Console:
    """The real rich Console behind ``console`` (for rich's own classes: a progress bar, a log handler)."""
    return console.rich if isinstance(console, LazyConsole) else console
