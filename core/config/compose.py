"""From an experiment file to a list of plain run tables: parse, merge `[[runs]]`, expand `[sweep]`,
apply command-line overrides. Validation happens afterwards, on each composed run."""

from __future__ import annotations

import copy
import itertools
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnrun.errors import ConfigError, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from nnrun.config.schema import TABLES

TOP_LEVEL = [*TABLES, "runs", "sweep"]


@dataclass(frozen=True)
class Override:
    """`-o key.path=value` from the command line; `value` is parsed as TOML, else kept as a string."""

    path: tuple[str, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {text!r}: expected key.path=value, e.g. optimizer.lr=0.01")
        return cls(tuple(key.split(".")), parse_value(raw.strip()), text)


def parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word: `optimizer.name=adam`


def read_document(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file, turning every way it can fail into one `ConfigError`."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not an experiment file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the file ({error})") from None
    if not text.strip():
        raise ConfigError(
            f"{path}: the file is empty; an experiment needs at least an [experiment] table"
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    for key in document:
        if key not in TOP_LEVEL and key != "experiment":
            raise ConfigError(
                f"{path}{line_of(text, key)}: unknown table [{key}]{suggest(key, TOP_LEVEL)}; "
                f"an experiment file holds {', '.join(f'[{t}]' for t in TOP_LEVEL)}"
            )
    return document


def line_of(text: str, key: str) -> str:
    """':LINE' of the first line that defines `key` (as a key or a table header), or ''."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        head = stripped.lstrip("[").split("]")[0].split("=")[0].strip()
        if (
            head == key
            or head.endswith(f".{key}")
            or f" {key} =" in stripped
            or f"{{{key} =" in stripped
        ):
            return f":{number}"
    return ""


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge `over` into a copy of `base` key by key; a table naming a different component than the
    base's replaces it whole, so one optimizer's hyperparameters never leak into another's."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = out.get(key)
        if isinstance(here, dict) and isinstance(value, dict) and not _renames(here, value):
            out[key] = merge(here, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _renames(base: dict[str, Any], over: dict[str, Any]) -> bool:
    return "name" in over and over["name"] != base.get("name")


def set_path(document: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set a dotted key, following the same rule as `merge` for a component's `name`."""
    *parents, leaf = path
    table = document
    for part in parents:
        child = table.get(part)
        if isinstance(child, str):  # `activation = "relu"` is short for { name = "relu" }
            child = {"name": child}
        elif not isinstance(child, dict):
            child = {}
        table[part] = child
        table = child
    if leaf == "name" and table.get("name") not in (None, value):
        table.clear()
    table[leaf] = value


def compose(
    path: Path, overrides: Iterable[Override] = (), seed: int | None = None
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Return the file's [experiment] table (name and seed filled in) and its runs, each a
    (name, tables) pair ready for validation. A run may override any table, [experiment] too.

    `seed` is the seed for a file that sets none (drawn at random when not given either)."""
    document = read_document(path)
    experiment = document.get("experiment")
    if not isinstance(experiment, dict):
        raise ConfigError(
            f"{path}: missing [experiment] table (with at least task = 'train' or 'solve')"
        )
    experiment.setdefault("name", path.stem)
    if "seed" not in experiment:
        experiment["seed"] = secrets.randbelow(2**31) if seed is None else seed
    runs = document.pop("runs", None) or [{}]
    sweep = document.pop("sweep", None) or {}
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise ConfigError(f"{path}: [[runs]] must be an array of tables")
    if not isinstance(sweep, dict) or not all(isinstance(v, list) and v for v in sweep.values()):
        raise ConfigError(
            f'{path}: every [sweep] key maps to a non-empty list, e.g. "optimizer.lr" = [0.1, 0.01]'
        )
    for key in sweep:
        if key.split(".")[0] not in TABLES:
            raise ConfigError(
                f"{path}: [sweep] {key!r}: unknown table{suggest(key.split('.')[0], TABLES)}"
            )
    overrides = list(overrides)
    for override in overrides:
        if override.path[0] not in TABLES:
            raise ConfigError(
                f"override {override.text!r}: unknown table {override.path[0]!r}"
                f"{suggest(override.path[0], TABLES)}; overrides start with one of {', '.join(TABLES)}"
            )
        if override.path[0] == "experiment":  # also names the experiment and seeds it as a whole
            set_path(document, override.path, override.value)

    composed = []
    for index, run in enumerate(runs):
        run = dict(run)
        base_name = str(
            run.pop("name", None) or (experiment["name"] if len(runs) == 1 else f"run{index + 1}")
        )
        for key in run:
            if key not in TABLES:
                raise ConfigError(
                    f"{path}: [[runs]] {base_name!r}: unknown key {key!r}{suggest(key, TABLES)}; "
                    f"a run may set {', '.join(TABLES)}"
                )
        tables = merge(document, run)
        for combination in _grid(sweep):
            tables_here = copy.deepcopy(tables)
            for key, value in sorted(combination, key=lambda kv: not kv[0].endswith(".name")):
                set_path(tables_here, key.split("."), value)
            for override in overrides:
                set_path(tables_here, override.path, override.value)
            composed.append(
                (_run_name(base_name, combination, len(runs) > 1 or not sweep), tables_here)
            )
    names = [name for name, _ in composed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: run names must be unique; repeated: {', '.join(duplicates)}")
    return experiment, composed


def _grid(sweep: dict[str, list[Any]]) -> list[list[tuple[str, Any]]]:
    keys = list(sweep)
    return [list(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def _run_name(base: str, combination: list[tuple[str, Any]], keep_base: bool) -> str:
    parts = [f"{_label(key)}={_short(value)}" for key, value in combination]
    return ",".join(([base] if keep_base or not parts else []) + parts)


def _label(key: str) -> str:
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return str(value.get("name", "table"))
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)
