"""What only a whole, resolved run can tell: the device exists, the dataset loads, the network's
ends and the loss fit the data, the split leaves something to train on, and the run fits in
memory."""

from __future__ import annotations

import itertools
import math
import os

import torch

from nnrun.config.metrics import check_metrics
from nnrun.config.schema import RunConfig
from nnrun.dataset import LoadedData
from nnrun.errors import ConfigError, NnrunError
from nnrun.factory import build
from nnrun.registry import Registry

#: (key path, message), as `nnrun.config.resolve` reports them.
Problem = tuple[tuple[str, ...], str]
DTYPE_BYTES = {"float32": 4, "float64": 8}


def check_fit(run: RunConfig, registry: Registry, memory: int | None = None) -> list[Problem]:
    """Every problem of `run` as a whole; `memory` is what the machine has (None: ask the OS).
    The dataset is loaded here (once per distinct [data], see `load_data`), so that a bad file,
    the data's shape and classes and the split are all checked before any run starts."""
    problems = _device(run)
    memory = available_memory() if memory is None else memory
    too_big = check_memory(run, memory, _hinted(run, registry))
    if too_big:
        return [*problems, (("model", "layers"), too_big)]  # drawing its data would not fit either
    if run.model is None or run.data is None:
        return problems
    from nnrun.experiment.assemble import load_data

    kind = run.data.kind
    try:
        loaded, _ = load_data(run, registry)
    except ConfigError as error:
        return [*problems, (("data", error.key or "kind"), f"[data] {error}")]
    except Exception as error:  # a plugin's own failure is the user's to read, not a traceback
        message = f"[data] dataset {kind!r} cannot load: {type(error).__name__}: {error}"
        return [*problems, (("data", "kind"), message)]
    size = DTYPE_BYTES[run.experiment.dtype]
    too_big = check_memory(run, memory, (len(loaded.x), _values(loaded) * size))
    if too_big:
        return [*problems, (("model", "layers"), too_big)]
    shape = _shape(run, loaded)
    problems += shape or _loss(run, registry, loaded)
    problems += _split(run, loaded) + _probes(run, loaded)
    problems += check_metrics(run, registry, loaded.task)
    return problems


def data_notes(runs: list[RunConfig], registry: Registry) -> list[str]:
    """What loading each distinct dataset reported ("skipped 3 bad rows of x.csv"), once each."""
    from nnrun.experiment.assemble import load_data

    notes: list[str] = []
    for run in runs:
        if run.data is not None and run.model is not None:
            for note in load_data(run, registry)[0].notes:
                line = f"[data] kind {run.data.kind!r}: {note}"
                if line not in notes:
                    notes.append(line)
    return notes


def _values(data: LoadedData) -> int:
    """Numbers per sample in x and y together."""
    return data.x.shape[1] + (data.y.shape[1] if data.y.dim() == 2 else 1)


def _hinted(run: RunConfig, registry: Registry) -> tuple[int, int]:
    """(samples, bytes per sample) the dataset says it will load, (0, 0) if it cannot say."""
    if run.data is None or run.model is None:
        return 0, 0
    try:
        hint = build(registry, "datasets", run.data.spec()).size_hint()
    except (NnrunError, ValueError, TypeError):
        return 0, 0  # resolve reported it
    if hint is None:
        return 0, 0
    samples, values = hint
    return samples, values * DTYPE_BYTES[run.experiment.dtype]


