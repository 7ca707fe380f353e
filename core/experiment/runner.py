"""Run an experiment: every run through the experiment's executor (in turn here, in worker
processes, on a cluster), each result recorded by this process, the driver, as it lands.

A run that diverges or raises is recorded and the others go on; Ctrl-C or SIGTERM finishes the
current step, checkpoints, writes the summary so far and raises `Interrupted`.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from nnrun.config import Experiment, RunConfig
from nnrun.config.requires import required_versions
from nnrun.errors import ConfigError, NnrunError
from nnrun.executor import ExecutionContext, Executor, Task, make_tasks, request_stop
from nnrun.experiment.reporting import Reporter, SilentReporter
from nnrun.experiment.rundir import CONFIG, SUMMARY, RunDirectory
from nnrun.experiment.train import StopFlag
from nnrun.loading import load_registry
from nnrun.registry import Registry

FINISHED = ("ok", "diverged")


class Interrupted(NnrunError):
    """The experiment was stopped by a signal; what finished is saved and can be resumed."""


def default_out(experiment: Experiment) -> Path:
    return Path("runs") / experiment.name / datetime.now().strftime("%Y%m%d-%H%M%S")


def run_experiment(
    experiment: Experiment,
    out: str | Path | None = None,
    *,
    registry: Registry | None = None,
    jobs: int | None = None,
    resume: bool = False,
    force: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run every run of `experiment` and return the summary (also written to `out`/summary.json).

    With `resume`, `out` must hold this same experiment: finished runs are skipped and unfinished
    ones continue from their last checkpoint. `jobs` (`--jobs`) sets the local executor's
    worker processes, over `[executor] jobs`.
    """
    registry = registry if registry is not None else load_registry()
    reporter = reporter or SilentReporter()
    executor = make_executor(experiment, registry, jobs)
    if isinstance(out, str) and not out.strip():
        raise ConfigError("--out is empty: give the run directory's path, or leave --out out")
    if out is None:
        directory = RunDirectory.create_new(default_out(experiment))
    else:
        directory = RunDirectory.create(out, force=force, resume=resume)
    with directory:  # holds the directory's lock until the end
        return _run_locked(experiment, directory, registry, executor, resume, reporter)


def make_executor(experiment: Experiment, registry: Registry, jobs: int | None) -> Executor:
    """The experiment's executor, `jobs` worker processes for the local one."""
    from nnrun.factory import build
    from nnrun.hyperparameters import hyperparameters

    spec = dict(experiment.executor)
    if jobs is not None:
        cls = registry.executors[spec["name"]]
        if "jobs" not in {h.name for h in hyperparameters(cls, "executors")}:
            raise ConfigError(
                f"--jobs {jobs}: --jobs sets the local executor's worker processes, and the "
                f"executor is {spec['name']!r}, which runs as many runs at once as its resources "
                f"allow; leave --jobs out (or use --executor local)"
            )
        spec["jobs"] = jobs
    return build(registry, "executors", spec)


def _run_locked(
    experiment: Experiment,
    directory: RunDirectory,
    registry: Registry,
    executor: Executor,
    resume: bool,
    reporter: Reporter,
) -> dict[str, Any]:
    from nnrun.experiment.report_html import write_report
    from nnrun.experiment.run_plots import plot_run_directory

    config = experiment.to_dict()
    if resume:
        refuse_changed_config(directory, config)
    summary = Summary(directory, experiment, reporter, resume)
    pending = summary.pending()
    if resume:  # reads every checkpoint to resume from: a damaged one is found before any write
        forget_unsaved_epochs(directory, pending, reporter.warn)
    summary.write()
    directory.write_config(config, experiment.overrides)
    directory.write_environment(
        {str(c.provider.distribution): c.provider.version for c in registry.components()},
        required_versions(experiment.runs[0].experiment.requires),
    )
    untuned = [run for run in experiment.runs if run.tune is None]
    reporter.experiment_started(experiment, directory.path, len(untuned) - len(pending))
    with stop_on_signals():
        _execute(executor, pending, directory, registry, reporter, resume, summary)
        if not StopFlag.requested:  # [tune] studies: their trials one after another
            from nnrun.experiment.tuning import run_studies

            run_studies(experiment, directory, registry, executor, reporter, resume, summary)
    try:
        plot_run_directory(directory.path, experiment, registry)
    except Exception as error:  # a plot must never cost the results
        reporter.warn(f"could not draw the plots: {type(error).__name__}: {error}")
    try:
        write_report(directory.path)
    except Exception as error:  # nor may the report
        reporter.warn(f"could not write report.html: {type(error).__name__}: {error}")
    reporter.experiment_finished(summary.as_dict(), directory.path)
    if StopFlag.requested or summary.has("interrupted"):
        raise Interrupted(
            f"interrupted; finished runs and checkpoints are saved in {directory.path}. "
            f"Continue with: nnrun resume {directory.path}"
        )
    return summary.as_dict()


