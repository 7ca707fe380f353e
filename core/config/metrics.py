"""What the metrics a run names must fit: its data's task (accuracy is for classification)."""

from __future__ import annotations

from nnrun.config.schema import RunConfig
from nnrun.errors import NnrunError
from nnrun.registry import Registry

#: (key path, message), as `nnrun.config.resolve` reports them.
Problem = tuple[tuple[str, ...], str]


def check_metrics(run: RunConfig, registry: Registry, task: str) -> list[Problem]:
    """A problem for each metric in `[train] metrics` that is not made for `task`."""
    if run.train is None:
        return []
    problems: list[Problem] = []
    for spec in run.train.metrics:
        try:
            cls = registry.metrics[spec.name]
        except NnrunError:
            continue  # reported where the component was resolved
        if task not in cls.tasks:
            fitting = [name for name in registry.metrics if task in registry.metrics[name].tasks]
            problems.append(
                (
                    ("train", "metrics"),
                    f"[train] metrics: {spec.name!r} is a metric for "
                    f"{' and '.join(cls.tasks)}, and this run's data is {task}; "
                    f"{task} takes {', '.join(map(repr, fitting)) or 'no built-in metric'}",
                )
            )
    return problems
