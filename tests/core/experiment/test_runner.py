"""Nothing lost: interrupted runs resume bit-identically, a kill -9 leaves readable results, parallel
runs give the serial numbers, a changed config refuses to resume."""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch

import nnrun
from nnrun.errors import ConfigError
from nnrun.experiment import runner
from nnrun.experiment.execute import execute_run, execute_run_in_worker
from nnrun.experiment.reporting import ConsoleReporter, SilentReporter, worker_console
from nnrun.experiment.rundir import RunDirectory, RunDirectoryError
from nnrun.experiment.runner import Interrupted, run_experiment
from nnrun.experiment.train import StopFlag, Trainer
from nnrun.loading import load_registry
from nnrun.plugins import executors as local_executor

SLOW = """
[experiment]
name = "slow"
seed = 3

[data]
expr = "sin(3*x)"
n = 400
range = [-2.0, 2.0]
noise = 0.05
split = { val = 0.25 }

[model]
layers = [1, 32, 1]
activation = "tanh"

[optimizer]
name = "adam"
lr = 0.01

[scheduler]
name = "step"
step_size = 3
gamma = 0.5

[train]
epochs = 12
batch_size = 4
shuffle = true
checkpoint_every = 2

[[runs]]
name = "first"

[[runs]]
name = "second"
optimizer = { name = "sgd", lr = 0.05, momentum = 0.9 }
"""


