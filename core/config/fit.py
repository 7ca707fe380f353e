"""What only a whole, resolved run can tell: the device exists, the network's ends and the loss fit
the data, the data leaves something to train on and is finite, and the run fits in memory."""

from __future__ import annotations

import itertools
import math
import os

import torch

from nnrun.config.expr import compile_expression
from nnrun.config.schema import RunConfig
from nnrun.errors import NnrunError
from nnrun.factory import build
from nnrun.registry import Registry

#: (key path, message), as `nnrun.config.resolve` reports them.
Problem = tuple[tuple[str, ...], str]
#: How many evenly spaced points of the range the target function is checked on.
GRID_POINTS = 100_000
DTYPE_BYTES = {"float32": 4, "float64": 8}


def check_fit(run: RunConfig, registry: Registry, memory: int | None = None) -> list[Problem]:
    """Every problem of `run` as a whole; `memory` is what the machine has (None: ask the OS)."""
    problems = _device(run)
    too_big = check_memory(run, memory)
    if too_big:
        return [*problems, (("model", "layers"), too_big)]  # drawing its data would not fit either
    if run.model is not None and run.data is not None:
        layers = run.model.layers
        if layers[0] != 1 or layers[-1] != 1:
            problems.append(
                (
                    ("model", "layers"),
                    f"[model] layers = {layers}: [data] kind = 'function' has one input and one "
                    f"output, so the first and last widths must be 1 (e.g. layers = [1, 100, 1])",
                )
            )
        else:
            problems += _loss(run, registry)
        problems += _data(run)
    return problems


def _device(run: RunConfig) -> list[Problem]:
    device = run.experiment.device
    where = ("experiment", "device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        return [
            (
                where,
                f"[experiment] device = {device!r}, but torch has no CUDA device here "
                f"(torch {torch.__version__}); use device = 'cpu'",
            )
        ]
    if device.startswith("cuda") and ":" in device:
        index, count = int(device.split(":")[1]), torch.cuda.device_count()
        if index >= count:
            return [
                (where, f"[experiment] device = {device!r}, but there are {count} CUDA devices")
            ]
    if device == "mps" and not torch.backends.mps.is_available():
        return [
            (
                where,
                f"[experiment] device = 'mps', but torch has no MPS (Apple GPU) device here "
                f"(torch {torch.__version__}); use device = 'cpu'",
            )
        ]
    return []


def _loss(run: RunConfig, registry: Registry) -> list[Problem]:
    """A loss must depend on the prediction for the data at hand: cross_entropy over one output
    is log softmax of a single logit, 0 whatever the network does, so training would learn nothing."""
    assert run.model is not None
    outputs = run.model.layers[-1]
    target = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64).reshape(4, 1)
    pred = torch.zeros(4, outputs, dtype=torch.float64)
    name = run.loss.name
    try:
        loss = build(registry, "losses", run.loss)
        low, high = loss.forward(pred, target), loss.forward(pred + 1.0, target)
    except (NnrunError, ValueError, TypeError, RuntimeError) as error:
        return [(("loss", "name"), f"[loss] {name!r} cannot score this run's predictions: {error}")]
    if torch.equal(low, high):
        return [
            (
                ("loss", "name"),
                f"[loss] {name!r} gives the same loss whatever a network with {outputs} output "
                f"predicts, so it cannot train on [data] kind = 'function' (regression) targets; "
                f"use a regression loss such as 'mse'",
            )
        ]
    return []


def _data(run: RunConfig) -> list[Problem]:
    """`expr` must be finite wherever the data may fall: checked on a dense grid over [low, high),
    which catches a function undefined on part of the range (log, sqrt, a division); an isolated
    pole between two grid points is not caught here and shows as a diverged run."""
    assert run.data is not None
    spec = run.data
    low, high = spec.range
    x = torch.linspace(low, high, GRID_POINTS + 1, dtype=torch.float64)[:-1].reshape(-1, 1)
    try:
        y = compile_expression(spec.expr)(x)
    except (ArithmeticError, RuntimeError, ValueError) as error:
        return [(("data", "expr"), f"[data] expr = {spec.expr!r}: {error}")]
    # the data is drawn in float64 and then stored in the run's dtype, where it must stay finite
    stored = y.to(getattr(torch, run.experiment.dtype))
    bad = ~torch.isfinite(stored.reshape(-1))
    if bad.any():
        first = float(x[bad.nonzero()[0, 0], 0])
        return [
            (
                ("data", "expr"),
                f"[data] expr = {spec.expr!r} is not finite on part of range = "
                f"{list(spec.range)} (e.g. at x = {first:.4g}); choose a range where it is defined",
            )
        ]
    return []


def memory_bytes(run: RunConfig) -> tuple[int, int]:
    """(parameters, estimated bytes) of a train run: the data, the weights with their gradients
    and two optimizer buffers, and pre- and post-activations of one batch."""
    if run.model is None or run.data is None or run.train is None:
        return 0, 0
    size = DTYPE_BYTES[run.experiment.dtype]
    layers = run.model.layers
    parameters = sum(a * b + b for a, b in itertools.pairwise(layers))
    batch = min(run.train.batch_size, run.data.n)
    data = run.data.n * 2 * size
    return parameters, data + 4 * parameters * size + 2 * batch * sum(layers) * size


def available_memory() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(run: RunConfig, limit: int | None = None) -> str | None:
    """Why `run` would not fit in this machine's memory, or None."""
    limit = available_memory() if limit is None else limit
    parameters, needed = memory_bytes(run)
    if limit is None or needed <= limit:
        return None
    assert run.model is not None and run.data is not None and run.train is not None
    size = DTYPE_BYTES[run.experiment.dtype]
    return (
        f"[model] layers = {run.model.layers} has {parameters:.1e} parameters "
        f"({_gib(4 * parameters * size)} of weights, gradients and optimizer state), "
        f"[data] n = {run.data.n} takes {_gib(run.data.n * 2 * size)} and the activations of a "
        f"batch of {min(run.train.batch_size, run.data.n)} "
        f"{_gib(needed - 4 * parameters * size - run.data.n * 2 * size)}: about {_gib(needed)} "
        f"in all, more than the {_gib(limit)} this machine has"
    )


def _gib(count: float) -> str:
    """Bytes in the unit that reads best: 2.2 GiB, 40 MiB, 1 KiB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if count >= size / 8:
            return f"{count / size:.1f} {unit}"
    return f"{math.ceil(count / 1024)} KiB"
