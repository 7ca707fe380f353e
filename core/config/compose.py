"""From an experiment file to a list of plain run tables: parse, merge `[[runs]]`, expand `[sweep]`,
apply command-line overrides. Validation happens afterwards, on each composed run."""

from __future__ import annotations

import copy
import itertools
import math
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from nnrun.errors import ConfigError, suggest
from nnrun.names import name_problem, slug

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from nnrun.config.schema import TABLES

#: `[executor]` is the experiment's as a whole, read by `nnrun.config.executor`, never a run's.
EXECUTOR = "executor"
TOP_LEVEL = [*TABLES, "runs", "sweep", EXECUTOR]
#: The largest experiment file nnrun reads; a real one is a few kilobytes.
MAX_FILE_BYTES = 1 << 20
#: How many runs a file may compose unless its [experiment] max_runs says otherwise.
DEFAULT_MAX_RUNS = 10_000


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


def read_source(path: Path) -> str:
    """The file's text, read once: only a regular file of at most `MAX_FILE_BYTES`, opened so that
    a FIFO or a device swapped in meanwhile cannot block, decoded as UTF-8 (a BOM is dropped)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path}: is a directory, not an experiment file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{path}: not a regular file (a FIFO, device or socket); "
            f"an experiment file is a plain TOML file"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError(f"{path}: not a regular file; an experiment file is plain TOML")
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: experiment files are at most {MAX_FILE_BYTES // 1024} KiB, this one is larger"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: cannot read the file: not UTF-8 text (byte {error.start} is {data[error.start]:#04x}); "
            f"an experiment file is plain TOML"
        ) from None
    if "\0" in text:
        raise ConfigError(
            f"{path}: cannot read the file: it contains NUL bytes; an experiment file is plain TOML"
        )
    return text


def read_document(path: Path, text: str | None = None) -> dict[str, Any]:
    """Parse the file (its `text`, when already read), turning every way it can fail into one
    `ConfigError`."""
    text = read_source(path) if text is None else text
    if not text.strip():
        raise ConfigError(
            f"{path}: the file is empty; an experiment needs at least an [experiment] table"
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(
            f"{path}: invalid TOML: arrays or tables nested too deeply to read"
        ) from None
    for key in document:
        if key not in TOP_LEVEL and key != "experiment":
            raise ConfigError(
                f"{path}{line_of(text, key)}: unknown table [{key}]{suggest(key, TOP_LEVEL)}; "
                f"an experiment file holds {', '.join(f'[{t}]' for t in TOP_LEVEL)}"
            )
    return document


def line_of(text: str, key: str) -> str:
    """':LINE' of the first line that defines `key` (as a key, quoted or not, or a table header),
    or ''. Sweep keys are dotted paths and must be quoted: `"optimizer.lr" = [...]`."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        head = stripped.lstrip("[").split("]")[0].split("=")[0].strip().strip("\"'")
        if (
            head == key
            or head.endswith(f".{key}")
            or f" {key} =" in stripped
            or f"{{{key} =" in stripped
        ):
            return f":{number}"
    return ""


