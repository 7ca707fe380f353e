"""Experiment files: read, compose (runs, sweeps, overrides), validate, resolve against plugins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nnrun.config.components import resolve
from nnrun.config.compose import Override, compose
from nnrun.config.schema import ComponentSpec, RunConfig
from nnrun.config.validate import validate_run
from nnrun.errors import ConfigError
from nnrun.registry import Registry


@dataclass
class Experiment:
    """A validated experiment: its name, seed and fully resolved runs."""

    name: str
    seed: int
    path: Path
    runs: list[RunConfig]
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment as TOML-ready data; loading it again gives the same runs."""
        first = self.runs[0].experiment.model_dump()
        return {
            "experiment": {**first, "name": self.name, "seed": self.seed},
            "runs": [{"name": run.name, **run.to_dict()} for run in self.runs],
        }


def load_experiment(
    path: str | Path,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
    seed: int | None = None,
) -> Experiment:
    """Read and validate an experiment file; raise `ConfigError` with one clear sentence if it's wrong.

    `seed` is used when the file sets none (a resume passes the seed drawn the first time).
    """
    from nnrun.experiment.expr import compile_expression
    from nnrun.loading import load_registry

    path = Path(path)
    parsed = [Override.parse(text) for text in overrides]
    experiment, composed = compose(path, parsed, seed)
    text = path.read_text(encoding="utf-8")
    registry = registry if registry is not None else load_registry()
    runs = []
    for name, tables in composed:
        label = f"run {name!r}: " if len(composed) > 1 else ""
        try:
            run = validate_run(path, text, name, tables, label)
            try:
                run = resolve(run, registry)
                _check_fit(run)
                if run.data is not None:
                    compile_expression(run.data.expr)
            except ConfigError as error:
                raise ConfigError(f"{path}: {label}{error}") from None
        except ConfigError as error:
            if overrides:  # the mistake may be in an override rather than in the file
                raise ConfigError(f"{error} (with the overrides {' '.join(overrides)})") from None
            raise
        runs.append(run)
    return Experiment(str(experiment["name"]), int(experiment["seed"]), path, runs, list(overrides))


def _check_fit(run: RunConfig) -> None:
    """Things only a whole run can tell: the network's ends fit the data, the device exists."""
    device = run.experiment.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"[experiment] device = {device!r}, but torch has no CUDA device here "
            f"(torch {torch.__version__}); use device = 'cpu'"
        )
    if run.model is not None and run.data is not None:
        layers = run.model.layers
        if layers[0] != 1 or layers[-1] != 1:
            raise ConfigError(
                f"[model] layers = {layers}: [data] kind = 'function' has one input and one output, "
                f"so the first and last widths must be 1 (e.g. layers = [1, 100, 1])"
            )


__all__ = ["ComponentSpec", "Experiment", "Override", "RunConfig", "load_experiment"]
