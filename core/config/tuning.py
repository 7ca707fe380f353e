"""`[tune]` checked in the one validation pass: the metric, the search space (the file's, or the
optimizer's own `search_space` for `space = "default"`), every dotted key against the run's tables,
and every distribution's extremes built once, so a bound the constructor refuses fails at load."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Any

import pydantic

from nnrun.config.compose import line_of, set_path
from nnrun.config.resolve import resolve_components
from nnrun.config.schema import TABLES, RunConfig, TuneSection, space_problem
from nnrun.config.validate import Located, describe, line_for, telling
from nnrun.errors import suggest
from nnrun.registry import Registry

#: Tables a space key may tune: everything a run is built from, not its bookkeeping.
TUNABLE = [table for table in TABLES if table not in ("experiment", "tune", "report")]
#: What the epoch records hold for every training run (and `val_loss` with a validation share).
EPOCH_METRICS = ("train_loss", "mean_batch_loss")


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter: its dotted key and its distribution."""

    key: str
    kind: str  # one of schema.SPACE_KINDS
    values: tuple[Any, ...]  # [low, high], or the choices

    @property
    def log(self) -> bool:
        return self.kind == "log_uniform"

    def extremes(self) -> list[Any]:
        """The values a constructor must accept for the whole range to be usable."""
        return list(self.values)

    def describe(self) -> str:
        return f"{self.key} {self.kind} {list(self.values)}"


def tune_space(run: RunConfig, registry: Registry) -> list[Dimension]:
    """The run's search space as dimensions; `space = "default"` reads the optimizer's
    `search_space` (a `TuneError` when it declares none)."""
    tune = run.tune
    assert tune is not None and run.optimizer is not None  # a tuned run trains (schema checks)
    if isinstance(tune.space, dict):
        return [Dimension(k, *_entry(v)) for k, v in tune.space.items()]
    name = run.optimizer.name
    component = registry.component("optimizers", name)
    declared = getattr(component.cls, "search_space", None)
    if not declared:
        raise TuneError(
            f'[tune] space = "default": optimizer {name!r} (from {component.provider}) declares no '
            f"default search space (a `search_space` class attribute); give the space in the file, "
            f'e.g. space = {{ "optimizer.lr" = {{ log_uniform = [1e-4, 1e-1] }} }}'
        )
    problems = (
        [space_problem(k, v) for k, v in declared.items()]
        if isinstance(declared, dict)
        else ["it is not a table of hyperparameter names"]
    )
    found = [p for p in problems if p]
    if found:
        raise TuneError(
            f'[tune] space = "default": optimizer {name!r} (from {component.provider}) declares a '
            f"search_space nnrun cannot use: {found[0]}; give the space in the file instead"
        )
    return [Dimension(f"optimizer.{k}", *_entry(v)) for k, v in declared.items()]


class TuneError(ValueError):
    """A `[tune]` problem found while resolving the space."""


def _entry(entry: dict[str, list[Any]]) -> tuple[str, tuple[Any, ...]]:
    kind, values = next(iter(entry.items()))
    return kind, tuple(values)


def epoch_metrics(run: RunConfig) -> list[str]:
    """The keys of the run's epoch records that `[tune] metric` may name."""
    assert run.data is not None and run.train is not None
    keys = list(EPOCH_METRICS)
    if run.data.split.val > 0:
        keys.append("val_loss")
    split = "val" if run.data.split.val > 0 else "train"  # where the trainer scores the metrics
    for metric in getattr(run.train, "metrics", None) or []:  # `[train] metrics`, where present
        name = metric if isinstance(metric, str) else getattr(metric, "name", str(metric))
        keys.append(f"{split}_{name}")
    return keys


def with_tune_mode(run: RunConfig, registry: Registry) -> RunConfig:
    """`run` with `[tune] mode` filled in when the file leaves it out: "min" for a loss, else
    the mode of the metric plugin that `val_<name>` or `train_<name>` records (accuracy: max)."""
    tune = run.tune
    if tune is None or tune.mode is not None:
        return run
    name = tune.metric.partition("_")[2]
    mode = "min"
    if not tune.metric.endswith("_loss") and name in registry.metrics:
        mode = registry.metrics[name].mode
    return run.model_copy(update={"tune": tune.model_copy(update={"mode": mode})})


