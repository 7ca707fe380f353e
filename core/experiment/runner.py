"""Run an experiment: every run in turn (or in worker processes), each result saved as it lands.

A run that diverges or raises is recorded and the others go on; Ctrl-C or SIGTERM finishes the
current step, checkpoints, writes the summary so far and raises `Interrupted`.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from nnrun.config import Experiment, RunConfig
from nnrun.errors import ConfigError, NnrunError
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
    jobs: int = 1,
    resume: bool = False,
    force: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run every run of `experiment` and return the summary (also written to `out`/summary.json).

    With `resume`, `out` must hold this same experiment: finished runs are skipped and unfinished
    ones continue from their last checkpoint.
    """
    from nnrun.experiment.run_plots import plot_run_directory

    registry = registry if registry is not None else load_registry()
    reporter = reporter or SilentReporter()
    directory = RunDirectory.create(out or default_out(experiment), force=force, resume=resume)
    config = experiment.to_dict()
    if resume:
        refuse_changed_config(directory, config)
    summary = Summary(directory, experiment, reporter, resume)
    directory.write_config(config, experiment.overrides)
    directory.write_environment(
        {str(c.provider.distribution): c.provider.version for c in registry.components()}
    )
    pending = summary.pending()
    if resume:
        forget_unsaved_epochs(directory, pending)
    reporter.experiment_started(experiment, directory.path, len(experiment.runs) - len(pending))
    with stop_on_signals():
        if jobs <= 1 or len(pending) <= 1:
            _run_serial(pending, directory, registry, reporter, resume, summary)
        else:
            _run_parallel(pending, directory, jobs, resume, summary, reporter)
    try:
        plot_run_directory(directory.path, experiment, registry)
    except Exception as error:  # a plot must never cost the results
        reporter.warn(f"could not draw the plots: {type(error).__name__}: {error}")
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
        previous = {}
        if resume and (directory.path / SUMMARY).exists():
            previous = {r["name"]: r for r in directory.read_summary()["runs"]}
        self.directory, self.experiment, self.reporter = directory, experiment, reporter
        self.entries = {
            run.name: previous.get(run.name, {"name": run.name, "status": "pending"})
            for run in experiment.runs
        }
        self.write()

    def pending(self) -> list[RunConfig]:
        return [r for r in self.experiment.runs if self.entries[r.name]["status"] not in FINISHED]

    def record(self, entry: dict[str, Any]) -> None:
        self.entries[entry["name"]] = entry
        self.write()
        self.reporter.run_finished(entry)

    def has(self, status: str) -> bool:
        return any(entry["status"] == status for entry in self.entries.values())

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment.name, "runs": list(self.entries.values())}

    def write(self) -> None:
        self.directory.write_json(SUMMARY, self.as_dict())


def _run_serial(pending, directory, registry, reporter, resume, summary: Summary) -> None:
    from nnrun.experiment.execute import execute_run

    for run in pending:
        summary.record(execute_run(run, directory.path, registry, reporter, resume))
        if StopFlag.requested:
            break


def _run_parallel(pending, directory, jobs, resume, summary: Summary, reporter: Reporter) -> None:
    """Independent runs in worker processes; every run is seeded on its own, so the numbers are
    the same as in a serial run. A stop request is passed on to the workers at once, and runs not
    yet started stay pending for `nnrun resume`."""
    import torch

    from nnrun.experiment.execute import execute_run_in_worker

    # Workers compute with the parent's thread count: it decides the summation order of matrix
    # products, so the numbers stay identical to a serial run.
    with concurrent.futures.ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(torch.get_num_threads(),),
    ) as pool:
        futures = {
            pool.submit(
                execute_run_in_worker, run, directory.path, resume, reporter.shows_epochs
            ): run
            for run in pending
        }
        waiting, forwarded = set(futures), False
        while waiting:
            done, waiting = concurrent.futures.wait(
                waiting, timeout=0.2, return_when="FIRST_COMPLETED"
            )
            for future in done:
                summary.record(_result(future, futures[future]))
            if StopFlag.requested and not forwarded:
                forwarded = True
                for future in waiting:
                    future.cancel()
                for process in list(pool._processes.values()):
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGTERM)
            waiting = {f for f in waiting if not f.cancelled()}


def _result(future: concurrent.futures.Future, run: RunConfig) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as error:  # the worker process itself died
        return {"name": run.name, "status": "failed", "error": f"{type(error).__name__}: {error}"}


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)


def _request_stop(signum: int, frame: Any) -> None:
    StopFlag.requested = True


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM ask the loop to stop after the current step instead of killing it."""
    StopFlag.requested = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, _request_stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def forget_unsaved_epochs(directory: RunDirectory, unfinished: list[RunConfig]) -> None:
    """Drop metrics that an unfinished run recorded after its last checkpoint (a crash between
    checkpoints): the resumed run records those epochs again."""
    kept_epochs = {}
    for run in unfinished:
        checkpoint = directory.load_last_checkpoint(run.name)
        kept_epochs[run.name] = (
            checkpoint["trainer"]["epoch"] if checkpoint and "trainer" in checkpoint else 0
        )
    records = directory.read_metrics()
    kept = [
        r
        for r in records
        if r.get("run") not in kept_epochs or r.get("epoch", math.inf) <= kept_epochs[r["run"]]
    ]
    if len(kept) != len(records):
        directory.rewrite_metrics(kept)


def refuse_changed_config(directory: RunDirectory, config: dict[str, Any]) -> None:
    """Resuming under a different configuration would silently mix two experiments."""
    from nnrun.config.compose import tomllib
    from nnrun.experiment.rundir import toml_ready

    saved = tomllib.loads((directory.path / CONFIG).read_text(encoding="utf-8"))
    differences = diff(saved, toml_ready(config))
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
