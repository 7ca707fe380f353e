"""The executor interface: a task run anywhere computes like this process and never raises, the
loop over futures yields each outcome once and drops what a stop cancelled, and the driver
records outcomes, stopping at bad input."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import textwrap
from concurrent.futures.process import BrokenProcessPool

import pytest
import torch

import nnrun
from nnrun.errors import ConfigError
from nnrun.executor import Executor, Outcome, Task, as_finished, make_tasks, request_stop
from nnrun.experiment.execute import execute_run
from nnrun.experiment.reporting import SilentReporter
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.runner import run_experiment
from nnrun.experiment.train import StopFlag

CSV_EXPERIMENT = """
[experiment]
name = "csv"
seed = 2

[data]
kind = "csv"
path = "d.csv"
targets = ["y"]

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.05

[train]
epochs = 2
batch_size = 4

[[runs]]
name = "one"

[[runs]]
name = "two"
optimizer = { name = "adam", lr = 0.01 }
"""


@pytest.fixture
def csv_experiment(tmp_path):
    (tmp_path / "d.csv").write_text(
        "x,y\n" + "".join(f"{i / 8},{(i / 8) ** 2}\n" for i in range(16))
    )
    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(CSV_EXPERIMENT))
    return nnrun.load_experiment(path)


def finished(value=None, error=None):
    future = concurrent.futures.Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


# ------------------------------------------------------------------------------------------------
# Task


def test_a_task_run_in_this_process_gives_the_serial_entry_and_puts_everything_back(
    tmp_path, csv_experiment, monkeypatch
):
    run = csv_experiment.runs[0]
    registry = nnrun.load_registry()
    with RunDirectory.create(tmp_path / "here") as here:
        expected = execute_run(run, here.path, registry, SilentReporter(), False)
    monkeypatch.setenv("NNRUN_DISABLE_PLUGINS", "someone-else")
    (task,) = make_tasks([run], tmp_path / "there", False, False)
    assert task.out.is_absolute() and task.plugins == {"NNRUN_DISABLE_PLUGINS": "someone-else"}
    monkeypatch.delenv("NNRUN_DISABLE_PLUGINS")
    threads, handler = torch.get_num_threads(), signal.getsignal(signal.SIGINT)
    task = Task(run, task.out, False, threads=1 if threads > 1 else 2, plugins=task.plugins)
    with RunDirectory.create(tmp_path / "there"):
        outcome = task()
    without_time = {k: v for k, v in expected.items() if k != "seconds"}
    assert {k: v for k, v in outcome.entry.items() if k != "seconds"} == without_time
    assert outcome.error is None and not outcome.bad_input
    assert torch.get_num_threads() == threads and signal.getsignal(signal.SIGINT) is handler
    assert "NNRUN_DISABLE_PLUGINS" not in os.environ


def test_bad_input_found_by_a_task_comes_back_as_such_and_the_driver_stops_with_exit_2(
    tmp_path, csv_experiment, nnrun_builtins_host
):
    (tmp_path / "elsewhere").mkdir()
    (task,) = make_tasks(csv_experiment.runs[:1], tmp_path / "out", False, False)
    with RunDirectory.create(tmp_path / "out"):
        (tmp_path / "out" / "checkpoints").symlink_to(tmp_path / "elsewhere")
        outcome = task()
    assert outcome.bad_input and "symbolic link" in outcome.error and outcome.entry is None

    class Elsewhere(Executor):  # as if the task had run on another machine
        def execute(self, tasks, context):
            for task in tasks:
                yield task()

    class Plugin:
        @staticmethod
        @nnrun.hookimpl
        def register_executors(register):
            register("elsewhere", Elsewhere)

    nnrun_builtins_host.register(Plugin(), name="elsewhere-plugin")
    registry = nnrun.load_registry(nnrun_builtins_host)
    experiment = csv_experiment
    experiment.executor = {"name": "elsewhere"}

    class LinkedCheckpoints(SilentReporter):
        def experiment_started(self, experiment, path, done):
            (path / "checkpoints").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(ConfigError, match="symbolic link"):
        run_experiment(
            experiment, tmp_path / "run", registry=registry, reporter=LinkedCheckpoints()
        )


def test_a_task_in_a_worker_that_lives_on_starts_unstopped_and_leaves_no_stop_behind(
    tmp_path, csv_experiment
):
    StopFlag.requested = True  # an earlier task on this worker was cancelled
    (task,) = make_tasks(csv_experiment.runs[:1], tmp_path / "out", False, False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with RunDirectory.create(tmp_path / "out"):
            outcome = task()
        assert outcome.entry["status"] == "ok" and StopFlag.requested is False
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stopped_jobs_worker_stays_stopped_for_the_tasks_it_already_took(
    tmp_path, csv_experiment
):
    previous = signal.signal(signal.SIGINT, request_stop)  # a --jobs worker's handler
    StopFlag.requested = True
    try:
        (task,) = make_tasks(csv_experiment.runs[:1], tmp_path / "out", False, False)
        with RunDirectory.create(tmp_path / "out"):
            outcome = task()
        assert outcome.entry["status"] == "interrupted" and StopFlag.requested
    finally:
        signal.signal(signal.SIGINT, previous)
        StopFlag.requested = False


# ------------------------------------------------------------------------------------------------
# as_finished


def test_as_finished_yields_results_and_failures_once_and_drops_what_was_cancelled(csv_experiment):
    tasks = make_tasks(csv_experiment.runs * 2, csv_experiment.path.parent, False, False)
    ok = Outcome("one", {"name": "one", "status": "ok"})

    class Wrapped(Exception):
        def __init__(self, cause):
            super().__init__("wrapped")
            self.cause = cause

    class EngineCancelled(Exception):
        pass

    cancelled = concurrent.futures.Future()
    cancelled.cancel()
    futures = {
        finished(ok): tasks[0],
        finished(error=BrokenProcessPool("a worker process died")): tasks[1],
        finished(error=Wrapped(MemoryError("out of memory"))): tasks[2],
        finished(error=EngineCancelled()): tasks[3],
        cancelled: tasks[0],
    }
    outcomes = list(
        as_finished(
            futures,
            lambda: False,
            lambda waiting: pytest.fail("no stop was requested"),
            cancellations=(EngineCancelled,),
            unwrap=lambda error: error.cause if isinstance(error, Wrapped) else error,
        )
    )
    assert sorted(outcomes, key=lambda o: o.error or "") == [
        ok,
        Outcome("two", error="BrokenProcessPool: a worker process died"),
        Outcome("one", error="MemoryError: out of memory"),
    ]


def test_a_stop_request_interrupts_once_and_a_future_added_by_poll_is_waited_for(csv_experiment):
    (task,) = make_tasks(csv_experiment.runs[:1], csv_experiment.path.parent, False, False)
    running, late = concurrent.futures.Future(), concurrent.futures.Future()
    futures = {running: task}
    interrupts, polls = [], []

    def poll():
        polls.append(len(polls))
        if len(polls) == 2:
            futures[late] = task  # submitted as a slot came free
        if len(polls) == 4:
            late.set_result(Outcome("one", {"name": "one", "status": "interrupted"}))

    def interrupt(waiting):
        interrupts.append(set(waiting))
        running.cancel()

    outcomes = list(as_finished(futures, lambda: True, interrupt, poll=poll))
    assert interrupts == [{running}]  # once, with what was waiting then
    assert outcomes == [Outcome("one", {"name": "one", "status": "interrupted"})]


def test_a_failed_outcome_says_why_the_run_has_no_entry():
    assert Outcome("a", error="WorkerCrashedError: gone").summary_entry() == {
        "name": "a",
        "status": "failed",
        "error": "WorkerCrashedError: gone",
    }
