"""Check every component a run names against the registry, fill in its defaults, and construct
it once, so that its constructor's own argument rules run at load time, not mid-run."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import torch

from nnrun.config.schema import (
    COMPONENT_LISTS,
    COMPONENT_SLOTS,
    ComponentSpec,
    DataSection,
    RunConfig,
    SolverSpec,
)
from nnrun.errors import ConfigError, NnrunError
from nnrun.factory import as_spec, build
from nnrun.hyperparameters import hyperparameters, validate
from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter
from nnrun.registry import Registry

#: A problem found in a run: the key path it is about (for its line) and the message.
Problem = tuple[tuple[str, ...], str]
#: How deep components may nest (a warm-up `after` a warm-up ...), far more than any real use.
MAX_NESTING = 8


def component_slots(run: RunConfig) -> list[tuple[str, str, ComponentSpec | None]]:
    """(kind, where, spec) for every component the run uses; `where` reads like "[model] init"."""
    out: list[tuple[str, str, ComponentSpec | None]] = []
    for kind, path in COMPONENT_SLOTS:
        spec: object = run
        for part in path:
            spec = getattr(spec, part, None) if spec is not None else None
        if path == ("loss",) and run.experiment.task != "train":
            spec = None
        out.append((kind, _where(path), spec if isinstance(spec, ComponentSpec) else None))
    return out


def listed_components(run: RunConfig) -> list[tuple[str, str, ComponentSpec]]:
    """(kind, where, spec) for every entry of the run's component lists (`[train] metrics`);
    `where` reads like "[train] metrics"."""
    out = []
    for kind, path in COMPONENT_LISTS:
        specs: Any = run
        for part in path:
            specs = getattr(specs, part, None) if specs is not None else None
        out += [(kind, f"[{path[0]}] {'.'.join(path[1:])}", spec) for spec in specs or []]
    return out


def _where(path: tuple[str, ...]) -> str:
    return f"[{path[0]}] {path[1]}" if path[0] == "model" else f"[{'.'.join(path)}]"


def resolve_components(
    run: RunConfig, registry: Registry, base_dir: Path | None = None
) -> tuple[RunConfig, list[Problem]]:
    """`run` with every component checked and its defaults filled in, and what is wrong with it.
    The dataset's paths resolve against `base_dir` (the experiment file's folder)."""
    updates: dict[tuple[str, ...], ComponentSpec | list[ComponentSpec]] = {}
    problems: list[Problem] = []
    data = _resolved_data(run.data, registry, base_dir or Path(), problems)
    for (kind, where, spec), (_, path) in zip(component_slots(run), COMPONENT_SLOTS):
        if spec is None:
            continue
        filled = _checked(registry, kind, spec.to_dict(), where, path, problems)
        if filled is not None:
            updates[path] = _respec(spec, filled)
    for kind, path in COMPONENT_LISTS:
        entries = [(where, spec) for k, where, spec in listed_components(run) if k == kind]
        checked = [
            _checked(registry, kind, spec.to_dict(), where, path, problems)
            for where, spec in entries
        ]
        if entries:
            updates[path] = [ComponentSpec(**values) for values in checked if values is not None]
    solver = run.solver
    if solver is not None and solver.optimizer is not None and solver.params.get("lr") is not None:
        problems.append(
            (
                ("solver", "lr"),
                "[solver] lr is the step of the solver's own descent, and [solver.optimizer] "
                "replaces that descent: set lr in [solver.optimizer] instead",
            )
        )
    if problems:
        return run, problems
    resolved = _with(run, updates)
    return (resolved.model_copy(update={"data": data}) if data is not None else resolved), []


def _resolved_data(
    data: DataSection | None, registry: Registry, base_dir: Path, problems: list[Problem]
) -> DataSection | None:
    """[data] with the dataset's defaults filled in and its paths made absolute, so that the
    resolved config.toml names the same files wherever it is read from (a resume reads it from
    the run directory)."""
    if data is None:
        return None
    spec = data.spec()
    try:
        cls = registry.kind("datasets")[data.kind]
    except NnrunError:
        cls = None  # _checked reports it
    for key in getattr(cls, "paths", ()):
        value = spec.get(key)
        if isinstance(value, str):
            try:
                spec[key] = str(data_path(base_dir, value))
            except ConfigError as error:
                problems.append((("data", key), f"[data] {key} = {value!r}: {error}"))
                return None
    filled = _checked(registry, "datasets", spec, "[data]", ("data",), problems)
    if filled is None:
        return None
    name = filled.pop("name")
    params = {key: _lists(value) for key, value in filled.items()}  # as TOML reads them back
    return DataSection(
        kind=name, split=data.split, standardize=data.standardize, reseed=data.reseed, **params
    )


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def data_path(base_dir: Path, value: str) -> Path:
    """`value` against the experiment's folder, absolute; only an existing regular file (a
    symbolic link to one too) is accepted, never a directory, FIFO or device."""
    if not value.strip():
        raise ConfigError("is empty; give a file's path")
    path = (base_dir / Path(value).expanduser()).absolute()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"there is no file {str(path)!r}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {str(path)!r}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{str(path)!r} is not a regular file")
    return path


def component_problems(
    tables: dict[str, Any], registry: Registry, base_dir: Path | None = None
) -> list[Problem]:
    """The components' problems in a run the schema refused, so that they are reported with the
    schema's: every component written as a name or a table naming one is checked."""
    problems: list[Problem] = []
    experiment = tables.get("experiment")
    task = experiment.get("task", "train") if isinstance(experiment, dict) else "train"
    for kind, path in COMPONENT_SLOTS:
        if (path[0] == "solver") != (task == "solve"):
            continue  # a table the task does not use: the schema says so
        value: Any = tables
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) or (
            isinstance(value, dict) and isinstance(value.get("name"), str)
        ):
            _checked(registry, kind, as_spec(value), _where(path), path, problems)
    if task == "train":
        for kind, path in COMPONENT_LISTS:
            value = tables
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            for item in value if isinstance(value, list) else []:
                if isinstance(item, str) or (
                    isinstance(item, dict) and isinstance(item.get("name"), str)
                ):
                    spec = as_spec(item)
                    where = f"[{path[0]}] {'.'.join(path[1:])}"
                    _checked(registry, kind, spec, where, path, problems)
    data = tables.get("data")
    if task == "train" and isinstance(data, dict) and isinstance(data.get("kind", "function"), str):
        params = {k: v for k, v in data.items() if k not in DataSection.model_fields}
        section = DataSection(kind=data.get("kind") or "function", **params)
        _resolved_data(section, registry, base_dir or Path(), problems)
    return problems


