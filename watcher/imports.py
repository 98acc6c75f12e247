"""Import helpers: a library without optional extras it would load but watcher never uses, and
names a module exports but defines elsewhere, imported when first named."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def import_without(name: str, *extras: str) -> ModuleType:
    """Import ``name`` as if the modules ``extras`` were not installed.

    For libraries that try an optional import and carry on without it (``try: import x``
    / ``except ImportError``). Only that first import sees them missing: afterwards they import
    normally (a module already loaded is left alone, and so is ``name`` if already imported).
    """
    if name in sys.modules:
        return sys.modules[name]
    hidden = [extra for extra in extras if extra not in sys.modules]
    for extra in hidden:
        sys.modules[extra] = None  # type: ignore[assignment]  # makes `import extra` raise ImportError
    try:
        return importlib.import_module(name)
    finally:
        for extra in hidden:
            if extra in sys.modules and sys.modules[extra] is None:
                del sys.modules[extra]


def lazy_exports(owner: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for the names ``owner`` exports but ``homes`` defines
    (name -> module): each is imported when first named, then kept in ``owner``'s namespace, so
    later lookups are plain attribute reads. Used as ``__getattr__ = lazy_exports(__name__, {...})``
    to keep what a command's start-up never touches out of it."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[owner], name, value)
        return value

    return __getattr__
