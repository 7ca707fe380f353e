"""Run an experiment: every run in turn (or in worker processes), each result saved as it lands.

A run that diverges or raises is recorded and the others go on; Ctrl-C or SIGTERM finishes the
current step, checkpoints, writes the summary so far and raises `Interrupted`.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from nnrun.config import Experiment, RunConfig
from nnrun.config.requires import required_versions
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
    registry = registry if registry is not None else load_registry()
    reporter = reporter or SilentReporter()
    if isinstance(out, str) and not out.strip():
        raise ConfigError("--out is empty: give the run directory's path, or leave --out out")
    if out is None:
        directory = RunDirectory.create_new(default_out(experiment))
    else:
        directory = RunDirectory.create(out, force=force, resume=resume)
    with directory:  # holds the directory's lock until the end
        return _run_locked(experiment, directory, registry, jobs, resume, reporter)


def _run_locked(
    experiment: Experiment,
    directory: RunDirectory,
    registry: Registry,
    jobs: int,
    resume: bool,
    reporter: Reporter,
) -> dict[str, Any]:
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
        summary_file = directory.path / SUMMARY
        if resume and (summary_file.exists() or summary_file.is_symlink()):
            previous = {r["name"]: r for r in directory.read_summary()["runs"]}
        self.directory, self.experiment, self.reporter = directory, experiment, reporter
        self.entries = {
            run.name: previous.get(run.name, {"name": run.name, "status": "pending"})
            for run in experiment.runs
        }

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
        initargs=(torch.get_num_threads(), os.getpid(), directory.path),
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
                    if process.is_alive() and process.pid is not None:  # started, so it has one
                        os.kill(process.pid, signal.SIGTERM)
            waiting = {f for f in waiting if not f.cancelled()}


def _result(future: concurrent.futures.Future, run: RunConfig) -> dict[str, Any]:
    try:
        return future.result()
    except NnrunError:
        raise  # bad input or an unusable run directory, found in the worker: exit status 2
    except Exception as error:  # the worker process itself died
        return {"name": run.name, "status": "failed", "error": f"{type(error).__name__}: {error}"}


#: The run directory a worker holds a share of the lock of, for as long as it lives.
_worker_directory: RunDirectory | None = None
PR_SET_PDEATHSIG = 1


def _worker_init(threads: int, parent: int, out: Path) -> None:
    global _worker_directory
    import torch

    _die_with_parent(parent)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    _worker_directory = RunDirectory(out)
    _worker_directory.share_lock()


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive its parent: after a `kill -9` of nnrun it would go on writing
    metrics that a resume then records again. Linux kills it (PR_SET_PDEATHSIG); elsewhere a
    watchdog thread ends it once it has been handed to another parent."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # it died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


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

    saved = directory.read_config()
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
