"""Config validation errors in the user's words.

pydantic says ``digests.0.schedul: Extra inputs are not permitted``; a user wants
``digest 'morning': unknown key 'schedul' (did you mean 'schedule'?)``. Pure: the
validation error and the raw TOML data in, one line out.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def describe(err: ValidationError, data: dict[str, Any], root: type[BaseModel]) -> str:
    return "; ".join(_one(e, data, root) for e in err.errors())


def _one(e: Any, data: dict[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(e["loc"])
    where = _where(loc, data)
    kind = e["type"]
    key = str(loc[-1]) if loc else ""
    value = e.get("input")
    ctx = e.get("ctx") or {}
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        hint = difflib.get_close_matches(key, known, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else (f" (known: {', '.join(known)})" if known else "")
        return f"{_prefix(loc[:-1], data)}unknown key {key!r}{more}"
    if kind == "missing":
        return f"{_prefix(loc[:-1], data)}missing {key!r}"
    if not loc:
        return e["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{where}: must be {ctx.get('expected', '?')}, not {value!r}"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"):
        return f"{where}: expected a number, not {value!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{where}: expected true or false, not {value!r}"
    if kind == "string_type":
        return f"{where}: expected text in quotes, not {value!r}"
    if kind == "list_type":
        return f'{where}: expected a list such as ["a", "b"], not {value!r}'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{where}: expected a table of keys and values, not {value!r}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        return f"{where}: must be {words} {ctx.get(name)}, not {value!r}"
    return f"{where}: {e['msg'].removeprefix('Value error, ')}"


def _prefix(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    return f"{_where(loc, data)}: " if loc else ""


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """``[polling] interval``, ``digest 'morning' schedule``, ``feed 'BBC' interval``, ``[profiles.x]``."""
    if not loc:
        return "(top level)"
    section, rest = str(loc[0]), loc[1:]
    if section in ("digests", "feeds") and rest and isinstance(rest[0], int):
        items = data.get(section)
        item = items[rest[0]] if isinstance(items, list) and rest[0] < len(items) else {}
        label = section[:-1]
        name = item.get("name") if isinstance(item, dict) else None
        if section == "feeds" and isinstance(item, dict):
            name = name or item.get("url")
        who = f"{label} {name!r}" if name else f"the {_ordinal(rest[0] + 1)} [[{section}]]"
        tail = ".".join(str(x) for x in rest[1:])
        return f"{who} {tail}".strip()
    if section == "profiles" and rest:
        tail = ".".join(str(x) for x in rest[1:])
        return f"[profiles.{rest[0]}] {tail}".strip()
    tail = ".".join(str(x) for x in rest)
    return f"[{section}] {tail}".strip() if tail else f"[{section}]"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (for 'did you mean')."""
    model: type[BaseModel] | None = root
    skip_next = False
    for part in loc:
        if skip_next:  # a list index or a dict key (profile name)
            skip_next = False
            continue
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        model, skip_next = _inner_model(model.model_fields[part].annotation)
    return sorted(k for k, f in model.model_fields.items() if not f.exclude) if model else []


def _inner_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model in ``X``, ``X | None``, ``list[X]`` or ``dict[str, X]``; True when in a container."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, dict):
        inner, _ = _inner_model(args[-1]) if args else (None, False)
        return inner, True
    if origin in (typing.Union, types.UnionType):
        for a in args:
            inner, wrapped = _inner_model(a)
            if inner is not None:
                return inner, wrapped
    return None, False
