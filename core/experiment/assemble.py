"""Turn a resolved run into live objects: data, model, loss, optimizer, scheduler, solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nnrun.config.schema import RunConfig
from nnrun.factory import build, factory
from nnrun.model import MLP
from nnrun.registry import Registry
from nnrun.solver import OptimizerFactory, Solver

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Data:
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    task: str = "regression"
    inputs: tuple[str, ...] = ("x",)
    targets: tuple[str, ...] = ("y",)
    classes: tuple[str, ...] = ()
    standardization: Any = None


def make_data(run: RunConfig) -> Data:
    """The run's dataset, drawn from the experiment seed: every run with the same [data] and seed
    gets the same points."""
    from nnrun.config.expr import compile_expression
    from nnrun.experiment.data import function_dataset, split_dataset

    spec, settings = run.data, run.experiment
    assert spec is not None  # a train run has [data] (RunConfig checks)
    generator = torch.Generator().manual_seed(settings.seed)
    low, high = spec.range
    x, y = function_dataset(
        compile_expression(spec.expr),
        spec.n,
        low,
        high,
        spec.noise,
        generator,
        dtype=DTYPES[settings.dtype],
        device=settings.device,
    )
    if spec.split.val <= 0:
        return Data((x, y), None)
    x_train, y_train, x_val, y_val = split_dataset(x, y, spec.split.val, generator)
    return Data((x_train, y_train), (x_val, y_val))


def make_model(run: RunConfig, registry: Registry) -> MLP:
    """A fresh network; weights drawn from the experiment seed, so every run starts alike."""
    spec, settings = run.model, run.experiment
    assert spec is not None  # a train run has [model] (RunConfig checks)
    torch.manual_seed(settings.seed)
    output = build(registry, "activations", spec.output_activation)
    return MLP(
        spec.layers,
        activation=build(registry, "activations", spec.activation),
        output_activation=None if spec.output_activation.name == "identity" else output,
        initializer=build(registry, "initializers", spec.init),
        dtype=DTYPES[settings.dtype],
        device=settings.device,
    )


def make_solver(run: RunConfig, registry: Registry) -> tuple[Solver, OptimizerFactory | None]:
    spec = run.solver
    assert spec is not None  # a solve run has [solver] (RunConfig checks)
    solver = build(registry, "solvers", spec)
    optimizer = spec.optimizer
    if optimizer is None:
        return solver, None
    return solver, factory(registry, "optimizers", optimizer)


def shuffle_generator(run: RunConfig) -> torch.Generator:
    """Kept apart from the data generator so changing `shuffle` never changes the data."""
    return torch.Generator().manual_seed(run.experiment.seed + 1)