def _checked(
    registry: Registry,
    kind: str,
    spec: dict[str, Any],
    where: str,
    path: tuple[str, ...],
    problems: list[Problem],
) -> dict[str, Any] | None:
    """The spec with its defaults, checked and built once; None (and a problem) if it is wrong."""
    try:
        filled = resolve_spec(registry, kind, spec, where, path)
        if kind == "solvers":
            filled.pop("optimizer", None)  # checked in its own slot
        _construct(registry, kind, filled, where, path)
    except _Located as error:
        problems.append((error.loc, str(error)))
        return None
    return filled


class _Located(ConfigError):
    def __init__(self, message: str, loc: tuple[str, ...]):
        super().__init__(message)
        # [data] names its dataset with `kind`
        self.loc = ("data", "kind") if loc == ("data", "name") else loc


def resolve_spec(
    registry: Registry, kind: str, spec: dict[str, Any], where: str, path: tuple[str, ...]
) -> dict[str, Any]:
    """`spec` checked (types, nested specs too) with every default TOML can hold filled in."""
    values = dict(spec)
    name = values.pop("name")
    try:
        cls = registry.kind(kind)[name]
    except NnrunError as error:
        raise _Located(f"{where}: {error}", (*path, "name")) from None
    nested = {h.name: h for h in hyperparameters(cls, kind) if h.builds is not None}
    driver = values.pop("optimizer", None) if kind == "solvers" else None
    try:
        values = validate(cls, kind, name, values, where)
    except ConfigError as error:
        raise _Located(str(error), (*path, error.key or "name")) from None
    for key, h in nested.items():
        if values.get(key) is not None:
            inner = (*path, key)
            if len(inner) - len(path[:1]) > MAX_NESTING:
                raise _Located(f"{where}: components nest at most {MAX_NESTING} deep", inner)
            try:
                value = as_spec(values[key], key, h.builds[:-1])  # type: ignore[index]
            except ConfigError as error:
                raise _Located(f"{where}: {error}", inner) from None
            values[key] = resolve_spec(registry, h.builds, value, _where(inner), inner)  # type: ignore[arg-type]
    filled = {
        h.name: h.default
        for h in hyperparameters(cls, kind)
        if not h.required and _fits_toml(h.default)
    }
    filled.update(values)
    if driver is not None:
        filled["optimizer"] = driver
    return {"name": name, **filled}


