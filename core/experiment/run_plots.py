"""Draw a run directory's plots from what it holds (metrics and checkpoints), so they come out the
same after `--jobs`, a resume, or a crash."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from nnrun.config import Experiment
from nnrun.experiment.rundir import RunDirectory
from nnrun.registry import Registry
from nnrun.solver import Descent


def plot_run_directory(path: Path, experiment: Experiment, registry: Registry) -> list[Path]:
    from nnrun.experiment.figures import plot_descent

    directory = RunDirectory(path)
    records = directory.read_metrics()
    written = []
    train_runs = [r for r in experiment.runs if r.experiment.task == "train"]
    solve_runs = [r for r in experiment.runs if r.experiment.task == "solve"]
    histories = {
        r.name: [m for m in records if m.get("run") == r.name and "epoch" in m] for r in train_runs
    }
    for config in (r.name for r in experiment.runs if r.tune is not None):
        # a tuned configuration's loss curves: its best values on the final seeds
        for record in records:
            if record.get("run", "").startswith(f"{config}/best/") and "epoch" in record:
                histories.setdefault(record["run"], []).append(record)
    histories = {name: h for name, h in histories.items() if h}
    if histories:
        written.append(_plot_losses(directory, experiment, histories))
        fit = _plot_fit(directory, train_runs, registry)
        if fit:
            written.append(fit)
        confusion = _plot_confusion(directory, train_runs, registry)
        if confusion:
            written.append(confusion)
    descents: dict[str, list[Descent]] = {}
    for run in solve_runs:
        found = [m for m in records if m.get("run") == run.name and "descent" in m]
        if found:
            descents[run.name] = [
                Descent(
                    m["start"],
                    m["end"],
                    m["iterations"],
                    m["converged"],
                    [math.nan if r is None else r for r in m["residuals"]],
                    m.get("reason"),
                    m.get("diverged", False),
                )
                for m in found
            ]
    if descents:
        written.append(plot_descent(descents, path / "descent.png"))
    if any(run.tune is not None for run in experiment.runs):
        tune = _plot_tune(directory)
        if tune:
            written.append(tune)
    return written


def _plot_losses(
    directory: RunDirectory, experiment: Experiment, histories: dict[str, list[dict[str, Any]]]
) -> Path:
    """loss.png: a line per run, or, when a configuration repeats over seeds, a median and a band
    per group, over the runs that ended ok (a diverged seed is left out, as from the statistics)."""
    from nnrun.experiment.figures import plot_group_losses, plot_losses
    from nnrun.experiment.runner import run_groups

    groups = run_groups(experiment)
    path = directory.path / "loss.png"
    if all(len(runs) == 1 for runs in groups.values()):
        return plot_losses(histories, path)
    status = {run["name"]: run.get("status") for run in directory.read_summary()["runs"]}
    curves = {
        name: [histories[run] for run, _ in runs if run in histories and status.get(run) == "ok"]
        for name, runs in groups.items()
    }
    band = experiment.runs[0].report.band
    return plot_group_losses({name: c for name, c in curves.items() if c}, path, band)


def _plot_tune(directory: RunDirectory) -> Path | None:
    """tune.png from summary.json: each tuned configuration's trials and its space (the metric of
    the first; the configurations of one file tune one metric in the usual case)."""
    from nnrun.experiment.figures import plot_tune

    summary = directory.read_summary()
    studies = summary.get("tune") or {}
    if not studies:
        return None
    space: dict[str, tuple[str, list[Any]]] = {}
    for study in studies.values():  # one panel per key: every configuration's choices on it
        for key, entry in study["space"].items():
            kind, values = next(iter(entry.items()))
            _, seen = space.setdefault(key, (kind, []))
            seen += [v for v in values if v not in seen] if kind == "choice" else []
    trials = {
        name: [r for r in summary["runs"] if r["name"].startswith(f"{name}/trial=")]
        for name in studies
    }
    metric = next(iter(studies.values()))["metric"]
    return plot_tune(trials, space, metric, directory.path / "tune.png")


def _plot_fit(directory: RunDirectory, runs: list[Any], registry: Registry) -> Path | None:
    """Data, target and each run's final prediction, for the runs that share the first run's data."""
    from nnrun.config.expr import compile_expression
    from nnrun.experiment.assemble import data_seed, make_data, make_model
    from nnrun.experiment.figures import plot_fit

    first = runs[0]
    if first.data.kind != "function" or first.data.params.get("inputs", 1) != 1:
        return None  # a curve over one input: only one-input function data has one
    data = make_data(first, registry)
    if len(data.targets) != 1 or data.standardization is not None:
        return None
    x, y = (
        torch.cat([data.train[0]] + ([data.val[0]] if data.val else [])),
        torch.cat([data.train[1]] + ([data.val[1]] if data.val else [])),
    )
    params = first.data.params
    span, expr = params["range"], params["expr"]
    low, high = span[0] if isinstance(span[0], list) else span  # one input: [low, high] or [[...]]
    expr = expr[0] if isinstance(expr, list) else expr
    grid = torch.linspace(low, high, 200, dtype=x.dtype, device=x.device)[:, None]
    predictions = {}
    for run in runs:
        same_data = run.data == first.data and data_seed(run) == data_seed(first)
        if not same_data or run.experiment.seed != first.experiment.seed:  # one seed per group
            continue
        checkpoint = directory.load_last_checkpoint(run.name)
        if checkpoint is None:
            continue
        model = make_model(run, registry)
        model.load_state_dict(checkpoint["model"])
        predictions[run.name] = (grid[:, 0].cpu(), model.forward(grid)[:, 0].cpu())
    if not predictions:
        return None
    return plot_fit(
        x[:, 0].cpu(),
        y[:, 0].cpu(),
        compile_expression(expr),
        predictions,
        directory.path / "fit.png",
    )


def confusion_counts(predicted: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, classes) counts: row = true class, column = predicted class."""
    index = target.to(torch.long) * classes + predicted.to(torch.long)
    return torch.bincount(index.cpu(), minlength=classes * classes).view(classes, classes)


def _plot_confusion(directory: RunDirectory, runs: list[Any], registry: Registry) -> Path | None:
    """The confusion matrix of each classification run's final model (models/<run>.pt) on its
    test split, else its validation split, else its training split."""
    from nnrun.experiment.assemble import make_data
    from nnrun.experiment.figures import plot_confusion
    from nnrun.experiment.predict import load_network
    from nnrun.metric import predicted_classes

    matrices = {}
    for run in runs:
        if not directory.model_path(run.name).is_file():
            continue  # not finished ok: no final model
        model = directory.load_model(run.name)
        if model["task"] != "classification":
            continue
        data = make_data(run, registry)
        split, (x, y) = next(
            (name, part)
            for name, part in (
                ("test", data.test),
                ("validation", data.val),
                ("training", data.train),
            )
            if part is not None
        )
        network = load_network(model, registry)
        predicted = predicted_classes(
            network.forward(x.cpu().to(network.layers[0].weight.data.dtype))
        )
        matrices[run.name] = (
            confusion_counts(predicted, y.cpu(), len(model["classes"])),
            model["classes"],
            split,
        )
    if not matrices:
        return None
    return plot_confusion(matrices, directory.path / "confusion.png")
