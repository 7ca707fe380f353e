"""Built-in datasets: data drawn from target functions, CSV files, saved tensors, and the datasets
scikit-learn ships inside its package.

Each one only reads or draws its samples; nnrun splits, standardizes, checks and moves them (see
`nnrun.dataset`). Paths arrive absolute and already checked to be regular files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

import nnrun
from nnrun.config.expr import Expression, compile_expression, variables
from nnrun.dataset import DataContext, Dataset, LoadedData, Task
from nnrun.errors import ConfigError, MissingDependencyError
from nnrun.experiment.data import function_dataset
from nnrun.hookspecs import Register
from nnrun.plugins._csv import encode_labels, read_csv

#: How many points of the input box the target functions are checked on before drawing.
GRID_POINTS = 100_000


def _names(prefix: str, count: int) -> tuple[str, ...]:
    return (prefix,) if count == 1 else tuple(f"{prefix}{i}" for i in range(count))


class FunctionData(Dataset):
    """n points x uniform in `range` (per input, or one range shared by all inputs) and
    y = expr(x) + noise·ε, ε ~ N(0, 1) per point. `expr` is one expression per output, in the
    variables x0, x1, ... (`x` for one input), parsed by a whitelist and never evaluated as Python.
    """

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "expr": ["sin(x0) * x1", "x0 + x1"],
        "n": 32,
        "inputs": 2,
    }

    def __init__(
        self,
        expr: str | list[str],
        n: int,
        inputs: int = 1,
        range: Sequence[float] | Sequence[Sequence[float]] = (-1.0, 1.0),
        noise: float = 0.0,
    ):
        if n < 1:
            raise ValueError(f"Invalid n: {n}; n is the number of samples, at least 1")
        if inputs < 1:
            raise ValueError(f"Invalid inputs: {inputs}; inputs is a number of columns, at least 1")
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"Invalid noise: {noise}; noise must be finite and at least 0")
        texts = [expr] if isinstance(expr, str) else list(expr)
        if not texts:
            raise ConfigError("expr = []: give one expression per output", key="expr")
        try:
            self.targets: list[Expression] = [compile_expression(t, inputs) for t in texts]
        except ConfigError as error:
            raise ConfigError(f"expr: {error}", key="expr") from None
        self.texts, self.n, self.inputs, self.noise = texts, n, inputs, noise
        self.ranges = _ranges(range, inputs)
        self.range = range

    def size_hint(self) -> tuple[int, int]:
        return self.n, self.inputs + len(self.texts)

    def load(self, context: DataContext) -> LoadedData:
        self._check_finite(context.dtype)
        x, y = function_dataset(
            self.targets, self.n, self.ranges, self.noise, context.generator, context.dtype
        )
        return LoadedData(x, y, _names("x", self.inputs), _names("y", len(self.texts)))

    def _check_finite(self, dtype: torch.dtype) -> None:
        """Each target must be finite wherever the data may fall: checked on a dense grid over the
        box of ranges (high ends excluded), which catches a function undefined on part of it (log,
        sqrt, a division); an isolated pole between grid points is not caught here and shows as
        a diverged run. Stored in the run's dtype the values must stay finite too."""
        per_input = max(2, int(GRID_POINTS ** (1 / self.inputs)))
        axes = [
            torch.linspace(low, high, per_input + 1, dtype=torch.float64)[:-1]
            for low, high in self.ranges
        ]
        grid = torch.cartesian_prod(*axes).reshape(-1, self.inputs)
        for text, target in zip(self.texts, self.targets):
            try:
                stored = target(grid).to(dtype)
            except (ArithmeticError, RuntimeError, ValueError) as error:
                raise ConfigError(f"expr = {text!r}: {error}", key="expr") from None
            bad = ~torch.isfinite(stored)
            if bad.any():
                point = grid[bad.nonzero()[0, 0]].tolist()
                at = ", ".join(
                    f"{name} = {value:.4g}"
                    for name, value in zip(
                        variables(self.inputs if self.inputs > 1 else None), point
                    )
                )
                raise ConfigError(
                    f"expr = {text!r} is not finite on part of range = {_plain(self.range)} "
                    f"(e.g. at {at}); choose a range where it is defined",
                    key="expr",
                )


