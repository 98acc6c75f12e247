"""watcher.console.LazyConsole answers as rich's Console would, and makes one only when it must."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from watcher import logs
from watcher.console import LazyConsole, rich_console


class _Tty(io.StringIO):
    """A file that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class _Closed(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


class _NoIsatty:
    def write(self, text: str) -> int:
        return len(text)


OPTIONS = [{"soft_wrap": True, "emoji": False}, {"stderr": True, "soft_wrap": True, "emoji": False}]
ENVIRONMENTS = [
    {},
    {"FORCE_COLOR": "1"},
    {"FORCE_COLOR": ""},
    {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "1"},
    {"TTY_COMPATIBLE": "2"},
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("stream", ["pipe", "tty", "closed", "no isatty", "proxied"])
def test_is_terminal_and_file_are_riches_answers(
    clean_env: pytest.MonkeyPatch, options: dict[str, bool], env: dict[str, str], stream: str
) -> None:
    target = {
        "pipe": io.StringIO(),
        "tty": _Tty(),
        "closed": _Closed(),
        "no isatty": _NoIsatty(),
        "proxied": io.StringIO(),
    }[stream]
    if stream == "proxied":  # what rich's progress display puts in sys.stdout / sys.stderr
        wrapper = io.StringIO()
        wrapper.rich_proxied_file = _Tty()  # type: ignore[attr-defined]
        target, behind = wrapper, wrapper.rich_proxied_file  # type: ignore[attr-defined]
    else:
        behind = target
    for name, value in env.items():
        clean_env.setenv(name, value)
    clean_env.setattr(sys, "stderr" if options.get("stderr") else "stdout", target)
    lazy, real = LazyConsole(**options), Console(**options)
    assert lazy.file is real.file is behind
    assert lazy.is_terminal == real.is_terminal
    # Off a terminal, with nothing overriding the detection, no Console was made to answer.
    made = lazy._console is not None
    assert made == (bool(env) or stream in ("tty", "proxied"))


def test_a_real_terminal(clean_env: pytest.MonkeyPatch) -> None:
    primary, secondary = os.openpty()
    with open(secondary, "w") as tty, open(primary, "rb", buffering=0):
        clean_env.setattr(sys, "stderr", tty)
        lazy = LazyConsole(stderr=True)
        assert lazy.is_terminal is True and lazy.is_terminal == Console(stderr=True).is_terminal
        assert lazy.file is tty


def test_a_console_follows_the_stream_of_the_moment(clean_env: pytest.MonkeyPatch) -> None:
    lazy = LazyConsole(soft_wrap=True, emoji=False)
    first, second = io.StringIO(), io.StringIO()
    clean_env.setattr(sys, "stdout", first)
    assert lazy.file is first and not lazy.is_terminal
    clean_env.setattr(sys, "stdout", second)  # e.g. a test runner's capture, set up later
    lazy.print("[bold]Libya[/] :smile:")
    assert second.getvalue() == "Libya :smile:\n" and first.getvalue() == ""
    assert lazy.file is second and rich_console(lazy) is lazy.rich


def test_printing_is_riches(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lazy, real = LazyConsole(soft_wrap=True, emoji=False), Console(soft_wrap=True, emoji=False)
    text = "feed error \\[/x] " + "long " * 40 + ":thumbs_up: [not markup]"
    for console in (lazy, real):
        buffer = io.StringIO()
        clean_env.setattr(sys, "stdout", buffer)
        console.print(f"  [yellow]feed error[/] {text}", highlight=False)
        console.print(text, markup=False)
        console.print(text)
        if console is lazy:
            lazy_out = buffer.getvalue()
    assert lazy_out == buffer.getvalue()


def test_logs_off_a_terminal_go_to_the_stream_as_lines(clean_env: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    clean_env.setattr(sys, "stderr", buffer)
    console = LazyConsole(stderr=True, soft_wrap=True, emoji=False)
    handler = logs.make_handler(console)
    assert type(handler) is logs.logging.StreamHandler and handler.stream is buffer
    assert isinstance(handler.formatter, logs.LineFormatter)
    assert console._console is None  # rich's handler and console are for terminals only
    clean_env.setenv("FORCE_COLOR", "1")
    from rich.logging import RichHandler

    forced = logs.make_handler(console)
    assert isinstance(forced, RichHandler) and forced.console is console.rich
