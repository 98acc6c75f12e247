"""Importing a library without optional extras it would load but watcher never uses."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


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