def _ranges(value: Sequence, inputs: int) -> list[tuple[float, float]]:
    """One (low, high) per input from one shared [low, high] or a list of them."""
    shared = len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
    pairs = [value] * inputs if shared else list(value)
    if not shared and (
        len(pairs) != inputs or not all(isinstance(p, Sequence) and len(p) == 2 for p in pairs)
    ):
        raise ValueError(
            f"Invalid range: {_plain(value)}; range is [low, high] for every input or one "
            f"[low, high] per input ({inputs} here)"
        )
    out = []
    for low, high in pairs:
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(
                f"Invalid range: {_plain(value)}; range must be [low, high] with finite low < high"
            )
        out.append((float(low), float(high)))
    return out


def _plain(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value) if isinstance(value, int) else value


#: Small files shipped with nnrun, which `nnrun verify` loads the file datasets from.
SAMPLES = Path(__file__).with_name("samples")


class CsvData(Dataset):
    """A CSV file: `inputs` and `targets` are column names or 0-based indices (default: every
    column but the last, and the last). Classification labels (strings or integers) become
    indices in sorted order. A missing, empty or non-numeric cell or a ragged row is an error
    naming the line and column, unless `on_bad_rows = "skip"`. Read chunk by chunk with numpy's C
    parser into one preallocated array, so memory stays near the size of the result."""

    paths = ("path",)
    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "path": str(SAMPLES / "xor.csv"),
        "task": "classification",
    }

    def __init__(
        self,
        path: str,
        inputs: list[str | int] | None = None,
        targets: list[str | int] | str | int | None = None,
        header: bool = True,
        delimiter: str = ",",
        task: Literal["regression", "classification"] = "regression",
        on_bad_rows: Literal["error", "skip"] = "error",
    ):
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValueError(
                f"Invalid delimiter: {delimiter!r}; a delimiter is one character (not a quote)"
            )
        if targets is not None and not isinstance(targets, list):
            targets = [targets]
        if task == "classification" and targets is not None and len(targets) != 1:
            raise ValueError(f"Invalid targets: {targets}; classification takes one label column")
        self.path, self.inputs, self.targets = Path(path), inputs, targets
        self.header, self.delimiter, self.task, self.on_bad_rows = (
            header,
            delimiter,
            task,
            on_bad_rows,
        )

    def load(self, context: DataContext) -> LoadedData:
        table = read_csv(
            self.path,
            self.inputs,
            self.targets,
            header=self.header,
            delimiter=self.delimiter,
            labels=self.task == "classification",
            skip_bad_rows=self.on_bad_rows == "skip",
            dtype=context.dtype,
        )
        notes = (f"skipped {table.skipped} bad rows of {self.path.name}",) if table.skipped else ()
        return LoadedData(
            table.x,
            table.y,
            table.inputs,
            table.targets,
            self.task,
            table.classes,
            notes,
        )


