"""Reproducible installs: every dependency pinned in requirements.lock, installs use it, images pinned.

A dependency added to pyproject.toml without `make lock` fails here, naming the command to run.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"requirements.lock: {line!r} is not name==version: run `make lock`"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return [Requirement(r) for r in reqs]


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    pins = _pins()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}: "
            "run `make lock`"
        )


def test_the_environment_under_test_was_installed_from_the_lock() -> None:
    pins = _pins()
    drift = []
    for req in _declared():
        name = canonicalize_name(req.name)
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue  # an optional tool not installed here
        if installed != pins[name]:
            drift.append(f"{req.name} {installed} (locked {pins[name]})")
    assert not drift, "installed versions differ from requirements.lock: " + ", ".join(drift)


def test_installs_go_through_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install [^\n]*-c \$\(LOCK\)", makefile)
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile  # a changed lock re-installs
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install -c requirements.lock ." in dockerfile
    # The base image's standard library comes without bytecode: compiled once at build, not per start.
    assert re.search(r"^RUN python -m compileall .*sysconfig\.get_path\(\"stdlib\"\)", dockerfile, re.M)
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base and re.search(r":\d+\.\d+\.\d+", base.group(1)), f"unpinned base {base and base.group(1)}"


@pytest.mark.parametrize("service", ["db", "mailpit"])
def test_compose_images_are_pinned(service: str) -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    block = re.search(rf"\n  {service}:\n((?:(?:    .*)?\n)*)", text)
    image = re.search(r"^    image:\s*(\S+)", block.group(1), re.M) if block else None
    assert image, f"service {service} has no image"
    tag = image.group(1).rpartition(":")[2]
    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.]+)?", tag), f"{service}: {image.group(1)} not pinned"
