"""Executors: where an experiment's independent runs execute (worker processes on this machine, a
Ray cluster, SLURM through submitit, or whatever engine a plugin brings).

The runner stays the driver: it hands the executor every pending run as a `Task` and records each
`Outcome` as it comes back, in one summary. An executor only moves tasks to workers and outcomes
back. A task is plain picklable data; called in any process it loads that process's plugins with
the driver's switches, computes with the driver's torch thread count (it decides the summation
order of matrix products, so the numbers equal a serial run's) and writes the run's metrics and
checkpoints into the run directory itself, exactly as `--jobs` workers do: every worker must see
the run directory at the same path (a shared file system on a cluster).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nnrun.config.schema import RunConfig
    from nnrun.experiment.execute import Watch
    from nnrun.experiment.reporting import Reporter
    from nnrun.registry import Registry

#: The environment variables that choose which plugins a process loads (`nnrun.loading`).
PLUGIN_SWITCHES = ("NNRUN_STRICT_PLUGINS", "NNRUN_NO_PLUGINS", "NNRUN_DISABLE_PLUGINS")
#: Seconds between two looks at the outstanding tasks (and at a stop request).
POLL = 0.2


@dataclass(frozen=True)
class Outcome:
    """What became of one task, as plain data that crosses any process or machine boundary."""

    name: str
    entry: dict[str, Any] | None = None  # the run's summary entry, when the task returned
    error: str | None = None  # "Type: message" when it raised, or its worker died
    bad_input: bool = False  # the error is nnrun's own (bad input found in the worker): exit 2

    def summary_entry(self) -> dict[str, Any]:
        """The entry to record: the run's own, or a failed one saying why there is none."""
        if self.entry is not None:
            return self.entry
        return {"name": self.name, "status": "failed", "error": self.error or "no result"}


@dataclass(frozen=True)
class Task:
    """One run to execute. Calling it runs it in this process, as a worker, and never raises."""

    run: RunConfig
    out: Path  # the run directory, absolute
    resume: bool
    epoch_lines: bool = False  # print the per-epoch lines on stderr
    threads: int = 1  # the driver's torch thread count
    plugins: Mapping[str, str] = field(default_factory=dict)  # the driver's plugin switches
    #: Made where the run executes, a watch shown each epoch's record (a tuning trial's, which
    #: reports to its study through the study's storage and may be pruned); picklable.
    watch: Callable[[], Watch] | None = None

    @property
    def name(self) -> str:
        return self.run.name

    def __call__(self) -> Outcome:
        from nnrun.errors import NnrunError
        from nnrun.experiment.execute import execute_run_in_worker
        from nnrun.experiment.rundir import RunDirectory

        try:
            with _as_the_driver(self):
                directory = RunDirectory(self.out)
                directory.share_lock()  # a newcomer is refused while any task writes here
                try:
                    return Outcome(
                        self.name,
                        execute_run_in_worker(
                            self.run, self.out, self.resume, self.epoch_lines, self.watch
                        ),
                    )
                finally:
                    directory.close()
        except NnrunError as error:
            return Outcome(self.name, error=str(error), bad_input=True)
        except Exception as error:
            return Outcome(self.name, error=f"{type(error).__name__}: {error}")


def make_tasks(
    runs: Sequence[RunConfig],
    out: Path,
    resume: bool,
    epoch_lines: bool,
    watch: Callable[[], Watch] | None = None,
) -> list[Task]:
    """The tasks of `runs`, carrying what a worker anywhere needs to compute like this process."""
    import torch

    plugins = {name: os.environ[name] for name in PLUGIN_SWITCHES if name in os.environ}
    return [
        Task(run, out.absolute(), resume, epoch_lines, torch.get_num_threads(), plugins, watch)
        for run in runs
    ]


@dataclass
class ExecutionContext:
    """What the driver lends an executor: the registry and reporter (for running in-process, as
    the serial local executor does) and whether a stop was requested (Ctrl-C, SIGTERM)."""

    directory: Path
    registry: Registry
    reporter: Reporter
    should_stop: Callable[[], bool]