class TensorsData(Dataset):
    """Named arrays in a `.pt` file (a dict of tensors, read with torch.load(weights_only=True))
    or a `.npz` file (read without pickle): `x` (N, inputs) or (N,), and `y` (N, outputs) or (N,)
    floats, or (N,) integer labels for classification (mapped to indices in sorted order)."""

    paths = ("path",)
    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "path": str(SAMPLES / "xor.npz"),
        "task": "classification",
    }

    def __init__(
        self,
        path: str,
        x: str = "x",
        y: str = "y",
        task: Literal["regression", "classification"] = "regression",
    ):
        self.path, self.x, self.y, self.task = Path(path), x, y, task
        if self.path.suffix not in (".pt", ".npz"):
            raise ValueError(f"Invalid path: {path!r}; path must name a .pt or .npz file")

    def load(self, context: DataContext) -> LoadedData:
        arrays = self._read()
        missing = [key for key in (self.x, self.y) if key not in arrays]
        if missing:
            raise ConfigError(
                f"{self.path.name} has no array {missing[0]!r}; it holds "
                f"{', '.join(map(repr, sorted(arrays))) or 'nothing'} (set x = and y = to choose)",
                key="x" if missing[0] == self.x else "y",
            )
        x, y = arrays[self.x], arrays[self.y]
        x = x.reshape(-1, 1) if x.dim() == 1 else x
        if x.dim() != 2 or not (x.is_floating_point() or _is_integer(x)):
            raise ConfigError(
                f"{self.path.name}: {self.x!r} must be numbers shaped (N, inputs) or (N,), "
                f"got {tuple(x.shape)} of {x.dtype}",
                key="x",
            )
        if len(y) != len(x):
            raise ConfigError(
                f"{self.path.name}: {self.x!r} has {len(x)} samples but {self.y!r} has {len(y)}",
                key="y",
            )
        classes: tuple[str, ...] = ()
        if self.task == "classification":
            if y.dim() != 1 or not _is_integer(y):
                raise ConfigError(
                    f"{self.path.name}: classification needs {self.y!r} as integer labels (N,), "
                    f"got {tuple(y.shape)} of {y.dtype}",
                    key="task",
                )
            y, classes = encode_labels(y.numpy())
            targets: tuple[str, ...] = ("class",)
        else:
            y = y.reshape(-1, 1) if y.dim() == 1 else y
            if y.dim() != 2 or not (y.is_floating_point() or _is_integer(y)):
                raise ConfigError(
                    f"{self.path.name}: {self.y!r} must be numbers shaped (N, outputs) or (N,) "
                    f"for regression, got {tuple(y.shape)} of {y.dtype}",
                    key="y",
                )
            y = y.to(context.dtype)
            targets = _names("y", y.shape[1])
        return LoadedData(
            x.to(context.dtype), y, _names("x", x.shape[1]), targets, self.task, classes
        )

    def _read(self) -> dict[str, torch.Tensor]:
        if self.path.suffix == ".npz":
            try:
                with np.load(self.path, allow_pickle=False) as archive:
                    return {key: torch.from_numpy(np.array(archive[key])) for key in archive.files}
            except (ValueError, OSError) as error:  # object arrays need pickle: refused
                raise ConfigError(f"{self.path.name}: cannot read it as .npz: {error}") from None
        try:
            loaded = torch.load(self.path, weights_only=True, map_location="cpu")
        except Exception as error:  # an unpickling error names what it refused to load
            raise ConfigError(f"{self.path.name}: cannot read it as a .pt file: {error}") from None
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
        ):
            raise ConfigError(
                f"{self.path.name} must hold a dict of named tensors, like "
                f"torch.save({{'x': x, 'y': y}}, path); it holds a {type(loaded).__name__}"
            )
        return loaded


def _is_integer(t: torch.Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


#: scikit-learn's bundled datasets (in its package: nothing is downloaded) and their tasks.
SKLEARN: dict[str, Task] = {
    "digits": "classification",
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "diabetes": "regression",
}


class SklearnData(Dataset):
    """One of the datasets scikit-learn ships inside its package: digits, iris, wine,
    breast_cancer (classification, in scikit-learn's class order) or diabetes (regression).
    Needs the `sklearn` extra: pip install 'nnrun[sklearn]'."""

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "dataset": "iris"
    }  # needs the sklearn extra, like any use

    def __init__(self, dataset: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]):
        self.dataset = dataset

    def load(self, context: DataContext) -> LoadedData:
        try:
            from sklearn import datasets  # type: ignore[import-untyped]
        except ImportError:
            raise MissingDependencyError(
                f"dataset = {self.dataset!r} needs scikit-learn, which is not installed: "
                f"pip install 'nnrun[sklearn]'",
                key="dataset",
            ) from None
        bunch = getattr(datasets, f"load_{self.dataset}")()
        x = torch.from_numpy(np.asarray(bunch.data)).to(context.dtype)
        names = tuple(str(n) for n in getattr(bunch, "feature_names", ()))
        inputs = names if len(names) == x.shape[1] else _names("x", x.shape[1])
        task = SKLEARN[self.dataset]
        if task == "classification":
            y = torch.from_numpy(np.asarray(bunch.target)).to(torch.int64)
            classes = tuple(str(name) for name in bunch.target_names)
            return LoadedData(x, y, inputs, ("class",), task, classes)
        y = torch.from_numpy(np.asarray(bunch.target)).to(context.dtype).reshape(-1, 1)
        return LoadedData(x, y, inputs, ("target",), task)


@nnrun.hookimpl
def register_datasets(register: Register) -> None:
    register("function", FunctionData)
    register("csv", CsvData)
    register("tensors", TensorsData)
    register("sklearn", SklearnData)
