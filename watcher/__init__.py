"""watcher: find new coverage related to seed articles."""
