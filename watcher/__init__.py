"""watcher: find new coverage related to seed articles."""


def version() -> str:
    """The installed package's version (one source: pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("watcher")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
