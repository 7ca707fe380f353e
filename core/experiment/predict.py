"""`nnrun predict`: a trained run's network applied to new inputs from a CSV file.

The run directory's `models/<run>.pt` holds the final weights and everything the inputs need to
become what the network was trained on: the input column names, the standardisation computed on
the training split, the class names. It is loaded with `weights_only=True`, like a checkpoint.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnrun.errors import ConfigError, suggest
from nnrun.experiment.rundir import RunDirectory
from nnrun.factory import build
from nnrun.model import MLP
from nnrun.registry import Registry

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def load_network(model: dict[str, Any], registry: Registry) -> MLP:
    """The network a model file describes, with its final weights, on the CPU."""
    output = model["output_activation"]
    network = MLP(
        model["layers"],
        activation=build(registry, "activations", model["activation"]),
        output_activation=None
        if output["name"] == "identity"
        else build(registry, "activations", output),
        dtype=DTYPES[model["dtype"]],
    )
    network.load_state_dict(model["weights"])
    return network


def network_outputs(model: dict[str, Any], network: MLP, x: torch.Tensor) -> torch.Tensor:
    """The network's outputs for raw inputs x (N, inputs): standardised as in training first."""
    x = x.to(DTYPES[model["dtype"]])
    if model["standardization"] is not None:
        from nnrun.experiment.data import Standardization

        x = Standardization.from_dict(model["standardization"]).apply(x)
    return network.forward(x)


def class_probabilities(model: dict[str, Any], outputs: torch.Tensor) -> torch.Tensor:
    """(N, classes) probabilities: softmax of the logits, or σ(x) for a one-output classifier's
    class 1; outputs that a softmax or sigmoid output activation already made probabilities are
    taken as they are."""
    activation = model["output_activation"]["name"]
    outputs = outputs.to(torch.float64)
    if outputs.shape[1] == 1:
        p = outputs if activation == "sigmoid" else torch.sigmoid(outputs)
        return torch.cat([1 - p, p], dim=1)
    return outputs if activation == "softmax" else torch.softmax(outputs, dim=1)


def predict(
    run_dir: str | Path,
    input_csv: str | Path,
    run: str | None = None,
    registry: Registry | None = None,
) -> str:
    """The CSV text of the predictions of `run` (the only run, when None) in `run_dir` for the
    inputs in `input_csv`: a `prediction` column (class names for classification, then one
    `probability_<class>` column per class; one `prediction_<target>` column per target for
    several regression targets)."""
    from nnrun.loading import load_registry

    directory = RunDirectory(run_dir)
    summary = directory.read_summary()
    name = _which_run(directory, summary, run)
    model = directory.load_model(name)
    x = read_inputs(Path(input_csv), model["inputs"], model.get("delimiter", ","))
    network = load_network(model, registry if registry is not None else load_registry())
    outputs = network_outputs(model, network, x)
    return _csv_text(model, outputs)


def _which_run(directory: RunDirectory, summary: dict[str, Any], run: str | None) -> str:
    names = [r["name"] for r in summary["runs"]]
    if run is None:
        if len(names) == 1:
            return names[0]
        raise ConfigError(
            f"{directory.path} holds {len(names)} runs: choose one with --run NAME "
            f"({', '.join(names)})"
        )
    if run not in names:
        raise ConfigError(
            f"{directory.path} has no run {run!r}{suggest(run, names)}; its runs are "
            f"{', '.join(names)}"
        )
    return run


def read_inputs(path: Path, inputs: list[str], delimiter: str = ",") -> torch.Tensor:
    """(N, len(inputs)) float64 from a CSV file: with a header (a first line that is not all
    numbers), the input columns by name, in any order, other columns ignored; without one,
    exactly the inputs' columns in the training order; cells split at `delimiter`, the training
    file's. Parsed by numpy's C reader."""
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a regular file"
        raise ConfigError(f"{path}: {what}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ConfigError(f"{path} is empty: it needs the input columns {', '.join(inputs)}")
    cells = [c.strip() for c in next(csv.reader([lines[first]], delimiter=delimiter))]
    header = not all(_is_number(c) for c in cells)
    if header:
        missing = [name for name in inputs if name not in cells]
        if missing:
            hints = "".join(suggest(name, cells) for name in missing[:1])
            raise ConfigError(
                f"{path}: the header has no column {', '.join(map(repr, missing))}{hints}; the "
                f"model takes the input columns {', '.join(inputs)} (found {', '.join(cells)})"
            )
        columns = [cells.index(name) for name in inputs]
    else:
        if len(cells) != len(inputs):
            raise ConfigError(
                f"{path}, line {first + 1}: {len(cells)} columns, but the model takes "
                f"{len(inputs)} inputs ({', '.join(inputs)}); without a header the file holds "
                f"exactly those columns, in that order (or give it a header naming them)"
            )
        columns = list(range(len(inputs)))
    start = first + 1 if header else first
    if not any(line.strip() for line in lines[start:]):
        raise ConfigError(f"{path} has a header line but no rows to predict")
    try:
        values = np.loadtxt(
            io.StringIO(text),
            delimiter=delimiter,
            skiprows=start,
            usecols=columns,
            ndmin=2,
            dtype=np.float64,
            comments=None,
        )
    except ValueError:
        names = cells if header else None
        raise _bad_cell(path, lines, start, len(cells), columns, names, delimiter) from None
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0, 0])
        raise ConfigError(f"{path}: row {row + 1} holds a value that is not finite")
    return torch.from_numpy(values)


def _bad_cell(
    path: Path,
    lines: list[str],
    start: int,
    width: int,
    columns: list[int],
    names: list[str] | None,
    delimiter: str,
) -> ConfigError:
    """The first line numpy refused, and why, found by reading it again line by line."""
    for number in range(start, len(lines)):
        if not lines[number].strip():
            continue
        cells = next(csv.reader([lines[number]], delimiter=delimiter))
        if len(cells) != width:
            return ConfigError(
                f"{path}, line {number + 1}: {len(cells)} cells where the first line has {width}"
            )
        for column in columns:
            if not _is_number(cells[column].strip()):
                label = repr(names[column]) if names else str(column)
                return ConfigError(
                    f"{path}, line {number + 1}, column {label}: {cells[column].strip()!r} is not "
                    f"a number"
                )
    return ConfigError(f"{path}: not a CSV file of numbers")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_text(model: dict[str, Any], outputs: torch.Tensor) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    if model["task"] == "classification":
        classes = model["classes"]
        probabilities = class_probabilities(model, outputs)
        writer.writerow(["prediction", *(f"probability_{c}" for c in classes)])
        chosen = probabilities.argmax(dim=1).tolist()
        for index, row in zip(chosen, probabilities.tolist()):
            writer.writerow([classes[index], *(_number(p) for p in row)])
    else:
        targets = model["targets"]
        names = ["prediction"] if len(targets) == 1 else [f"prediction_{t}" for t in targets]
        writer.writerow(names)
        for row in outputs.to(torch.float64).tolist():
            writer.writerow([_number(v) for v in row])
    return stream.getvalue()


def _number(value: float) -> str:
    """The shortest text that reads back as the same float; nan and inf spelt as numpy reads them."""
    return repr(value) if math.isfinite(value) else str(value)