def experiment_file(tmp_path, text=SLOW):
    path = tmp_path / "slow.toml"
    path.write_text(textwrap.dedent(text))
    return path


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_interrupted_then_resumed_run_is_bit_identical_to_an_uninterrupted_one(
    tmp_path, monkeypatch
):
    path = experiment_file(tmp_path)
    reference = tmp_path / "reference"
    run_experiment(nnrun.load_experiment(path), reference)

    # Ask for a stop in the middle of the first run's fifth epoch, as the SIGINT handler would.
    real_fit = Trainer.fit

    def fit_then_stop(self, on_epoch, on_progress=None, on_checkpoint=None):
        def progress(p):
            if p.epoch == 5 and p.step >= 20:
                StopFlag.requested = True

        return real_fit(self, on_epoch, progress, on_checkpoint)

    monkeypatch.setattr(Trainer, "fit", fit_then_stop)
    interrupted = tmp_path / "interrupted"
    with pytest.raises(Interrupted, match="nnrun resume"):
        run_experiment(nnrun.load_experiment(path), interrupted)
    summary = json.loads((interrupted / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["interrupted", "pending"]
    assert (
        (interrupted / "checkpoints" / "first" / "last").resolve().name.startswith("epoch0004-step")
    )
    monkeypatch.setattr(Trainer, "fit", real_fit)

    run_experiment(nnrun.load_experiment(interrupted / "config.toml"), interrupted, resume=True)
    assert without_time(metrics(interrupted)) == without_time(metrics(reference))
    final = json.loads((interrupted / "summary.json").read_text())["runs"]
    expected = json.loads((reference / "summary.json").read_text())["runs"]
    assert [r["final_loss"] for r in final] == [r["final_loss"] for r in expected]


def test_resume_skips_finished_runs_and_refuses_a_changed_config(tmp_path):
    path = experiment_file(tmp_path)
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(path), out)
    before = metrics(out)
    run_experiment(nnrun.load_experiment(path), out, resume=True)
    assert metrics(out) == before  # nothing re-run
    changed = nnrun.load_experiment(path, ["optimizer.lr=0.02"])
    with pytest.raises(
        ConfigError, match=r"refusing to resume.*runs\[first\]\.optimizer\.lr: 0.01 -> 0.02"
    ):
        run_experiment(changed, out, resume=True)


def test_parallel_jobs_give_the_serial_results(tmp_path):
    path = experiment_file(tmp_path, SLOW.replace("epochs = 12", "epochs = 3"))
    serial = run_experiment(nnrun.load_experiment(path), tmp_path / "serial", jobs=1)
    parallel = run_experiment(nnrun.load_experiment(path), tmp_path / "parallel", jobs=2)

    def numbers(summary):
        return sorted((r["name"], r["final_loss"], r["final_val_loss"]) for r in summary["runs"])

    assert numbers(serial) == numbers(parallel)
    by_run = lambda records: sorted(without_time(records), key=lambda r: (r["run"], r["epoch"]))  # noqa: E731
    assert by_run(metrics(tmp_path / "serial")) == by_run(metrics(tmp_path / "parallel"))


def test_a_diverging_run_is_marked_and_the_others_go_on(tmp_path):
    text = SLOW.replace("epochs = 12", "epochs = 3").replace(
        'optimizer = { name = "sgd", lr = 0.05, momentum = 0.9 }',
        'optimizer = { name = "sgd", lr = 1e6 }',
    )
    text += '\n[[runs]]\nname = "third"\n'
    summary = run_experiment(
        nnrun.load_experiment(experiment_file(tmp_path, text)), tmp_path / "out"
    )
    assert [r["status"] for r in summary["runs"]] == ["ok", "diverged", "ok"]
    assert summary["runs"][1]["final_loss"] is None


@pytest.mark.slow  # real subprocesses, ~5 s
def test_sigterm_checkpoints_and_kill_9_leaves_readable_results(tmp_path):
    path = experiment_file(
        tmp_path,
        SLOW.replace("epochs = 12", "epochs = 400").replace(
            "checkpoint_every = 2", "checkpoint_every = 1"
        ),
    )
    for sig, expected_code in [(signal.SIGTERM, 130), (signal.SIGKILL, -9)]:
        out = tmp_path / f"out-{sig.name}"
        process = subprocess.Popen(
            [sys.executable, "-m", "nnrun.cli", str(path), "--out", str(out), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (out / "metrics.jsonl").exists() and len(
                (out / "metrics.jsonl").read_text().splitlines()
            ) >= 3:
                break
            time.sleep(0.05)
        process.send_signal(sig)
        process.wait(timeout=60)
        assert process.returncode == expected_code, process.stderr.read().decode()
        records = metrics(out)  # every line parses
        assert records and all(r["run"] == "first" for r in records)
        checkpoint = torch.load(out / "checkpoints" / "first" / "last", weights_only=True)
        assert checkpoint["trainer"]["epoch"] >= 2
        if sig == signal.SIGTERM:
            assert (
                json.loads((out / "summary.json").read_text())["runs"][0]["status"] == "interrupted"
            )


@pytest.mark.slow  # real --jobs subprocess, ~5 s
def test_parallel_workers_print_their_epoch_lines_and_the_parent_one_status_line_per_run(tmp_path):
    path = experiment_file(tmp_path, SLOW.replace("epochs = 12", "epochs = 2"))
    result = subprocess.run(
        [sys.executable, "-m", "nnrun", str(path), "--out", str(tmp_path / "out"), "--jobs", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stderr.splitlines()
    for name in ("first", "second"):
        assert any(line.startswith(f"{name}  epoch 2/2  train_loss") for line in lines), lines
        assert lines.count(f"ok {name}") == 1, lines


# ------------------------------------------------------------------------------------------------
# Resume from every kind of interruption point gives the numbers of a run that never stopped.

SWEEP = (
    SLOW.replace("epochs = 12", "epochs = 6").replace("n = 400", "n = 80")
    + '\n[[runs]]\nname = "third"\noptimizer = { name = "rmsprop", lr = 0.005 }\n'
)


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory):
    """SWEEP (three runs, shuffled, a scheduler, a checkpoint every 2 epochs) never interrupted."""
    tmp_path = tmp_path_factory.mktemp("reference")
    path = experiment_file(tmp_path, SWEEP)
    summary = run_experiment(nnrun.load_experiment(path), tmp_path / "out")
    return path, summary, metrics(tmp_path / "out")


def stop_in(monkeypatch, run_index, epoch, step=None):
    """Request a stop, as SIGINT would, in the `run_index`-th run (0-based, serial order): after
    `step` batches of epoch `epoch`, or with step None at the end of that epoch."""
    real_fit = Trainer.fit
    calls = []
    monkeypatch.setattr(StopFlag, "requested", False)  # the stop requested is undone afterwards

    def fit(self, on_epoch, on_progress=None, on_checkpoint=None):
        calls.append(None)
        here = len(calls) - 1 == run_index

        def progress(p):
            if here and step is not None and p.epoch == epoch and p.step >= step:
                StopFlag.requested = True
            if on_progress is not None:
                on_progress(p)

        def epoch_end(record):
            on_epoch(record)
            if here and step is None and record["epoch"] == epoch:
                StopFlag.requested = True

        return real_fit(self, epoch_end, progress, on_checkpoint)

    monkeypatch.setattr(Trainer, "fit", fit)
    return real_fit


@pytest.mark.parametrize(
    "point, run_index, epoch, step, statuses",
    [
        ("mid-epoch", 0, 3, 7, ["interrupted", "pending", "pending"]),
        ("at an epoch boundary, shuffled", 0, 3, None, ["interrupted", "pending", "pending"]),
        ("during a sweep", 1, 4, 5, ["ok", "interrupted", "pending"]),
    ],
)
def test_resume_after_a_stop_is_bit_identical_to_an_uninterrupted_run(
    tmp_path, monkeypatch, sweep_reference, point, run_index, epoch, step, statuses
):
    path, expected, expected_metrics = sweep_reference
    out = tmp_path / "out"
    real_fit = stop_in(monkeypatch, run_index, epoch, step)
    with pytest.raises(Interrupted):
        run_experiment(nnrun.load_experiment(path), out)
    assert [r["status"] for r in json.loads((out / "summary.json").read_text())["runs"]] == statuses
    monkeypatch.setattr(Trainer, "fit", real_fit)

    summary = run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)
    assert without_time(metrics(out)) == without_time(expected_metrics)
    assert [r["final_loss"] for r in summary["runs"]] == [r["final_loss"] for r in expected["runs"]]
    assert [r["final_val_loss"] for r in summary["runs"]] == [
        r["final_val_loss"] for r in expected["runs"]
    ]


def test_resume_after_a_kill_between_checkpoints_drops_the_unsaved_epochs(
    tmp_path, monkeypatch, sweep_reference
):
    """kill -9 in epoch 4 of the second run: its newest checkpoint is epoch 2, metrics.jsonl
    already holds epochs 3 and 4 (and half a line), and summary.json still says pending."""
    path, expected, expected_metrics = sweep_reference
    out = tmp_path / "out"
    real_fit = stop_in(monkeypatch, 1, 2)  # stops right after the epoch-2 checkpoint
    with pytest.raises(Interrupted):
        run_experiment(nnrun.load_experiment(path), out)
    monkeypatch.setattr(Trainer, "fit", real_fit)
    summary = json.loads((out / "summary.json").read_text())
    summary["runs"][1] = {"name": "second", "status": "pending"}
    (out / "summary.json").write_text(json.dumps(summary))
    unsaved = [r for r in expected_metrics if r["run"] == "second" and r["epoch"] in (3, 4)]
    with open(out / "metrics.jsonl", "a") as stream:
        stream.write("".join(json.dumps(r) + "\n" for r in unsaved) + '{"run": "second", "ep')

    summary = run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)
    assert without_time(metrics(out)) == without_time(expected_metrics)
    assert [r["final_loss"] for r in summary["runs"]] == [r["final_loss"] for r in expected["runs"]]


def test_a_run_that_raises_leaves_its_traceback_in_failures_log(tmp_path, monkeypatch):
    path = experiment_file(tmp_path, SWEEP)
    real_fit, calls = Trainer.fit, []

    def fit(self, *args, **kwargs):
        calls.append(None)
        if len(calls) == 2:  # the second run
            raise RuntimeError("the plugin broke")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    summary = run_experiment(nnrun.load_experiment(path), tmp_path / "out")
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed", "ok"]
    log = (tmp_path / "out" / "failures.log").read_text()
    assert log.startswith("--- second\nTraceback (most recent call last):")
    assert "RuntimeError: the plugin broke" in log


# ------------------------------------------------------------------------------------------------
# --jobs workers: they stop with their parent, and die with it


JOBS_EPOCHS = 120
JOBS = (
    SLOW.replace("epochs = 12", f"epochs = {JOBS_EPOCHS}")
    .replace("n = 400", "n = 100")
    .replace("checkpoint_every = 2", "checkpoint_every = 1")
)


def start_parallel(path, out):
    """`nnrun PATH --out OUT --jobs 2` in a subprocess, returned once both runs have recorded two
    epochs (both workers are busy writing)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nnrun", str(path), "--out", str(out), "--jobs", "2", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def both_running():
        if not (out / "metrics.jsonl").exists():
            return False
        runs = [
            json.loads(line)["run"] for line in (out / "metrics.jsonl").read_text().splitlines()
        ]
        return runs.count("first") >= 2 and runs.count("second") >= 2

    assert poll(both_running, 90), process.stderr.read1().decode() if process.poll() else ""
    return process


def poll(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def worker_pids(parent):
    """The multiprocessing workers whose parent is `parent` (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; nobody may have reaped it yet


def epochs_by_run(out):
    records = metrics(out)
    return {name: [r["epoch"] for r in records if r["run"] == name] for name in ("first", "second")}


@pytest.mark.slow  # real --jobs subprocesses, ~12 s
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_kill_9_of_the_parent_kills_its_workers_and_resume_records_every_epoch_once(tmp_path):
    path, out = experiment_file(tmp_path, JOBS), tmp_path / "out"
    process = start_parallel(path, out)
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    process.kill()
    process.wait(timeout=30)
    assert poll(lambda: not any(alive(pid) for pid in workers), 10), "workers outlived the parent"
    size = (out / "metrics.jsonl").stat().st_size
    time.sleep(0.5)
    assert (out / "metrics.jsonl").stat().st_size == size  # nobody writes any more

    result = subprocess.run(
        [sys.executable, "-m", "nnrun", "resume", str(out), "--jobs", "2", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    expected = list(range(1, JOBS_EPOCHS + 1))
    assert epochs_by_run(out) == {"first": expected, "second": expected}


@pytest.mark.slow  # real --jobs subprocesses, ~14 s
def test_sigterm_to_the_parent_stops_the_workers_at_a_checkpoint_and_resume_finishes_them(
    tmp_path,
):
    path, out = experiment_file(tmp_path, JOBS), tmp_path / "out"
    process = start_parallel(path, out)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 130, process.stderr.read().decode()
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["interrupted", "interrupted"]
    for name in ("first", "second"):
        checkpoint = torch.load(out / "checkpoints" / name / "last", weights_only=True)
        assert 2 <= checkpoint["trainer"]["epoch"] < JOBS_EPOCHS

    result = subprocess.run(
        [sys.executable, "-m", "nnrun", "resume", str(out), "--jobs", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)["runs"]
    reference = run_experiment(nnrun.load_experiment(path), tmp_path / "reference")["runs"]
    assert [r["status"] for r in resumed] == ["ok", "ok"]
    assert [r["final_loss"] for r in resumed] == [r["final_loss"] for r in reference]
    by_run = lambda records: sorted(without_time(records), key=lambda r: (r["run"], r["epoch"]))  # noqa: E731
    assert by_run(metrics(out)) == by_run(metrics(tmp_path / "reference"))


# ------------------------------------------------------------------------------------------------
# What a --jobs worker does, called in this process (the tests above see it only from outside)


def test_a_worker_trains_its_run_as_the_serial_loop_does_and_prints_epoch_lines_on_request(
    tmp_path, capsys
):
    experiment = nnrun.load_experiment(
        experiment_file(
            tmp_path, SLOW.replace("epochs = 12", "epochs = 2").replace("n = 400", "n = 40")
        )
    )
    run = experiment.runs[1]
    (tmp_path / "serial").mkdir()
    serial = execute_run(run, tmp_path / "serial", load_registry(), SilentReporter(), False)
    capsys.readouterr()
    for epoch_lines in (False, True):
        out = tmp_path / f"worker-{epoch_lines}"
        out.mkdir()
        entry = execute_run_in_worker(run, out, False, epoch_lines)
        assert {k: v for k, v in entry.items() if k != "seconds"} == {
            k: v for k, v in serial.items() if k != "seconds"
        }
        assert without_time(metrics(out)) == without_time(metrics(tmp_path / "serial"))
        printed = capsys.readouterr()
        assert printed.out == ""
        lines = printed.err.splitlines()
        if epoch_lines:
            assert [line.split("  train_loss")[0] for line in lines] == [
                "second  epoch 1/2",
                "second  epoch 2/2",
            ]
        else:
            assert lines == []


@pytest.fixture
def worker_process_state():
    """What `_worker_init` changes in the process it runs in, put back afterwards."""
    threads = torch.get_num_threads()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    torch.set_num_threads(threads)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    if local_executor._worker_directory is not None:
        local_executor._worker_directory.close()
        local_executor._worker_directory = None
    StopFlag.requested = False


def test_a_worker_computes_with_the_parents_threads_stops_on_signals_and_shares_the_lock(
    tmp_path, monkeypatch, worker_process_state
):
    watched = []
    monkeypatch.setattr(local_executor, "_die_with_parent", watched.append)
    out = tmp_path / "out"
    parent = RunDirectory.create(out)
    (out / "config.toml").write_text("[experiment]\n")
    threads = 1 if torch.get_num_threads() > 1 else 2
    local_executor._worker_init(threads, 4242, out)
    assert watched == [4242]
    assert torch.get_num_threads() == threads
    parent.close()  # the parent was killed: its worker still holds the lock
    with pytest.raises(RunDirectoryError, match="another nnrun process"):
        RunDirectory.create(out, resume=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        StopFlag.requested = False
        os.kill(os.getpid(), sig)  # delivered to the main thread before kill returns
        assert StopFlag.requested, sig.name


PR_GET_PDEATHSIG = 2


def parent_death_signal(libc):
    value = ctypes.c_int()
    assert libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) == 0
    return value.value


class Exited(Exception):
    pass


def no_exit(code):
    raise Exited(code)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_on_linux_a_worker_asks_the_kernel_to_kill_it_with_its_parent(monkeypatch):
    libc = ctypes.CDLL(None, use_errno=True)
    started = []
    monkeypatch.setattr(local_executor.threading, "Thread", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(local_executor.os, "_exit", no_exit)
    try:
        local_executor._die_with_parent(os.getppid())
        assert parent_death_signal(libc) == signal.SIGKILL
        with pytest.raises(Exited) as exited:  # the parent died before prctl took effect
            local_executor._die_with_parent(os.getppid() + 1)
        assert exited.value.args == (1,)
    finally:
        libc.prctl(local_executor.PR_SET_PDEATHSIG, 0, 0, 0, 0)
    assert started == []  # the kernel watches: no watchdog thread


@pytest.mark.parametrize("platform", ["darwin", "linux without prctl"])
def test_elsewhere_a_watchdog_thread_ends_the_worker_once_its_parent_is_gone(monkeypatch, platform):
    if platform == "darwin":
        monkeypatch.setattr(local_executor.sys, "platform", "darwin")
    else:
        monkeypatch.setattr(local_executor.sys, "platform", "linux")
        monkeypatch.setattr(local_executor.ctypes, "CDLL", lambda *a, **k: SimpleNamespace())
    started = []

    class Thread:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def start(self):
            started.append(self.kwargs)

    monkeypatch.setattr(local_executor.threading, "Thread", Thread)
    local_executor._die_with_parent(4242)
    assert started == [{"target": local_executor._watch_parent, "args": (4242,), "daemon": True}]

    parents = iter([4242, 4242, 4242, 1])  # handed to init after three polls
    monkeypatch.setattr(local_executor.os, "getppid", lambda: next(parents))
    naps = []
    monkeypatch.setattr(local_executor.time, "sleep", naps.append)
    monkeypatch.setattr(local_executor.os, "_exit", no_exit)
    with pytest.raises(Exited) as exited:
        local_executor._watch_parent(4242)
    assert exited.value.args == (1,)
    assert len(naps) == 3 and max(naps) <= 0.2  # it notices within a fifth of a second
    assert next(parents, None) is None  # it polled until the parent changed, and stopped


# ------------------------------------------------------------------------------------------------
# The pieces of the runner, each on its own


def test_the_default_run_directory_is_runs_name_timestamp(tmp_path, monkeypatch):
    class Clock:
        @staticmethod
        def now():
            return datetime(2026, 3, 4, 5, 6, 7)

    monkeypatch.setattr(runner, "datetime", Clock)
    experiment = nnrun.load_experiment(experiment_file(tmp_path))
    assert runner.default_out(experiment) == Path("runs") / "slow" / "20260304-050607"


@pytest.mark.parametrize(
    "old, new, differences",
    [
        ({"a": 1, "b": 2}, {"a": 1, "b": 2}, []),
        ({"a": 1}, {"a": 1, "b": [2]}, ["b added ([2])"]),
        ({"a": 1, "b": "x"}, {"a": 1}, ["b removed (was 'x')"]),
        ({"t": {"lr": 0.1}}, {"t": {"lr": 0.2}}, ["t.lr: 0.1 -> 0.2"]),
        ({"x": float("nan")}, {"x": float("nan")}, []),  # NaN != NaN, but nothing changed
        ({"x": float("nan")}, {"x": 1.0}, ["x: nan -> 1.0"]),
        ({"l": [1, 2, 3]}, {"l": [1, 5, 3]}, ["l[1]: 2 -> 5"]),
        ({"l": [1, 2]}, {"l": [1, 2, 3]}, ["l: [1, 2] -> [1, 2, 3]"]),  # lengths differ
        (
            {"runs": [{"name": "a", "lr": 1}, {"name": "b", "lr": 2}]},
            {"runs": [{"name": "a", "lr": 1}, {"name": "b", "lr": 3}]},
            ["runs[b].lr: 2 -> 3"],  # runs are named by name, not by position
        ),
        (
            {"runs": [{"name": "a"}, {"lr": 2}]},
            {"runs": [{"name": "a"}, {"lr": 3}]},
            ["runs[1].lr: 2 -> 3"],  # not every item has a name: by position
        ),
        ({"a": 1, "z": 2}, {"z": 3, "b": 4}, ["a removed (was 1)", "z: 2 -> 3", "b added (4)"]),
        ({"x": {"a": 1}}, {"x": 3}, ["x: {'a': 1} -> 3"]),  # a table became a value
        ({"x": 3}, {"x": {"a": 1}}, ["x: 3 -> {'a': 1}"]),
        ({"x": [1]}, {"x": 1}, ["x: [1] -> 1"]),  # a list became a value
        ({"x": 1}, {"x": [1]}, ["x: 1 -> [1]"]),
    ],
)
def test_diff_lists_every_difference_by_its_key_path(old, new, differences):
    assert runner.diff(old, new) == differences


def test_a_refused_resume_shows_ten_differences_and_counts_the_rest(tmp_path):
    out = RunDirectory.create(tmp_path / "out")
    out.write_config({"experiment": {f"k{i:02d}": i for i in range(13)}}, [])
    changed = {"experiment": {f"k{i:02d}": i + 1 for i in range(13)}}
    with pytest.raises(ConfigError) as refused:
        runner.refuse_changed_config(out, changed)
    message = str(refused.value)
    shown = "; ".join(f"experiment.k{i:02d}: {i} -> {i + 1}" for i in range(10))
    assert f"config.toml: {shown}; and 3 more. Start a new run directory" in message
    runner.refuse_changed_config(out, {"experiment": {f"k{i:02d}": i for i in range(13)}})


def test_signals_ask_for_a_stop_inside_and_are_given_back_afterwards():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in before:
        StopFlag.requested = True  # left over from an earlier experiment: cleared on entry
        with runner.stop_on_signals():
            assert not StopFlag.requested
            os.kill(os.getpid(), sig)
            assert StopFlag.requested, sig.name
        assert {s: signal.getsignal(s) for s in before} == before
    StopFlag.requested = False


def test_outside_the_main_thread_signals_are_left_alone():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    seen = []

    def in_thread():
        with runner.stop_on_signals():
            seen.append({s: signal.getsignal(s) for s in before})

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [before]
    assert {s: signal.getsignal(s) for s in before} == before


class InProcessPool:
    """A stand-in for the worker pool that records how it was set up and runs each submitted
    run in this process, so the test sees what `_run_parallel` itself does."""

    made: ClassVar[list[InProcessPool]] = []

    def __init__(self, max_workers, mp_context, initializer, initargs):
        self.max_workers, self.mp_context = max_workers, mp_context
        self.initializer, self.initargs = initializer, initargs
        self.submitted = []
        self._processes = {
            1: SimpleNamespace(is_alive=lambda: True, pid=101),
            2: SimpleNamespace(is_alive=lambda: False, pid=102),  # already gone
        }
        InProcessPool.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, function, *args):
        self.submitted.append(args)
        future = concurrent.futures.Future()
        if len(self.submitted) == 1:  # the first run runs; the rest wait for a free worker
            future.set_result(function(*args))
        return future


def test_parallel_runs_get_jobs_spawned_workers_set_up_to_match_the_serial_numbers(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(local_executor.concurrent.futures, "ProcessPoolExecutor", InProcessPool)
    killed = []
    monkeypatch.setattr(local_executor.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    real_fit = stop_in(monkeypatch, 0, 1)  # Ctrl-C at the end of the first run's first epoch
    InProcessPool.made.clear()
    experiment = nnrun.load_experiment(experiment_file(tmp_path, SWEEP))
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        run_experiment(experiment, out, jobs=2, reporter=ConsoleReporter(worker_console()))
    monkeypatch.setattr(Trainer, "fit", real_fit)
    (pool,) = InProcessPool.made
    assert pool.max_workers == 2 and pool.mp_context.get_start_method() == "spawn"
    assert pool.initializer is local_executor._worker_init
    assert pool.initargs == (torch.get_num_threads(), os.getpid(), out)
    # every run submitted, to resume or not, with the reporter's wish for epoch lines
    assert [(task.name, task.resume, task.epoch_lines) for (task,) in pool.submitted] == [
        (name, False, True) for name in ("first", "second", "third")
    ]
    # the stop went to the live worker once, and the runs not started stay pending
    assert killed == [(101, signal.SIGTERM)]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["interrupted", "pending", "pending"]
