"""`[tune]` studies: seeded trials, resume after a stop equal to a run never stopped, pruning of a
clearly worse trial, the summary's `tune` section and final-seed group, tune.png, the study file."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import pytest
from experiments import PRUNED

import nnrun
from nnrun.errors import NnrunError
from nnrun.experiment.figures import tune_figure
from nnrun.experiment.runner import Interrupted, run_experiment
from nnrun.experiment.train import StopFlag, Trainer

TUNED = """
[experiment]
name = "tuned"
seed = 5

[data]
expr = "sin(2*x)"
n = 64
noise = 0.05
split = { val = 0.25 }

[model]
layers = [1, 8, 1]
activation = "tanh"

[optimizer]
name = "sgd"

[train]
epochs = 4
batch_size = 16
shuffle = true

[tune]
trials = 5
final_seeds = 2
space = { "optimizer.lr" = { log_uniform = [1e-3, 0.3] }, "optimizer.momentum" = { uniform = [0.0, 0.9] }, "train.batch_size" = { choice = [8, 16] } }
"""


def experiment_file(tmp_path, text=TUNED, name="tuned.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def read(out, name):
    return json.loads((out / name).read_text())


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def timeless(value):
    """Everything but the wall-clock times, which differ between two runs of the same trials."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tuned experiment run once without a stop: (file, its run directory)."""
    folder = tmp_path_factory.mktemp("reference")
    path = experiment_file(folder)
    out = folder / "out"
    run_experiment(nnrun.load_experiment(path), out)
    return path, out


def test_trials_are_runs_named_after_their_number_then_the_best_on_the_final_seeds(reference):
    _, out = reference
    summary = read(out, "summary.json")
    names = [r["name"] for r in summary["runs"]]
    assert names == [f"tuned/trial={n}" for n in range(5)] + [
        "tuned/best/seed=6",
        "tuned/best/seed=7",
    ]
    for run in summary["runs"]:
        assert run["status"] == "ok" and run["epochs"] == 4
        assert (out / "checkpoints" / run["name"].replace("/", "_")).parent.exists()
    assert (out / "tune" / "tuned.log").is_file() and (out / "tune.png").is_file()


def test_the_summary_names_the_best_trial_its_values_and_the_counts(reference):
    _, out = reference
    summary = read(out, "summary.json")
    trials = [r for r in summary["runs"] if "/trial=" in r["name"]]
    # each trial's value is its val_loss at its last epoch, as metrics.jsonl recorded it
    for trial in trials:
        (last,) = [m for m in metrics(out) if m["run"] == trial["name"] and m["epoch"] == 4]
        assert trial["value"] == last["val_loss"]
        assert 1e-3 <= trial["params"]["optimizer.lr"] <= 0.3
        assert 0.0 <= trial["params"]["optimizer.momentum"] <= 0.9
        assert trial["params"]["train.batch_size"] in (8, 16)
    best = min(trials, key=lambda r: r["value"])
    tune = summary["tune"]["tuned"]
    assert tune["best"] == {
        "trial": best["trial"],
        "run": best["name"],
        "params": best["params"],
        "value": best["value"],
    }
    assert tune["trials"] == {"complete": 5, "pruned": 0, "failed": 0}
    assert tune["space"]["optimizer.lr"] == {"log_uniform": [1e-3, 0.3]}
    finals = [r for r in summary["runs"] if "/best/" in r["name"]]
    assert all(r["params"] == best["params"] for r in finals)
    values = [r["value"] for r in finals]
    final = tune["final"]
    assert final["group"] == "tuned/best" and final["runs"] == final["finished"] == 2
    assert final["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert final["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert (final["min"], final["max"]) == (min(values), max(values))


def test_the_final_seeds_run_the_best_values_on_new_seeds(reference):
    path, out = reference
    config = read(out, "summary.json")["tune"]["tuned"]["best"]["params"]
    best = nnrun.load_experiment(
        path, [f"optimizer.lr={config['optimizer.lr']!r}", "experiment.seed=6"]
    )
    assert best.runs[0].experiment.seed == 6
    seeded = [m for m in metrics(out) if m["run"] == "tuned/best/seed=6"]
    trial = [
        m
        for m in metrics(out)
        if m["run"] == read(out, "summary.json")["tune"]["tuned"]["best"]["run"]
    ]
    assert len(seeded) == len(trial) == 4
    assert [m["val_loss"] for m in seeded] != [m["val_loss"] for m in trial]  # another seed


def test_the_same_file_and_seed_give_the_same_trials_and_another_seed_others(tmp_path, reference):
    path, out = reference
    again = tmp_path / "again"
    run_experiment(nnrun.load_experiment(path), again)
    assert timeless(read(again, "summary.json")) == timeless(read(out, "summary.json"))
    assert timeless(metrics(again)) == timeless(metrics(out))
    other = tmp_path / "other"
    run_experiment(nnrun.load_experiment(path, ["experiment.seed=6"]), other)
    drawn = [r.get("params") for r in read(other, "summary.json")["runs"]]
    assert drawn != [r.get("params") for r in read(out, "summary.json")["runs"]]


def stop_in(monkeypatch, fit_call, epoch, step):
    """Ask for a stop in the `fit_call`-th training run (0-based), in `epoch` at `step`."""
    real_fit, calls = Trainer.fit, []

    def fit_then_stop(self, on_epoch, on_progress=None, on_checkpoint=None):
        calls.append(None)
        here = len(calls) - 1

        def progress(p):
            if here == fit_call and p.epoch == epoch and p.step >= step:
                StopFlag.requested = True

        return real_fit(self, on_epoch, progress, on_checkpoint)

    monkeypatch.setattr(Trainer, "fit", fit_then_stop)
    return real_fit


@pytest.mark.parametrize(
    ("where", "fit_call", "statuses"),
    [
        ("in a trial", 2, ["ok", "ok", "interrupted"]),
        ("in a final-seed run", 5, ["ok"] * 5 + ["interrupted"]),
    ],
)
def test_a_tuned_run_stopped_and_resumed_gives_the_same_trials_and_best(
    tmp_path, monkeypatch, reference, where, fit_call, statuses
):
    path, expected = reference
    out = tmp_path / "out"
    real_fit = stop_in(monkeypatch, fit_call, epoch=3, step=1)
    with pytest.raises(Interrupted, match="nnrun resume"):
        run_experiment(nnrun.load_experiment(path), out)
    assert [r["status"] for r in read(out, "summary.json")["runs"]] == statuses
    monkeypatch.setattr(Trainer, "fit", real_fit)

    run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)
    assert timeless(read(out, "summary.json")) == timeless(read(expected, "summary.json"))
    assert timeless(metrics(out)) == timeless(metrics(expected))


