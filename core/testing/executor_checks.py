"""Conformance checks for executors: `check_executor(cls, **hyperparameters)`.

`requires`, when set, is (module, what, extra) and its module is installed (else the checks are
skipped, naming the extra). The executor runs a tiny experiment of two training runs in a
temporary run directory and yields each run's outcome exactly once, every entry equal to the one
the same run gives in this process (seconds aside), its metrics written once per epoch.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

from nnrun.errors import MissingDependencyError
from nnrun.executor import ExecutionContext, Executor, make_tasks
from nnrun.testing.results import Check, CheckFailed, run_checks

EXPERIMENT = """
[experiment]
name = "executor-check"
seed = 1
task = "train"

[data]
kind = "function"
expr = "x**2"
n = 32

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.05

[train]
epochs = 2
batch_size = 16

[sweep]
"optimizer.lr" = [0.05, 0.1]
"""


def check_executor(cls: type[Executor], **hyperparameters: Any) -> None:
    """Run every check on `cls(**hyperparameters)`; raise AssertionError at the first broken
    property."""
    run_checks(executor_checks(cls, hyperparameters), strict=True)


def executor_checks(cls: type[Executor], hyperparameters: dict[str, Any]) -> list[Check]:
    """The checks of `check_executor`, for `nnrun verify` to run one by one."""
    name = cls.__name__
    return [
        Check("declares_requires", functools.partial(_requires, name, cls)),
        Check(
            "runs_every_task_once_as_in_process",
            functools.partial(_runs_like_in_process, name, cls, hyperparameters),
            "runs whose entry differs from the in-process one",
            0,
        ),
    ]


def _requires(name: str, cls: type[Executor]) -> None:
    requires = cls.requires
    if requires is None:
        return
    if not (isinstance(requires, tuple) and len(requires) == 3 and all(requires)):
        raise CheckFailed(f"{name}: requires is {requires!r}; use (module, what, extra) or None")
    module, what, extra = requires
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f'{name} needs {what}: pip install "nnrun[{extra}]"')


def _runs_like_in_process(name: str, cls: type[Executor], hyperparameters: dict[str, Any]) -> float:
    from nnrun.config import load_experiment
    from nnrun.experiment.execute import execute_run
    from nnrun.experiment.reporting import SilentReporter
    from nnrun.experiment.rundir import RunDirectory
    from nnrun.loading import load_registry

    _requires(name, cls)
    registry = load_registry()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        (root / "e.toml").write_text(EXPERIMENT)
        runs = load_experiment(root / "e.toml", registry=registry).runs
        here = RunDirectory.create(root / "here")
        with here:
            expected = {
                run.name: _comparable(
                    execute_run(run, here.path, registry, SilentReporter(), False)
                )
                for run in runs
            }
        there = RunDirectory.create(root / "there")
        with there:
            tasks = make_tasks(runs, there.path, False, False)
            context = ExecutionContext(there.path, registry, SilentReporter(), lambda: False)
            outcomes = list(cls(**hyperparameters).execute(tasks, context))
            metrics = [json.loads(line) for line in (there.path / "metrics.jsonl").open()]
    names = sorted(outcome.name for outcome in outcomes)
    if names != sorted(expected):
        raise CheckFailed(
            f"{name}: execute yielded outcomes of {names}, expected {sorted(expected)}"
        )
    different = [
        outcome.name
        for outcome in outcomes
        if _comparable(outcome.summary_entry()) != expected[outcome.name]
    ]
    if different:
        first = next(o for o in outcomes if o.name == different[0])
        raise CheckFailed(
            f"{name}: {len(different)} run(s) differ from the same run in-process; "
            f"{different[0]!r} gave {first.summary_entry()}, expected {expected[different[0]]}",
            len(different),
        )
    epochs = sorted((record["run"], record["epoch"]) for record in metrics)
    wanted = sorted((run.name, epoch + 1) for run in runs for epoch in range(2))
    if epochs != wanted:
        raise CheckFailed(f"{name}: metrics.jsonl holds the epochs {epochs}, expected {wanted}")
    return 0.0


def _comparable(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "seconds"}
