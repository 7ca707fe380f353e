"""metrics.jsonl is synced at most once a `SYNC_EVERY`, at every checkpoint and at the end, yet
every line is written to the OS at once (what a kill -9 cannot take back)."""

from __future__ import annotations

import json
import os

import pytest

from nnrun.experiment import rundir as rundir_module
from nnrun.experiment.rundir import METRICS, RunDirectory


@pytest.fixture
def fsyncs(monkeypatch):
    """Count os.fsync calls; the clock is frozen so that no interval passes unless a test says."""
    calls: list[int] = []
    real = os.fsync
    clock = [1000.0]
    monkeypatch.setattr(rundir_module.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    monkeypatch.setattr(rundir_module.time, "monotonic", lambda: clock[0])
    return calls, clock


@pytest.mark.parametrize("epochs", [2, 50])
def test_many_short_epochs_are_synced_once_and_every_line_is_written_at_once(
    tmp_path, fsyncs, epochs
):
    calls, _ = fsyncs
    directory = RunDirectory(tmp_path)
    for epoch in range(1, epochs + 1):
        directory.append_metrics({"run": "a", "epoch": epoch})
        lines = (tmp_path / METRICS).read_text().splitlines()  # another process reads this
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, epoch + 1))
    assert len(calls) == 1  # the first line only: the clock has not moved


def test_a_sync_comes_again_once_the_interval_has_passed(tmp_path, fsyncs):
    calls, clock = fsyncs
    directory = RunDirectory(tmp_path)
    directory.append_metrics({"run": "a", "epoch": 1})
    clock[0] += rundir_module.SYNC_EVERY * 0.99
    directory.append_metrics({"run": "a", "epoch": 2})
    assert len(calls) == 1
    clock[0] += rundir_module.SYNC_EVERY * 0.02
    directory.append_metrics({"run": "a", "epoch": 3})
    assert len(calls) == 2


def test_sync_metrics_syncs_at_once_and_restarts_the_interval(tmp_path, fsyncs):
    calls, _ = fsyncs
    directory = RunDirectory(tmp_path)
    directory.sync_metrics()  # no file yet: nothing to sync
    assert calls == []
    directory.append_metrics({"run": "a", "epoch": 1})
    directory.append_metrics({"run": "a", "epoch": 2})
    directory.sync_metrics()
    assert len(calls) == 2


def test_a_run_of_many_one_step_epochs_syncs_its_metrics_at_checkpoints_and_end(
    tmp_path, monkeypatch
):
    """200 one-step epochs, a checkpoint every 50 (the clock frozen): metrics.jsonl is synced
    with its first line and at each checkpoint (3 before the last epoch, 1 at the end)."""
    import nnrun

    syncs: list[str] = []
    real_append, real_sync = RunDirectory._append, RunDirectory.sync_metrics

    def append(self, name, text, sync=True):
        if sync and name == METRICS:
            syncs.append("append")
        real_append(self, name, text, sync)

    def sync_metrics(self):
        syncs.append("sync")
        real_sync(self)

    monkeypatch.setattr(RunDirectory, "_append", append)
    monkeypatch.setattr(RunDirectory, "sync_metrics", sync_metrics)
    monkeypatch.setattr(rundir_module.time, "monotonic", lambda: 1000.0)
    path = tmp_path / "short.toml"
    path.write_text(
        '[experiment]\nname = "short"\nseed = 0\ntask = "train"\n'
        '[data]\nkind = "function"\nexpr = "x**2"\nn = 4\nrange = [-1.0, 1.0]\nnoise = 0.0\n'
        '[model]\nlayers = [1, 3, 1]\nactivation = "sigmoid"\n[loss]\nname = "mse"\n'
        '[optimizer]\nname = "sgd"\nlr = 0.01\n'
        "[train]\nepochs = 200\nbatch_size = 4\ncheckpoint_every = 50\n"
    )
    summary = nnrun.run_experiment(nnrun.load_experiment(path), tmp_path / "out")
    assert summary["runs"][0]["status"] == "ok"
    assert len((tmp_path / "out" / METRICS).read_text().splitlines()) == 200
    assert syncs == ["append", "sync", "sync", "sync", "sync"]
