"""Turn a resolved run into live objects: data, model, loss, optimizer, scheduler, solver."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

import torch

from nnrun.config.schema import RunConfig
from nnrun.dataset import DataContext, LoadedData
from nnrun.experiment.data import Data, Standardization, split
from nnrun.factory import build, factory
from nnrun.model import MLP
from nnrun.registry import Registry
from nnrun.solver import OptimizerFactory, Solver

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def data_generator(run: RunConfig) -> torch.Generator:
    """The one generator every random draw of a run's data comes from (function points, the
    split), seeded by the experiment seed: every run with the same [data] and seed gets the
    same samples and the same split."""
    return torch.Generator().manual_seed(run.experiment.seed)


#: Loaded datasets of this process, newest last: the validation pass loads each distinct [data]
#: once, and the runs (and a sweep's other runs) reuse it instead of reading the file again.
_LOADED: OrderedDict[tuple[Any, ...], tuple[LoadedData, torch.Tensor]] = OrderedDict()
CACHED_DATASETS = 4


def load_data(run: RunConfig, registry: Registry) -> tuple[LoadedData, torch.Generator]:
    """The run's dataset as its plugin gives it (checked, on the CPU), and the data generator in
    the state the loading left it, from which the split is drawn. Cached by the dataset's spec,
    seed and dtype, and by the size and time of each file it reads."""
    spec, settings = run.data, run.experiment
    assert spec is not None  # a train run has [data] (RunConfig checks)
    dataset = build(registry, "datasets", spec.spec())
    files = tuple(_stamp(spec.params.get(key)) for key in type(dataset).paths)
    cls = type(dataset)
    plugin = (cls.__module__, cls.__qualname__, id(cls))  # two plugins may share a name
    key = (plugin, json.dumps(spec.spec(), sort_keys=True), settings.seed, settings.dtype, files)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        loaded, state = _LOADED[key]
        return loaded, torch.Generator().set_state(state)
    generator = data_generator(run)
    loaded = checked(dataset.load(DataContext(generator, DTYPES[settings.dtype])))
    _LOADED[key] = (loaded, generator.get_state())
    while len(_LOADED) > CACHED_DATASETS:
        _LOADED.popitem(last=False)
    return loaded, generator


def _stamp(path: Any) -> tuple[str, int, int] | None:
    if not isinstance(path, str):
        return None
    status = os.stat(path)
    return path, status.st_size, status.st_mtime_ns


def checked(data: LoadedData) -> LoadedData:
    """What a dataset plugin returned, held to the contract of `LoadedData`: shapes, dtypes,
    names, class indices in range, and finite values."""
    x, y = data.x, data.y
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError("load() must return x and y as tensors")
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"x must be floats shaped (N, inputs), got {tuple(x.shape)} of {x.dtype}")
    if len(x) == 0:
        raise ValueError("the dataset has no samples")
    if len(data.inputs) != x.shape[1]:
        raise ValueError(f"{len(data.inputs)} input names for {x.shape[1]} columns of x")
    if data.task == "classification":
        if y.shape != (len(x),) or y.dtype != torch.int64:
            raise ValueError(
                f"classification targets must be int64 class indices shaped ({len(x)},), "
                f"got {tuple(y.shape)} of {y.dtype}"
            )
        if not data.classes:
            raise ValueError("classification data must name its classes")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= len(data.classes):
            raise ValueError(
                f"class indices run from {low} to {high}, but there are {len(data.classes)} classes"
            )
    elif data.task == "regression":
        if y.dim() != 2 or len(y) != len(x) or not y.is_floating_point():
            raise ValueError(
                f"regression targets must be floats shaped ({len(x)}, outputs), "
                f"got {tuple(y.shape)} of {y.dtype}"
            )
        if len(data.targets) != y.shape[1]:
            raise ValueError(f"{len(data.targets)} target names for {y.shape[1]} columns of y")
    else:
        raise ValueError(f"task must be 'regression' or 'classification', got {data.task!r}")
    for name, values in (("x", x), ("y", y)):
        if values.is_floating_point():
            bad = ~torch.isfinite(values)
            if bad.any():
                row = int(bad.nonzero()[0, 0])
                raise ValueError(f"{name} is not finite in sample {row}: {values[row].tolist()}")
    return data


def make_data(run: RunConfig, registry: Registry | None = None) -> Data:
    """The run's data: loaded (or drawn) from the experiment seed, split (stratified by class
    for classification), inputs standardized by the training split's statistics when asked,
    and moved to the run's device."""
    if registry is None:
        from nnrun.loading import load_registry

        registry = load_registry()
    spec, settings = run.data, run.experiment
    assert spec is not None  # a train run has [data] (RunConfig checks)
    loaded, generator = load_data(run, registry)
    shares = spec.split.shares()
    classification = loaded.task == "classification"
    if shares:
        parts = split(loaded.x, loaded.y, shares, generator, stratify=classification)
    else:
        parts = {"train": (loaded.x, loaded.y)}
    scaling = Standardization.fit(parts["train"][0]) if spec.standardize else None
    device = settings.device

    def ready(name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        if name not in parts:
            return None
        x, y = parts[name]
        if scaling is not None:
            x = scaling.apply(x)
        return x.to(device), y.to(device)

    train = ready("train")
    assert train is not None
    return Data(
        train,
        ready("val"),
        ready("test"),
        loaded.task,
        loaded.inputs,
        loaded.targets,
        loaded.classes,
        scaling,
        spec.kind,
        loaded.notes,
    )


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