def merge(base: dict[str, Any], over: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """Merge `over` into a copy of `base` key by key; a table naming a different component than the
    base's replaces it whole, so one optimizer's hyperparameters never leak into another's
    (`[experiment] name` names the experiment, not a component: it replaces nothing)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = out.get(key)
        if (
            isinstance(here, dict)
            and isinstance(value, dict)
            and ((top and key == "experiment") or not _renames(here, value))
        ):
            out[key] = merge(here, value, top=False)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _renames(base: dict[str, Any], over: dict[str, Any]) -> bool:
    return "name" in over and over["name"] != base.get("name")


def set_path(document: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set one dotted key. Following the same rule as `merge`, setting a component's `name` to
    another component starts that component from its defaults."""
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
    if leaf == "name" and path[0] != "experiment" and table.get("name") not in (None, value):
        table.clear()
    table[leaf] = value


def compose(
    path: Path,
    overrides: Iterable[Override] = (),
    seed: int | None = None,
    text: str | None = None,
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Return the file's [experiment] table (name and seed filled in) and its runs, each a
    (name, tables) pair ready for validation. A run may override any table, [experiment] too.

    `seed` is the seed for a file that sets none (drawn at random when not given either); `text`
    is the file's text when the caller has read it already."""
    text = read_source(path) if text is None else text
    document = read_document(path, text)
    experiment = document.get("experiment")
    if not isinstance(experiment, dict):
        raise ConfigError(
            f"{path}: missing [experiment] table (with at least task = 'train' or 'solve')"
        )
    experiment.setdefault("name", path.stem)
    if "seed" not in experiment:
        experiment["seed"] = secrets.randbelow(2**31) if seed is None else seed
    document.pop(EXECUTOR, None)
    given_runs = "runs" in document
    runs = document.pop("runs", None) or [{}]
    sweep = document.pop("sweep", None) or {}
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise ConfigError(f"{path}{line_of(text, 'runs')}: [[runs]] must be an array of tables")
    if not isinstance(sweep, dict) or not all(isinstance(v, list) and v for v in sweep.values()):
        raise ConfigError(
            f"{path}{line_of(text, 'sweep')}: every [sweep] key maps to a non-empty list, "
            f'e.g. "optimizer.lr" = [0.1, 0.01]'
        )
    for key in sweep:
        if key.split(".")[0] not in TABLES:
            raise ConfigError(
                f"{path}{line_of(text, key)}: [sweep] {key!r}: unknown table"
                f"{suggest(key.split('.')[0], TABLES)}"
            )
        if key in ("experiment.seeds", "experiment.repeats"):
            raise ConfigError(
                f"{path}{line_of(text, key)}: [sweep] {key!r}: the seeds repeat every sweep cell "
                f"already; set [experiment] {key.split('.')[1]} instead of sweeping it"
            )
    overrides = [override for override in overrides if override.path[0] != EXECUTOR]
    for override in overrides:
        if override.path[0] not in TABLES:
            raise ConfigError(
                f"override {override.text!r}: unknown table {override.path[0]!r}"
                f"{suggest(override.path[0], TABLES)}; overrides start with one of {', '.join([*TABLES, EXECUTOR])}"
            )
        # a component's new name resets its table, so it covers every key swept inside it
        covers = override.path
        if covers[-1] == "name" and covers[0] != "experiment" and len(covers) > 1:
            covers = covers[:-1]
        for key in sweep:
            swept = tuple(key.split("."))
            shorter = min(len(swept), len(covers))
            if swept[:shorter] == covers[:shorter]:
                raise ConfigError(
                    f"override {override.text!r}: [sweep] varies {key!r}"
                    f"{line_of(text, key) and f' (line {line_of(text, key)[1:]})'}, so the "
                    f"override would make its runs identical; change the sweep instead"
                )
        if override.path[0] == "experiment":  # also names the experiment and seeds it as a whole
            apply_override(document, override)
    seed_counts = [_seed_count(merge(document, run).get("experiment")) for run in runs]
    _check_size(path, text, experiment, len(runs), sweep, seed_counts)

    composed = []
    for index, run in enumerate(runs):
        run = dict(run)
        if given_runs:
            base_name = _run_entry_name(path, text, index, run.pop("name", None))
        else:
            base_name = str(experiment["name"])
        for key in run:
            if key not in TABLES:
                raise ConfigError(
                    f"{path}{_runs_line(text, index)}: [[runs]] {base_name!r}: unknown key "
                    f"{key!r}{suggest(key, TABLES)}; a run may set {', '.join(TABLES)}"
                )
        tables = merge(document, run)
        for combination in _grid(sweep):
            tables_here = copy.deepcopy(tables)
            for key, value in sorted(combination, key=lambda kv: not kv[0].endswith(".name")):
                set_path(tables_here, key.split("."), value)
            for override in overrides:
                apply_override(tables_here, override)
            name = _run_name(base_name, combination, len(runs) > 1 or not sweep)
            composed += repeat_over_seeds(path, text, name, tables_here)
    names = [name for name, _ in composed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: run names must be unique; repeated: {', '.join(duplicates)}")
    folders: dict[str, str] = {}
    for name in names:
        other = folders.setdefault(slug(name).lower(), name)  # slugs are ASCII: lower() folds them
        if other != name:
            raise ConfigError(
                f"{path}: runs {other!r} and {name!r} would share one checkpoint folder "
                f"({slug(name)!r}, on a file system that ignores case); rename one of them"
            )
    return experiment, composed


def apply_override(tables: dict[str, Any], override: Override) -> None:
    """`set_path`, where giving the seeds (or how many to derive) replaces the other way of
    giving them, so `-o experiment.seeds=[1,2]` works on a file that sets `repeats`."""
    set_path(tables, override.path, override.value)
    other = {("experiment", "seeds"): "repeats", ("experiment", "repeats"): "seeds"}
    if override.path in other:
        tables["experiment"].pop(other[override.path], None)


def run_seeds(experiment: Any) -> list[int] | None:
    """The seeds an [experiment] table repeats its configuration over: `seeds` as given, or
    `repeats` seeds counted up from `seed` (seed, seed + 1, ...); None when it sets neither, or
    sets them wrongly (the schema then says how)."""
    if not isinstance(experiment, dict):
        return None
    seeds, repeats, seed = (experiment.get(key) for key in ("seeds", "repeats", "seed"))
    if seeds is not None and repeats is not None:
        return None
    if seeds is not None:
        valid = isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds)
        if valid and all(_integer(s) and 0 <= s < 2**63 for s in seeds):
            return list(seeds)
        return None
    if _integer(repeats) and repeats >= 1 and _integer(seed) and seed >= 0:
        return [seed + index for index in range(repeats)]
    return None


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _seed_count(experiment: Any) -> int:
    """How many runs `run_seeds` makes of one configuration, counted without making them."""
    if isinstance(experiment, dict) and "seeds" not in experiment:
        repeats, seed = experiment.get("repeats"), experiment.get("seed")
        if _integer(repeats) and repeats >= 1 and _integer(seed) and seed >= 0:
            return int(repeats)
    seeds = run_seeds(experiment)
    return 1 if seeds is None else len(seeds)


def repeat_over_seeds(
    path: Path, text: str, name: str, tables: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """One configuration's runs: itself, or with seeds one run per seed, named `name/seed=S`,
    seeded with S and grouped under `name` with the configuration's own seed (which draws the
    data)."""
    experiment = tables.get("experiment")
    seeds = run_seeds(experiment)
    if seeds is None:
        return [(name, tables)]
    assert isinstance(experiment, dict)  # run_seeds found seeds in it
    if max(seeds) >= 2**63:
        raise ConfigError(
            f"{path}{line_of(text, 'repeats')}: [experiment] repeats = {experiment['repeats']} "
            f"counts up from seed = {experiment['seed']} past the largest seed, 2**63 - 1; "
            f"start lower or give the seeds"
        )
    out = []
    for seed in seeds:
        here = copy.deepcopy(tables)
        here["experiment"]["seed"] = seed
        here["group"] = {"name": name, "seed": experiment["seed"]}
        out.append((f"{name}/seed={seed}", here))
    return out


def _runs_line(text: str, index: int) -> str:
    """':LINE' of the `index`-th `[[runs]]` header, or ''."""
    headers = [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.split("#", 1)[0].strip() == "[[runs]]"
    ]
    return f":{headers[index]}" if index < len(headers) else ""


def _run_entry_name(path: Path, text: str, index: int, name: Any) -> str:
    """A `[[runs]]` entry's own name, which names its folder: required, and held to the rules."""
    where = f"{path}{_runs_line(text, index)}: [[runs]] entry {index + 1}"
    if name is None:
        raise ConfigError(f'{where} has no name; give every run one, e.g. name = "baseline"')
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name = {name!r}: a name is a string")
    problem = name_problem(name)
    if problem:
        raise ConfigError(f"{where}: name = {name!r}: {problem}")
    return name


def _check_size(
    path: Path,
    text: str,
    experiment: dict[str, Any],
    runs: int,
    sweep: dict[str, list[Any]],
    seed_counts: list[int],
) -> None:
    """Refuse a sweep larger than `max_runs` before composing it (a 10^12 grid would hang);
    `seed_counts` says how many seeds each [[runs]] entry repeats over."""
    limit = experiment.get("max_runs", DEFAULT_MAX_RUNS)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return  # the schema reports it
    cells = math.prod(len(values) for values in sweep.values())
    total = sum(seed_counts) * cells
    if total > limit:
        sizes = " × ".join(str(len(values)) for values in sweep.values())
        seeded = set(seed_counts) != {1}
        seeds = f" × {max(seed_counts):,} seeds" if seeded else ""
        line = line_of(text, "sweep") if sweep or not seeded else ""
        line = line or line_of(text, "seeds") or line_of(text, "repeats")
        raise ConfigError(
            f"{path}{line}: the experiment composes {total:,} runs "
            f"({runs} [[runs]] × {sizes or '1'} [sweep] values{seeds}), more than "
            f"[experiment] max_runs = {limit:,}; sweep fewer values"
            f"{', repeat over fewer seeds' if seeded else ''} or raise max_runs"
        )


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