def tune_problems(text: str, run: RunConfig, registry: Registry) -> list[Located]:
    """Everything wrong with the run's `[tune]`, each with its line; [] when it has none."""
    tune = run.tune
    if tune is None:
        return []
    here = line_for(text, ("tune",), run.name)
    if importlib.util.find_spec("optuna") is None:
        return [(here, "[tune] needs Optuna: install the extra with pip install 'nnrun[tune]'")]
    problems: list[Located] = []
    metrics = epoch_metrics(run)
    if tune.metric not in metrics:
        hint = (
            "; val_loss needs a validation share: [data] split = { val = 0.2 }"
            if tune.metric == "val_loss"
            else suggest(tune.metric, metrics)
        )
        problems.append(
            (
                line_for(text, ("tune", "metric"), run.name),
                f"[tune] metric = {tune.metric!r} is not in this run's epoch records{hint}; "
                f"it records {', '.join(metrics)}",
            )
        )
    try:
        space = tune_space(run, registry)
    except TuneError as error:
        return [*problems, (line_for(text, ("tune", "space"), run.name), str(error))]
    for dimension in space:
        problems += _dimension_problems(text, run, registry, dimension)
    if tune.method == "grid":
        problems += _grid_problems(text, run, tune, space)
    return problems


def _dimension_problems(
    text: str, run: RunConfig, registry: Registry, dimension: Dimension
) -> list[Located]:
    """Set the key to each extreme and validate the run like any other: an unknown key or a bound
    the schema or the constructor refuses is reported once, at the space key's line."""
    key = dimension.key
    where = line_of(text, key) or line_for(text, ("tune", "space"), run.name)
    table = key.split(".")[0]
    if table not in TUNABLE:
        return [
            (
                where,
                f"[tune] space {key!r}: {table!r} is not a table a trial can vary"
                f"{suggest(table, TUNABLE)}; space keys start with one of {', '.join(TUNABLE)}",
            )
        ]
    for value in dimension.extremes():
        tables = run.model_dump(exclude_none=True)
        tables.pop("tune")
        name = tables.pop("name")
        set_path(tables, key.split("."), value)
        try:
            candidate = RunConfig(name=name, **tables)
        except pydantic.ValidationError as error:
            message = describe(telling(error.errors())[0])
        else:
            _, located = resolve_components(candidate, registry)
            if not located:
                continue
            message = located[0][1]
        unknown = "does not take" in message or "unknown key" in message
        at = "" if unknown else f"at {value!r}: "
        return [(where, f"[tune] space {dimension.describe()}: {at}{message}")]
    return []


def _grid_problems(
    text: str, run: RunConfig, tune: TuneSection, space: list[Dimension]
) -> list[Located]:
    """A grid is a finite set of points: every dimension a choice, and `trials` all of them."""
    ranged = [d.key for d in space if d.kind != "choice"]
    if ranged:
        return [
            (
                line_for(text, ("tune", "method"), run.name),
                f"[tune] method = 'grid' needs every space key to be a choice, and "
                f"{', '.join(ranged)} is a range; use method = 'random', 'qmc' or 'tpe', or give "
                f"choices",
            )
        ]
    points = math.prod(len(d.values) for d in space)
    if tune.trials != points:
        return [
            (
                line_for(text, ("tune", "trials"), run.name),
                f"[tune] method = 'grid' over these choices has {points} points: set trials = {points}",
            )
        ]
    return []


def tune_runs(run: RunConfig) -> int:
    """How many runs a configuration makes: itself, or its trials and the best's final seeds."""
    return 1 if run.tune is None else run.tune.trials + run.tune.final_seeds


def describe_tune(run: RunConfig, registry: Registry) -> str:
    """One line for `nnrun check`: the method, the budget and the space of a tuned configuration."""
    tune = run.tune
    assert tune is not None
    space = "; ".join(d.describe() for d in tune_space(run, registry))
    prune = f", pruning {tune.prune.method}" if tune.prune else ""
    final = f" + best on {tune.final_seeds} seeds" if tune.final_seeds else ""
    return (
        f"{run.name}: {tune.method}, {tune.trials} trials{final}, {tune.metric} ({tune.mode})"
        f"{prune}; space: {space}"
    )