def test_resuming_a_finished_tuned_run_runs_nothing_again(tmp_path):
    path = experiment_file(tmp_path, TUNED.replace("trials = 5", "trials = 2"))
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(path), out)
    before = metrics(out)
    run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)
    assert metrics(out) == before


@pytest.mark.parametrize("method", ["median", "asha"])
def test_pruning_stops_a_trial_that_is_clearly_worse(tmp_path, method):
    """lr = 1e-7 barely moves the weights: once two trials have finished, the pruner stops it
    at the end of the warm-up, epoch 2 (status `pruned`, the epoch it stopped at); the others run
    to the end. The same trials without `prune` all run to the end."""
    text = PRUNED.replace('method = "median"', f'method = "{method}"')
    pruned = tmp_path / "pruned"
    run_experiment(nnrun.load_experiment(experiment_file(tmp_path, text)), pruned)
    runs = {r["params"]["optimizer.lr"]: r for r in read(pruned, "summary.json")["runs"]}
    assert runs[1e-7]["trial"] >= 2  # the grid's seeded order puts it after the start-up trials
    assert runs[1e-7]["status"] == "pruned" and runs[1e-7]["epochs"] == 2
    recorded = [m["epoch"] for m in metrics(pruned) if m["run"] == runs[1e-7]["name"]]
    assert recorded == [1, 2]
    counts = read(pruned, "summary.json")["tune"]["pruned"]["trials"]
    assert sum(counts.values()) == 4 and counts["failed"] == 0
    assert counts["pruned"] == sum(r["status"] == "pruned" for r in runs.values())
    if method == "median":  # the good rates are above no median; successive halving keeps 1/4
        assert all(r["status"] == "ok" and r["epochs"] == 8 for lr, r in runs.items() if lr != 1e-7)
        assert counts == {"complete": 3, "pruned": 1, "failed": 0}

    unpruned = tmp_path / "unpruned"
    plain = "\n".join(line for line in text.splitlines() if not line.startswith("prune"))
    run_experiment(nnrun.load_experiment(experiment_file(tmp_path, plain, "plain.toml")), unpruned)
    assert {r["status"] for r in read(unpruned, "summary.json")["runs"]} == {"ok"}


@pytest.mark.parametrize("method", ["random", "qmc", "tpe"])
def test_each_sampler_draws_the_budget_inside_the_space(tmp_path, method):
    text = TUNED.replace("trials = 5", f'trials = 4\nmethod = "{method}"')
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(experiment_file(tmp_path, text)), out)
    trials = [r for r in read(out, "summary.json")["runs"] if "/trial=" in r["name"]]
    assert len(trials) == 4
    rates = [t["params"]["optimizer.lr"] for t in trials]
    assert all(1e-3 <= lr <= 0.3 for lr in rates) and len(set(rates)) == 4


def test_the_grid_visits_every_point_once(tmp_path):
    out = tmp_path / "out"
    text = PRUNED.replace("prune = {", "# prune = {")
    run_experiment(nnrun.load_experiment(experiment_file(tmp_path, text)), out)
    drawn = sorted(r["params"]["optimizer.lr"] for r in read(out, "summary.json")["runs"])
    assert drawn == sorted([0.03, 0.02, 0.01, 1e-7])