class Summary:
    """summary.json, rewritten atomically whenever a run finishes."""

    def __init__(
        self, directory: RunDirectory, experiment: Experiment, reporter: Reporter, resume: bool
    ):
        previous, self.tune = {}, {}
        summary_file = directory.path / SUMMARY
        if resume and (summary_file.exists() or summary_file.is_symlink()):
            saved = directory.read_summary()
            previous = {r["name"]: r for r in saved["runs"]}
            self.tune = dict(saved.get("tune") or {})  # [tune]: each configuration's outcome
        self.directory, self.experiment, self.reporter = directory, experiment, reporter
        self.entries = {
            run.name: previous.get(run.name, {"name": run.name, "status": "pending"})
            for run in experiment.runs
            if run.tune is None  # a tuned configuration's runs are its trials, made as it goes
        }
        tuned = tuple(f"{run.name}/" for run in experiment.runs if run.tune is not None)
        self.entries |= {name: e for name, e in previous.items() if name.startswith(tuned or "\0")}

    def pending(self) -> list[RunConfig]:
        return [
            r
            for r in self.experiment.runs
            if r.tune is None and self.entries[r.name]["status"] not in FINISHED
        ]

    def record(self, entry: dict[str, Any]) -> None:
        self.entries[entry["name"]] = entry
        self.write()
        self.reporter.run_finished(entry)

    def has(self, status: str) -> bool:
        return any(entry["status"] == status for entry in self.entries.values())

    def as_dict(self) -> dict[str, Any]:
        from nnrun.experiment.statistics import group_statistics

        groups = group_statistics(run_groups(self.experiment), self.entries)
        tune = {"tune": self.tune} if self.tune else {}
        return {
            "experiment": self.experiment.name,
            "runs": list(self.entries.values()),
            "groups": groups,
            **tune,
        }

    def write(self) -> None:
        self.directory.write_json(SUMMARY, self.as_dict())


def run_groups(experiment: Experiment) -> dict[str, list[tuple[str, int]]]:
    """Each configuration's runs as (name, seed): a group per configuration repeated over seeds,
    a group of one for every run without seeds, and a tuned configuration's best trial re-run on
    its final seeds (`CONFIG/best`)."""
    from nnrun.experiment.tuning import final_seeds

    groups: dict[str, list[tuple[str, int]]] = {}
    for run in experiment.runs:
        if run.tune is not None:  # its trials are the search; its best on the final seeds a group
            seeds = final_seeds(run)
            if seeds:
                groups[f"{run.name}/best"] = [(f"{run.name}/best/seed={s}", s) for s in seeds]
            continue
        name = run.group.name if run.group is not None else run.name
        groups.setdefault(name, []).append((run.name, run.experiment.seed))
    return groups


def _execute(
    executor: Executor,
    pending: list[RunConfig],
    directory: RunDirectory,
    registry: Registry,
    reporter: Reporter,
    resume: bool,
    summary: Summary,
) -> None:
    """Hand the pending runs to the executor and record each outcome as it comes back. A run the
    executor never started (a stop request came first) is not recorded: it stays pending."""
    if not pending:
        return
    tasks = make_tasks(pending, directory.path, resume, reporter.shows_epochs)
    for entry in run_tasks(executor, tasks, directory, registry, reporter):
        summary.record(entry)


def run_tasks(
    executor: Executor,
    tasks: list[Task],
    directory: RunDirectory,
    registry: Registry,
    reporter: Reporter,
) -> Iterator[dict[str, Any]]:
    """Each task's summary entry as the executor returns it (the runs of the file, a study's
    trials and its best on the final seeds alike); bad input found by a task raises here."""
    context = ExecutionContext(directory.path, registry, reporter, lambda: StopFlag.requested)
    outcomes = executor.execute(tasks, context)
    try:
        for outcome in outcomes:
            if outcome.bad_input:  # bad input or an unusable run directory: exit status 2
                raise ConfigError(outcome.error or "a task found bad input")
            yield outcome.summary_entry()
    finally:  # a generator's own clean-up (its pool, its cluster connection) runs now
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM ask the loop to stop after the current step instead of killing it."""
    StopFlag.requested = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def forget_unsaved_epochs(
    directory: RunDirectory,
    unfinished: list[RunConfig],
    warn: Callable[[str], None] | None = None,
) -> None:
    """Drop metrics that an unfinished run recorded after its last checkpoint (a crash between
    checkpoints, or a damaged newest checkpoint replaced by the one before, reported to `warn`):
    the resumed run records those epochs again. A last line cut short by a crash goes too."""
    kept_epochs = {}
    for run in unfinished:
        checkpoint = directory.load_last_checkpoint(run.name, on_damaged=warn)
        kept_epochs[run.name] = checkpoint["trainer"]["epoch"] if checkpoint else 0
    records = directory.read_metrics()
    kept = [
        r
        for r in records
        if r["run"] not in kept_epochs or r.get("epoch", math.inf) <= kept_epochs[r["run"]]
    ]
    if len(kept) != len(records) or directory.metrics_cut_short():
        directory.rewrite_metrics(kept)


def refuse_changed_config(directory: RunDirectory, config: dict[str, Any]) -> None:
    """Resuming under a different configuration would silently mix two experiments."""
    from nnrun.experiment.rundir import toml_ready

    # the executor is where the runs execute, not what they compute: it may change on a resume
    saved = {k: v for k, v in directory.read_config().items() if k != "executor"}
    new = {k: v for k, v in toml_ready(config).items() if k != "executor"}
    differences = diff(saved, new)
    if differences:
        shown = "; ".join(differences[:10]) + (
            f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        )
        raise ConfigError(
            f"{directory.path}: refusing to resume: the configuration differs from the one saved in "
            f"{CONFIG}: {shown}. Start a new run directory (another --out) for the changed experiment"
        )


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Human-readable differences between two plain data trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            here = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{here} removed (was {old[key]!r})")
            elif key not in old:
                out.append(f"{here} added ({new[key]!r})")
            else:
                out += diff(old[key], new[key], here)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        named = all(isinstance(item, dict) and "name" in item for item in old + new)
        return [
            line
            for index, (a, b) in enumerate(zip(old, new))
            for line in diff(a, b, f"{path}[{a['name'] if named else index}]")
        ]
    same = old == new or (
        isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
    )
    return [] if same else [f"{path}: {old!r} -> {new!r}"]
