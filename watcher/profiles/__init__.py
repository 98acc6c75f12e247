"""Profiles: derive keyword profiles from seed articles, score items, explain scores.

Pure code: no I/O, no clock. See :mod:`watcher.profiles.spec` for what a
profile means and :mod:`watcher.profiles.scorer` for how an item is scored.
"""

from watcher.profiles.derive import derive_profile
from watcher.profiles.explain import explain_text
from watcher.profiles.scorer import Scorer, compile_profiles
from watcher.profiles.spec import ProfileSpec, spec_to_toml

__all__ = ["ProfileSpec", "Scorer", "compile_profiles", "derive_profile", "explain_text", "spec_to_toml"]