def test_force_overwrites_a_tuned_run_directory_but_not_a_foreign_file_in_tune(tmp_path):
    path = experiment_file(tmp_path, TUNED.replace("trials = 5", "trials = 1"))
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(path), out)
    run_experiment(nnrun.load_experiment(path), out, force=True)
    assert len(read(out, "summary.json")["runs"]) == 3
    (out / "tune" / "notes.txt").write_text("mine")
    with pytest.raises(NnrunError, match=r"also holds tune/notes\.txt"):
        run_experiment(nnrun.load_experiment(path), out, force=True)


def test_a_study_file_that_is_a_link_is_refused(tmp_path):
    path = experiment_file(tmp_path, TUNED.replace("trials = 5", "trials = 1"))
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(path), out)
    outside = tmp_path / "elsewhere.log"
    (out / "tune" / "tuned.log").rename(outside)
    (out / "tune" / "tuned.log").symlink_to(outside)
    with pytest.raises(NnrunError, match=r"tuned\.log.*link"):
        run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)


def test_tune_figure_has_a_panel_per_key_log_where_the_space_is_log_and_a_colour_per_config():
    trials = {
        "a": [
            {"status": "ok", "params": {"lr": 0.01, "bs": 8}, "value": 0.5},
            {"status": "pruned", "params": {"lr": 0.1, "bs": 16}, "value": 0.9},
        ],
        "b": [{"status": "ok", "params": {"lr": 0.001, "bs": 16}, "value": 0.2}],
    }
    space = {"lr": ("log_uniform", [1e-3, 1e-1]), "bs": ("choice", [8, 16])}
    fig = tune_figure(trials, space, "val_loss")
    lr, bs = fig.axes[:2]
    assert (lr.get_xscale(), bs.get_xscale(), lr.get_yscale()) == ("log", "linear", "log")
    assert [t.get_text() for t in bs.get_xticklabels()] == ["8", "16"]
    colours = {tuple(c.get_edgecolor()[0]) for c in lr.collections}
    assert len(lr.collections) == 3 and len(colours) == 2  # a ok, a pruned, b ok; two colours
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["a", "a (pruned)", "b"]


@pytest.mark.slow  # real subprocesses, ~15 s
def test_sigterm_during_a_study_and_nnrun_resume_give_the_uninterrupted_trials(tmp_path, reference):
    path, expected = reference
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "nnrun", str(path), "--out", str(out), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = (out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").exists() else ""
        if '"tuned/trial=2"' in lines:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(60) == 130, process.stderr.read().decode()
    summary = read(out, "summary.json")
    assert len(summary["runs"]) < 7 and "tune" not in summary
    resumed = subprocess.run(
        [sys.executable, "-m", "nnrun", "resume", str(out), "-q"], capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert timeless(read(out, "summary.json")) == timeless(read(expected, "summary.json"))
    assert timeless(metrics(out)) == timeless(metrics(expected))


@pytest.mark.slow  # --jobs 2 spawns workers, ~10-20 s
def test_tuned_and_untuned_runs_share_a_file_and_jobs_change_no_number(tmp_path):
    """A [tune] table in one [[runs]] entry: the untuned runs run as usual (in workers with
    --jobs), then the study; the numbers are those of a serial run."""
    text = (
        TUNED.split("[tune]")[0].replace("trials = 5", "")
        + '\n[[runs]]\nname = "plain"\n\n[[runs]]\nname = "plain-adam"\n'
        + 'optimizer = { name = "adam" }\n\n[[runs]]\nname = "tuned"\n'
        + 'tune = { trials = 2, final_seeds = 1, space = { "optimizer.lr" = '
        + "{ log_uniform = [1e-3, 0.3] } } }\n"
    )
    path = experiment_file(tmp_path, text)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    run_experiment(nnrun.load_experiment(path), serial)
    run_experiment(nnrun.load_experiment(path), parallel, jobs=2)
    names = [r["name"] for r in read(serial, "summary.json")["runs"]]
    assert names == ["plain", "plain-adam", "tuned/trial=0", "tuned/trial=1", "tuned/best/seed=6"]
    assert list(read(serial, "summary.json")["tune"]) == ["tuned"]
    assert timeless(read(parallel, "summary.json")) == timeless(read(serial, "summary.json"))


def test_a_pruned_trial_resumed_from_its_last_checkpoint_stays_pruned(tmp_path):
    """kill -9 after a pruned trial's final checkpoint but before its summary entry: resuming
    it trains no further epoch."""
    from nnrun.experiment.execute import execute_run
    from nnrun.experiment.reporting import SilentReporter
    from nnrun.experiment.tuning import trial_run

    registry = nnrun.load_registry()
    (config,) = nnrun.load_experiment(experiment_file(tmp_path, PRUNED)).runs
    run = trial_run(config, "pruned/trial=3", {"optimizer.lr": 1e-7}, registry)
    out = tmp_path / "out"
    out.mkdir()
    first = execute_run(run, out, registry, SilentReporter(), False, watch=lambda record: True)
    again = execute_run(run, out, registry, SilentReporter(), True, watch=lambda record: True)
    assert first["status"] == again["status"] == "pruned"
    assert first["epochs"] == again["epochs"] == 1
    assert [m["epoch"] for m in metrics(out)] == [1]