def _listed(names: tuple[str, ...], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _shape(run: RunConfig, data: LoadedData) -> list[Problem]:
    """The network's first width must be the data's inputs, its last the outputs or classes."""
    assert run.model is not None and run.data is not None
    layers, kind = run.model.layers, run.data.kind
    inputs = len(data.inputs)
    problems = []
    if layers[0] != inputs:
        problems.append(
            f"[data] kind = {kind!r} has {inputs} input(s) ({_listed(data.inputs)}), so the "
            f"first width must be {inputs}"
        )
    if data.task == "classification":
        classes = len(data.classes)
        if layers[-1] != classes and not (classes == 2 and layers[-1] == 1):
            problems.append(
                f"[data] kind = {kind!r} has {classes} classes ({_listed(data.classes)}), so the "
                f"last width must be {classes}, one output (logit) per class"
                + (" (or 1, one logit, with [loss] 'bce_with_logits')" if classes == 2 else "")
            )
    elif layers[-1] != len(data.targets):
        outputs = len(data.targets)
        problems.append(
            f"[data] kind = {kind!r} has {outputs} output(s) ({_listed(data.targets)}), so the "
            f"last width must be {outputs}"
        )
    if not problems:
        return []
    example = [inputs, 16, len(data.classes) or len(data.targets)]
    message = f"[model] layers = {layers}: " + "; ".join(problems) + f" (e.g. layers = {example})"
    return [(("model", "layers"), message)]


def _split(run: RunConfig, data: LoadedData) -> list[Problem]:
    """The split must leave every part its samples: tried on indices, with a throwaway seed."""
    from nnrun.experiment.data import split_indices

    assert run.data is not None
    shares = run.data.split.shares()
    if not shares:
        return []
    labels = data.y if data.task == "classification" else None
    try:
        split_indices(len(data.x), shares, torch.Generator().manual_seed(0), labels)
    except ValueError as error:
        written = ", ".join(f"{k} = {v}" for k, v in shares.items())
        return [(("data", "split"), f"[data] split = {{ {written} }}: {error}")]
    return []


def _probes(run: RunConfig, data: LoadedData) -> list[Problem]:
    """Probes are inputs whose prediction is logged: one number in, one number out."""
    assert run.train is not None and run.data is not None
    if not run.train.probes:
        return []
    if (len(data.inputs), data.task, len(data.targets)) != (1, "regression", 1):
        has = (
            f"{len(data.classes)} classes"
            if data.task == "classification"
            else f"{len(data.targets)} output(s)"
        )
        return [
            (
                ("train", "probes"),
                f"[train] probes are single inputs whose one predicted output is logged: they "
                f"need regression data with one input and one output, and [data] kind = "
                f"{run.data.kind!r} has {len(data.inputs)} input(s) and {has}",
            )
        ]
    if run.data.standardize:
        return [
            (
                ("train", "probes"),
                "[train] probes are inputs in the data's own units, and [data] standardize = "
                "true trains the network on scaled inputs: use one or the other",
            )
        ]
    return []


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


def _loss(run: RunConfig, registry: Registry, data: LoadedData) -> list[Problem]:
    """A loss must take the data's targets and depend on the prediction: cross_entropy over one
    output is log softmax of a single logit, 0 whatever the network does, so training would
    learn nothing; mse cannot compare logits with class indices."""
    assert run.model is not None and run.data is not None
    outputs = run.model.layers[-1]
    if data.task == "classification":
        target = torch.arange(4, dtype=torch.int64) % max(len(data.classes), 1)
    else:
        target = torch.linspace(-1.0, 1.0, 4 * outputs, dtype=torch.float64).reshape(4, outputs)
    pred = torch.zeros(4, outputs, dtype=torch.float64)
    name, task = run.loss.name, data.task
    try:
        loss = build(registry, "losses", run.loss)
        # a different shift per output: softmax ignores a shift shared by all logits
        bump = torch.arange(1, outputs + 1, dtype=torch.float64)
        low, high = loss.forward(pred, target), loss.forward(pred + bump, target)
    except (NnrunError, ValueError, TypeError, RuntimeError) as error:
        hint = ""
        if task == "classification":  # one logit is the two-class form bce_with_logits takes
            hint = "; use 'bce_with_logits'" if outputs == 1 else "; use 'cross_entropy'"
        return [
            (
                ("loss", "name"),
                f"[loss] {name!r} cannot score this run's predictions against "
                f"{task} targets: {error}{hint}",
            )
        ]
    if torch.equal(low, high):
        hint = "a regression loss such as 'mse'" if task == "regression" else "another loss"
        return [
            (
                ("loss", "name"),
                f"[loss] {name!r} gives the same loss whatever a network with {outputs} output "
                f"predicts, so it cannot train on [data] kind = {run.data.kind!r} ({task}) "
                f"targets; use {hint}",
            )
        ]
    return []


def memory_bytes(run: RunConfig, data: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(parameters, estimated bytes) of a train run whose data is `data` = (samples, bytes per
    sample): the data, the weights with their gradients and two optimizer buffers, and pre- and
    post-activations of one batch."""
    if run.model is None or run.data is None or run.train is None:
        return 0, 0
    size = DTYPE_BYTES[run.experiment.dtype]
    layers = run.model.layers
    parameters = sum(a * b + b for a, b in itertools.pairwise(layers))
    samples, per_sample = data
    batch = min(run.train.batch_size, samples) if samples else run.train.batch_size
    return parameters, samples * per_sample + 4 * parameters * size + 2 * batch * sum(layers) * size


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


def check_memory(
    run: RunConfig, limit: int | None = None, data: tuple[int, int] = (0, 0)
) -> str | None:
    """Why `run`, with `data` = (samples, bytes per sample), would not fit in memory, or None."""
    limit = available_memory() if limit is None else limit
    parameters, needed = memory_bytes(run, data)
    if limit is None or needed <= limit:
        return None
    assert run.model is not None and run.data is not None and run.train is not None
    size = DTYPE_BYTES[run.experiment.dtype]
    samples, per_sample = data
    weights, data_bytes = 4 * parameters * size, samples * per_sample
    batch = min(run.train.batch_size, samples) if samples else run.train.batch_size
    return (
        f"[model] layers = {run.model.layers} has {parameters:.1e} parameters "
        f"({_gib(weights)} of weights, gradients and optimizer state), "
        f"the data ({samples} samples) takes {_gib(data_bytes)} and the activations of a "
        f"batch of {batch} {_gib(needed - weights - data_bytes)}: about {_gib(needed)} "
        f"in all, more than the {_gib(limit)} this machine has"
    )


def _gib(count: float) -> str:
    """Bytes in the unit that reads best: 2.2 GiB, 40 MiB, 1 KiB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if count >= size / 8:
            return f"{count / size:.1f} {unit}"
    return f"{math.ceil(count / 1024)} KiB"
