"""watcher: find new coverage related to seed articles."""


def version() -> str:
    """The installed package's version (one source: pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("watcher")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
    # The Version field read from the metadata's header lines: `dist.version` parses the whole file
    # as an e-mail message first, the README included (~0.4 % of `watcher run`'s start-up, which
    # needs the version for the feed client's User-Agent).
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():  # the end of the header
            break
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "version":
            return value.strip()
    return dist.version
