"""The built-in executors: `local` (this process, or `jobs` worker processes), `ray` (a Ray
cluster, or a private instance on this machine) and `submitit` (SLURM, or submitit's local
emulation). Each only moves tasks and outcomes; the runner records them (see `nnrun.executor`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import nnrun
from nnrun.errors import ConfigError
from nnrun.executor import ExecutionContext, Executor, Outcome, Task, as_finished, request_stop

nnrun_api = 1


def call(task: Task) -> Outcome:
    """What every engine runs: the task itself (a module-level function pickles by name)."""
    return task()


class Local(Executor):
    """This machine: the runs one after another in this process (progress bars and all), or
    with `jobs` > 1 in that many spawned worker processes. Every run is seeded on its own and
    computes with the driver's thread count, so the numbers are those of a serial run."""

    def __init__(self, jobs: int = 1):
        if jobs < 1:
            raise ValueError(f"Invalid jobs: {jobs} (the runs at once, at least 1)")
        self.jobs = jobs

    def execute(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        if self.jobs <= 1 or len(tasks) <= 1:
            yield from self._serial(tasks, context)
        else:
            yield from self._parallel(tasks, context)

    def _serial(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        from nnrun.experiment.execute import execute_run

        for task in tasks:
            watch = task.watch() if task.watch is not None else None
            entry = execute_run(
                task.run, task.out, context.registry, context.reporter, task.resume, watch
            )
            yield Outcome(task.name, entry)
            if context.should_stop():
                return

    def _parallel(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        """A stop request is passed on to the live workers at once (SIGTERM: they checkpoint),
        and the runs not yet started stay pending."""
        import torch

        with concurrent.futures.ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(torch.get_num_threads(), os.getpid(), context.directory),
        ) as pool:

            def interrupt(waiting: set[concurrent.futures.Future]) -> None:
                for future in waiting:
                    future.cancel()
                for process in list(pool._processes.values()):
                    if process.is_alive() and process.pid is not None:  # started, so it has one
                        os.kill(process.pid, signal.SIGTERM)

            futures = {pool.submit(call, task): task for task in tasks}
            yield from as_finished(futures, context.should_stop, interrupt)


#: The run directory a `--jobs` worker holds a share of the lock of, for as long as it lives.
_worker_directory: Any = None
PR_SET_PDEATHSIG = 1


def _worker_init(threads: int, parent: int, out: Path) -> None:
    global _worker_directory
    import torch

    from nnrun.experiment.rundir import RunDirectory

    _die_with_parent(parent)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
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


class Ray(Executor):
    """A Ray cluster: every run one Ray task, reserving `num_cpus` and `num_gpus`, never retried
    (a retry would record its epochs twice). `address = "local"` starts a private instance on
    this machine for the experiment; "auto" joins the cluster this machine belongs to, and
    "ray://HOST:10001" one elsewhere through Ray Client. Ray already started in this process
    (`ray.init()` in a notebook) is used as it is."""

    requires = ("ray", "Ray", "ray")

    def __init__(self, address: str = "local", num_cpus: float = 1.0, num_gpus: float = 0.0):
        if not address.strip():
            raise ValueError('Invalid address: empty (use "local", "auto" or "ray://HOST:PORT")')
        if num_cpus < 0 or num_gpus < 0:
            raise ValueError(f"Invalid num_cpus/num_gpus: {num_cpus}/{num_gpus} (at least 0)")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus

    def execute(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        import ray
        from ray.exceptions import RayTaskError, TaskCancelledError

        started = not ray.is_initialized()
        if started:
            local = self.address == "local"
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False if local else None,
                    log_to_driver=context.reporter.shows_epochs,
                    configure_logging=False,
                )
            except Exception as error:  # no cluster there, or a version that cannot join it
                raise ConfigError(
                    f"[executor] address = {self.address!r}: Ray could not start or join a "
                    f"cluster there: {type(error).__name__}: {error}. Nothing has run; use "
                    f'"local" for a private instance, "auto" on a node of a running cluster'
                ) from None
        try:
            remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(call)
            refs = [remote.remote(task) for task in tasks]
            futures = {ref.future(): task for ref, task in zip(refs, tasks)}
            pending = dict(zip(futures, refs))

            def interrupt(waiting: set[concurrent.futures.Future]) -> None:
                for future in waiting:  # queued ones are dropped, running ones get SIGINT
                    ray.cancel(pending[future])

            yield from as_finished(
                futures,
                context.should_stop,
                interrupt,
                cancellations=(TaskCancelledError,),
                unwrap=lambda error: (
                    error.cause if isinstance(error, RayTaskError) and error.cause else error
                ),
            )
        finally:
            if started:
                ray.shutdown()


class Submitit(Executor):
    """SLURM through submitit: every run one job of a job array (`partition`, `timeout_min`,
    `cpus_per_task`, `gpus_per_node`; at most `array_parallelism` at once, 0: 256), submitted
    from the driver, which waits for them. `cluster = "local"` runs the jobs as processes on
    this machine (at most `array_parallelism`, 0: one per CPU), "auto" picks SLURM where `sbatch`
    is found. Logs and job files go to `folder`, by default `submitit/` in the run directory."""

    requires = ("submitit", "submitit", "slurm")
    #: `nnrun verify` runs its jobs on this machine, never on a cluster.
    verify_hyperparameters: ClassVar[dict[str, Any]] = {"cluster": "local"}

    def __init__(
        self,
        cluster: Literal["auto", "local", "slurm"] = "auto",
        folder: str = "",
        partition: str = "",
        timeout_min: int = 60,
        cpus_per_task: int = 1,
        gpus_per_node: int = 0,
        array_parallelism: int = 0,
    ):
        for name, value, least in (
            ("timeout_min", timeout_min, 1),
            ("cpus_per_task", cpus_per_task, 1),
            ("gpus_per_node", gpus_per_node, 0),
            ("array_parallelism", array_parallelism, 0),
        ):
            if value < least:
                raise ValueError(f"Invalid {name}: {value} (at least {least})")
        self.cluster, self.folder, self.partition = cluster, folder, partition
        self.timeout_min, self.cpus_per_task, self.gpus_per_node = (
            timeout_min,
            cpus_per_task,
            gpus_per_node,
        )
        self.array_parallelism = array_parallelism

    def execute(self, tasks: Sequence[Task], context: ExecutionContext) -> Iterator[Outcome]:
        import submitit

        from nnrun.experiment.rundir import SUBMITIT

        folder = Path(self.folder).absolute() if self.folder else context.directory / SUBMITIT
        try:
            executor = submitit.AutoExecutor(
                folder=folder, cluster=None if self.cluster == "auto" else self.cluster
            )
        except Exception as error:  # e.g. cluster = "slurm" where there is no sbatch
            raise ConfigError(
                f"[executor] cluster = {self.cluster!r}: submitit cannot submit there: "
                f'{type(error).__name__}: {error}. Nothing has run; use "local" on this machine'
            ) from None
        slurm = executor.cluster == "slurm"
        limit = self.array_parallelism or (256 if slurm else (os.cpu_count() or 1))
        parameters: dict[str, Any] = {
            "name": "nnrun",
            "timeout_min": self.timeout_min,
            "cpus_per_task": self.cpus_per_task,
            "gpus_per_node": self.gpus_per_node,
            "slurm_array_parallelism": limit,
        }
        if self.partition:
            parameters["slurm_partition"] = self.partition
        executor.update_parameters(**parameters)
        queue = list(tasks)
        jobs: dict[concurrent.futures.Future, Any] = {}
        futures: dict[concurrent.futures.Future, Task] = {}
        stopped = False

        def submit(batch: list[Task]) -> None:
            with executor.batch():
                submitted = [executor.submit(call, task) for task in batch]
            for job, task in zip(submitted, batch):
                future: concurrent.futures.Future = concurrent.futures.Future()
                jobs[future], futures[future] = job, task

        def poll() -> None:
            """Resolve the futures of finished jobs; on this machine keep `limit` running."""
            for future, job in list(jobs.items()):
                if future.done() or not job.done():
                    continue
                try:
                    future.set_result(job.result())
                except Exception as error:  # the job died: timed out, killed, out of memory
                    if stopped:
                        future.set_exception(concurrent.futures.CancelledError())
                    else:
                        future.set_exception(error)
            running = sum(not f.done() for f in jobs)
            if queue and not stopped and running < limit:
                submit([queue.pop(0) for _ in range(min(limit - running, len(queue)))])

        def interrupt(waiting: set[concurrent.futures.Future]) -> None:
            nonlocal stopped
            stopped = True
            queue.clear()  # never submitted: they stay pending
            for future in waiting:
                jobs[future].cancel(check=False)  # SIGINT here, scancel (SIGTERM) on SLURM

        if slurm:
            submit(queue[:])  # one job array; SLURM keeps `limit` running
            queue.clear()
        yield from as_finished(futures, context.should_stop, interrupt, poll=poll)


@nnrun.hookimpl
def register_executors(register: Any) -> None:
    register("local", Local)
    register("ray", Ray)
    register("submitit", Submitit)
