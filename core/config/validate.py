"""Validate composed runs with the schema and turn each of pydantic's errors into a readable line."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from nnrun.config.compose import line_of
from nnrun.config.schema import ComponentSpec, RunConfig
from nnrun.errors import suggest

HEADER = re.compile(r"\[\[?[^\[\]]+\]\]?")


#: A problem ready to print: the ':LINE' it is on ('' when no single line holds it), and what.
Located = tuple[str, str]


def validate_run(
    text: str, name: str, tables: dict[str, Any]
) -> tuple[RunConfig | None, list[Located]]:
    """The run checked against the schema, or None and every problem pydantic found in it."""
    try:
        return RunConfig(name=name, **tables), []
    except pydantic.ValidationError as error:
        return None, [(_line(text, _loc(e), name), describe(e)) for e in telling(error.errors())]


def telling(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """The errors worth reporting, unknown keys first: a typo'd key explains the "missing" error
    it causes in the same table, so that one is left out."""
    rank = {"extra_forbidden": 0, "missing": 2}
    typo_tables = {tuple(_loc(e)[:-1]) for e in errors if e["type"] == "extra_forbidden"}
    kept = [e for e in errors if e["type"] != "missing" or tuple(_loc(e)[:-1]) not in typo_tables]
    return sorted(kept, key=lambda e: rank.get(e["type"], 1))


def _loc(error: ErrorDetails) -> list[str]:
    return [str(part) for part in error["loc"] if not isinstance(part, int)]


def line_for(text: str, loc: tuple[str, ...] | list[str], run: str = "") -> str:
    """':LINE' of the key at `loc`, else of the nearest table above it that is written, or ''."""
    loc = list(loc)
    while loc:
        line = _line(text, loc, run)
        if line:
            return line
        loc = loc[:-1]
    return ""


def describe(error: ErrorDetails) -> str:
    """One pydantic error as "[table] key = value: what was expected"."""
    loc = _loc(error)
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    if error["type"] == "value_error" and isinstance(error.get("input"), dict):
        return f"[{'.'.join(loc)}] {message}"  # a rule about the table as a whole
    table, key = _table_and_key(loc)
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        return (
            f"{table}unknown key {key!r}{suggest(key, allowed)}; "
            f"{table.strip() or 'the file'} takes {', '.join(allowed)}"
        )
    if error["type"] == "missing":
        return f"{table}{key!r} is required"
    index = "".join(f"[{part}]" for part in error["loc"][len(loc) :] if isinstance(part, int))
    return f"{table}{key}{index} = {_toml(error.get('input'))}: {message}"


def _line(text: str, loc: list[str], run: str = "") -> str:
    """':LINE' where the key at `loc` is written, looking only inside its own table, so `lr` in
    [train] is not placed on [optimizer]'s `lr`. A [[runs]] entry named `run` (or the sweep over
    it) that sets the key wins over the base tables. '' if not found."""
    if len(loc) < 2:
        return line_of(text, loc[0]) if loc else ""
    *table, key = loc
    header: list[str] = []
    block: str | None = None  # the name of the [[runs]] entry we are in, "" before it names itself
    found: dict[str | None, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if HEADER.fullmatch(stripped):
            header = [p.strip().strip("\"'") for p in stripped.strip("[]").split(".")]
            if stripped.startswith("[[runs]]"):
                block = ""
            elif header[0] != "runs":
                block = None
            header = header[1:] if header[:1] == ["runs"] else header
            continue
        lead = [p.strip().strip("\"'") for p in stripped.split("=", 1)[0].split(".")]
        if block == "" and header == [] and lead == ["name"]:
            block = stripped.split("=", 1)[1].strip().strip("\"'")
            if "" in found:  # the entry set the key before it named itself
                found.setdefault(block, found.pop(""))
        inline = stripped.split("{", 1)[-1] if "{" in stripped else ""
        if ("=" in stripped and header + lead == loc) or (
            header + lead == table
            and any(
                part.split("=", 1)[0].strip() == key for part in inline.split(",") if "=" in part
            )
        ):
            found.setdefault(block, number)
    for name, number in found.items():
        if name and (run == name or run.startswith(f"{name},")):
            return f":{number}"
    first = found.get(None, min(found.values(), default=None))
    return f":{first}" if first else ""


def _table_and_key(loc: list[str]) -> tuple[str, str]:
    if len(loc) == 1:
        return "", loc[0]
    return f"[{'.'.join(loc[:-1])}] ", loc[-1]


def _fields_at(loc: list[str]) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        model = _model_of(model.model_fields[part].annotation)
    return [name for name in model.model_fields if name != "name" or model is not RunConfig]


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                return arg
    return ComponentSpec


def _toml(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_toml(item) for item in value)}]"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
