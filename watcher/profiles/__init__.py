"""Profiles: derive keyword profiles from seed articles, score items, explain scores.

Pure code: no I/O, no clock. See :mod:`watcher.profiles.spec` for what a
profile means and :mod:`watcher.profiles.scorer` for how an item is scored.

The names below are imported on first use (PEP 562): the config needs only ``ProfileSpec``, and
the service's start-up should not pay for deriving (rapidfuzz, the gazetteer) or scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.imports import lazy_exports

if TYPE_CHECKING:
    from watcher.profiles.derive import derive_profile
    from watcher.profiles.explain import explain_text
    from watcher.profiles.scorer import Scorer, compile_profiles
    from watcher.profiles.spec import ProfileSpec, spec_to_toml

_HOMES = {
    "derive_profile": "watcher.profiles.derive",
    "explain_text": "watcher.profiles.explain",
    "Scorer": "watcher.profiles.scorer",
    "compile_profiles": "watcher.profiles.scorer",
    "ProfileSpec": "watcher.profiles.spec",
    "spec_to_toml": "watcher.profiles.spec",
}

__all__ = ["ProfileSpec", "Scorer", "compile_profiles", "derive_profile", "explain_text", "spec_to_toml"]

__getattr__ = lazy_exports(__name__, _HOMES)