class Executor:
    """The base class of every executor: `execute` runs tasks and yields their outcomes.

    Built as `Cls(**hyperparameters)` from `[executor]`, once at load time too, so that the
    constructor checks its arguments there: it must not start or join anything (do that in
    `execute`). `requires` names the package an executor needs, checked at load time:
    (module, what it is called, the nnrun extra that installs it), e.g. ("ray", "Ray", "ray").
    """

    requires: ClassVar[tuple[str, str, str] | None] = None

    def execute(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        """Run every task and yield each one's `Outcome` as soon as it is known (in any order).

        Once `context.should_stop()` is true, no further task may start: cancel the queued ones
        (they are never yielded, and stay pending for `nnrun resume`) and ask the running ones to
        stop (SIGINT or SIGTERM: the task then checkpoints and returns an interrupted entry),
        yield what they still return, then return.
        """
        raise NotImplementedError


def as_finished(
    futures: Mapping[concurrent.futures.Future, Task],
    should_stop: Callable[[], bool],
    interrupt: Callable[[set[concurrent.futures.Future]], None],
    cancellations: tuple[type[BaseException], ...] = (),
    unwrap: Callable[[BaseException], BaseException] = lambda error: error,
    poll: Callable[[], None] = lambda: None,
) -> Iterator[Outcome]:
    """The outcomes of tasks running as futures, as each finishes: the loop that an executor on
    `concurrent.futures` (or on an engine turned into futures) shares.

    `poll` is called on every round, for an engine that resolves its futures itself or adds to
    `futures` as it goes; the loop ends when every future in `futures` has been seen. On a stop
    request `interrupt` is called once with the futures still waiting; a future then cancelled,
    or failing with one of `cancellations`, is dropped, not yielded. A future that failed
    otherwise (its worker died) yields a failed outcome, its error passed through `unwrap` first
    (an engine's wrapper around the real error).
    """
    seen: set[concurrent.futures.Future] = set()
    interrupted = False
    while True:
        poll()
        waiting = [f for f in futures if f not in seen and not f.cancelled()]
        if not waiting:
            return
        done, _ = concurrent.futures.wait(waiting, timeout=POLL, return_when="FIRST_COMPLETED")
        for future in done:
            seen.add(future)
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                yield future.result()
            elif not isinstance(error, (concurrent.futures.CancelledError, *cancellations)):
                error = unwrap(error)
                yield Outcome(futures[future].name, error=f"{type(error).__name__}: {error}")
        if should_stop() and not interrupted:
            interrupted = True
            interrupt(set(waiting) - done)


class _as_the_driver:
    """Within a task: the driver's plugin switches and torch threads, and SIGINT/SIGTERM asking
    the run to stop after its current step (on the main thread, where handlers can be set); all
    put back afterwards, since an engine's worker process lives on to run other tasks."""

    def __init__(self, task: Task):
        self.task = task

    def __enter__(self) -> None:
        import torch

        from nnrun.experiment.train import StopFlag

        self.environment = {name: os.environ.get(name) for name in PLUGIN_SWITCHES}
        for name in PLUGIN_SWITCHES:
            os.environ.pop(name, None)
        os.environ.update(self.task.plugins)
        self.threads = torch.get_num_threads()
        torch.set_num_threads(self.task.threads)
        self.handlers: dict[int, Any] = {}
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not request_stop:
            StopFlag.requested = False  # a worker that lives on may have stopped an earlier task
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.handlers[sig] = signal.signal(sig, request_stop)

    def __exit__(self, *exc: object) -> None:
        import torch

        from nnrun.experiment.train import StopFlag

        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)
        if self.handlers:
            StopFlag.requested = False
        torch.set_num_threads(self.threads)
        for name, value in self.environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def request_stop(signum: int, frame: Any) -> None:
    """The SIGINT and SIGTERM handler of the driver and of its workers: stop after this step.
    (A worker process whose handler it already is, a `--jobs` one, stays stopped.)"""
    from nnrun.experiment.train import StopFlag

    StopFlag.requested = True
