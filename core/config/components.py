"""Check every component a run names against the registry, fill in its defaults, and build it."""

from __future__ import annotations

from typing import Any

import torch

from nnrun.config.schema import ComponentSpec, RunConfig, SolverSpec
from nnrun.errors import ConfigError, NnrunError
from nnrun.hyperparameters import hyperparameters, supplied_keywords, validate
from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter
from nnrun.registry import Registry

#: (kind, key path) of every place a run can name a component.
SLOTS: list[tuple[str, tuple[str, ...]]] = [
    ("activations", ("model", "activation")),
    ("activations", ("model", "output_activation")),
    ("initializers", ("model", "init")),
    ("losses", ("loss",)),
    ("optimizers", ("optimizer",)),
    ("schedulers", ("scheduler",)),
    ("solvers", ("solver",)),
    ("optimizers", ("solver", "optimizer")),
]


def component_slots(run: RunConfig) -> list[tuple[str, str, ComponentSpec | None]]:
    """(kind, where, spec) for every component the run uses; `where` reads like "[model] init"."""
    out = []
    for kind, path in SLOTS:
        spec: object = run
        for part in path:
            spec = getattr(spec, part, None) if spec is not None else None
        if path == ("loss",) and run.experiment.task != "train":
            spec = None
        out.append((kind, _where(path), spec))
    return out


def _where(path: tuple[str, ...]) -> str:
    return f"[{path[0]}] {path[1]}" if path[0] == "model" else f"[{'.'.join(path)}]"


def resolve(run: RunConfig, registry: Registry) -> RunConfig:
    """Return `run` with every component checked and its hyperparameters' defaults filled in."""
    updates: dict[tuple[str, ...], ComponentSpec] = {}
    for (kind, where, spec), (_, path) in zip(component_slots(run), SLOTS):
        if spec is None:
            continue
        try:
            cls = registry.kind(kind)[spec.name]
        except NnrunError as error:
            raise ConfigError(f"{where}: {error}") from None
        params = validate(cls, kind, spec.name, spec.params, where)
        if kind == "optimizers" and "lr" in params and not params["lr"] > 0:
            raise ConfigError(f"{where}: lr = {params['lr']!r}: the learning rate must be > 0")
        _check_arguments(registry, kind, _respec(spec, params), where)
        filled = {
            h.name: h.default
            for h in hyperparameters(cls, kind)
            if not h.required and _fits_toml(h.default)
        }
        filled.update(params)
        updates[path] = _respec(spec, filled)
    return _with(run, updates)


def _fits_toml(value: Any) -> bool:
    """Defaults that the resolved config.toml can hold (None means "not set" and is left out)."""
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_fits_toml(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _fits_toml(v) for k, v in value.items())
    return False


def build(registry: Registry, kind: str, spec: ComponentSpec, *args: Any) -> Any:
    """Instantiate a component from its (already resolved) spec; `args` are what nnrun supplies.

    A solver's `optimizer` is a field of its spec, not one of its params: nnrun builds that one.
    """
    cls = registry.kind(kind)[spec.name]
    return cls(*args, **spec.params, **supplied_keywords(cls, registry))


def _check_arguments(registry: Registry, kind: str, spec: ComponentSpec, where: str) -> None:
    """Construct once so the component's own argument checks (torch-style) run before training;
    optimizers get a throwaway parameter, schedulers a throwaway optimizer."""
    args: list[Any] = []
    if kind in ("optimizers", "schedulers"):
        args = [[Parameter(torch.zeros(1))]]
        if kind == "schedulers":
            args = [Optimizer(args[0], lr=0.1)]
    try:
        build(registry, kind, spec, *args)
    except NnrunError as error:
        raise ConfigError(f"{where}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {kind[:-1]} {spec.name!r}: {error}") from None


def _respec(spec: ComponentSpec, params: dict[str, Any]) -> ComponentSpec:
    if isinstance(spec, SolverSpec):
        return SolverSpec(name=spec.name, optimizer=spec.optimizer, **params)
    return ComponentSpec(name=spec.name, **params)


def _with(run: RunConfig, updates: dict[tuple[str, ...], ComponentSpec]) -> RunConfig:
    data = run.model_dump(exclude_none=True)
    for path, spec in updates.items():
        *parents, leaf = path
        table = data
        for part in parents:
            table = table[part]
        keep = (
            {"optimizer": table[leaf]["optimizer"]}
            if leaf == "solver" and "optimizer" in table[leaf]
            else {}
        )
        table[leaf] = spec.to_dict() | keep
    return RunConfig(**data)