def _construct(
    registry: Registry, kind: str, spec: dict[str, Any], where: str, path: tuple[str, ...]
) -> None:
    """Build once, so the component's own argument checks (torch-style) run before training;
    optimizers get a throwaway parameter, schedulers a throwaway optimizer. Nested components
    (a warm-up's `after`, a wrapper's `inner`) are built first, on their own, so that their
    errors name them and their line rather than the component around them."""
    cls = registry.kind(kind)[spec["name"]]
    for h in hyperparameters(cls, kind):
        nested = spec.get(h.name)
        if h.builds is not None and isinstance(nested, dict):
            inner = (*path, h.name)
            _construct(registry, h.builds, nested, _where(inner), inner)
    args: list[Any] = []
    if kind in ("optimizers", "schedulers"):
        args = [[Parameter(torch.zeros(1))]]
        if kind == "schedulers":
            args = [Optimizer(args[0], lr=0.1)]
    try:
        build(registry, kind, spec, *args)
    except ConfigError as error:
        if not error.key:
            raise _Located(f"{where}: {error}", (*path, "name")) from None
        message = f"{where}: {kind[:-1]} {spec['name']!r}: {error}"
        raise _Located(message, (*path, error.key)) from None
    except NnrunError as error:
        raise _Located(f"{where}: {error}", (*path, "name")) from None
    except (ValueError, TypeError) as error:
        key = _key_named(str(error), spec)
        raise _Located(f"{where}: {kind[:-1]} {spec['name']!r}: {error}", (*path, key)) from None
    except Exception as error:  # a plugin's constructor failing otherwise: its bug, named
        provider = registry.component(kind, spec["name"]).provider
        raise _Located(
            f"{where}: {kind[:-1]} {spec['name']!r} from {provider} raised "
            f"{type(error).__name__}: {error}",
            (*path, "name"),
        ) from None


def _key_named(message: str, spec: dict[str, Any]) -> str:
    """The hyperparameter a constructor's message is about ("Invalid T_max: 0"), for its line."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
    return next((key for key in spec if key != "name" and key in words), "name")


def _fits_toml(value: Any) -> bool:
    """Defaults that the resolved config.toml can hold (None means "not set" and is left out)."""
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_fits_toml(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _fits_toml(v) for k, v in value.items())
    return False


def _respec(spec: ComponentSpec, values: dict[str, Any]) -> ComponentSpec:
    if isinstance(spec, SolverSpec):
        return SolverSpec(**values)
    return ComponentSpec(**values)


def _with(
    run: RunConfig, updates: dict[tuple[str, ...], ComponentSpec | list[ComponentSpec]]
) -> RunConfig:
    data = run.model_dump(exclude_none=True)
    for path, spec in updates.items():
        *parents, leaf = path
        table = data
        for part in parents:
            table = table[part]
        if isinstance(spec, list):
            table[leaf] = [item.to_dict() for item in spec]
            continue
        keep = (
            {"optimizer": table[leaf]["optimizer"]}
            if leaf == "solver" and "optimizer" in table[leaf]
            else {}
        )
        table[leaf] = spec.to_dict() | keep
    return RunConfig(**data)
