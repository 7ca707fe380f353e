"""The built-in executors and a third party's: each gives a serial run's summary and metrics,
reports a failing run per run, leaves an interrupted directory resumable, and resume sends only
the unfinished runs. Ray is one local instance for the module (`num_cpus=2`); submitit runs
its jobs as processes on this machine (`cluster = "local"`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from experiments import PRUNED

import nnrun
from nnrun.cli import main
from nnrun.errors import ConfigError
from nnrun.experiment.reporting import SilentReporter
from nnrun.experiment.runner import Interrupted, run_experiment
from nnrun.experiment.train import StopFlag
from nnrun.plugins import executors
from nnrun.testing import check_executor

ray = pytest.importorskip("ray")
pytest.importorskip("submitit")

#: Four runs of a few epochs each: enough to have some queued when the first one finishes.
EXPERIMENT = """
[experiment]
name = "spread"
seed = 5

[data]
expr = "x**2"
n = 96
range = [-2.0, 2.0]
noise = 0.1
split = { val = 0.25 }

[model]
layers = [1, 8, 1]
activation = "tanh"

[optimizer]
name = "adam"
lr = 0.02

[train]
epochs = 4
batch_size = 8
checkpoint_every = 2

[sweep]
"optimizer.lr" = [0.01, 0.02, 0.03, 0.04]
"""

#: A third party's package: an executor that runs the tasks here, logging their names, and a
#: metric that raises mid-run (a run that fails in its worker, wherever that is).
PLUGIN = """
import nnrun


class Boom(nnrun.Metric):
    mode = "min"
    tasks = ("regression",)

    def compute(self, pred, target):
        raise RuntimeError("boom")


class Inline(nnrun.Executor):
    def __init__(self, log: str = ""):
        self.log = log

    def execute(self, tasks, context):
        for task in tasks:
            with open(self.log, "a") as file:
                file.write(task.name + "\\n")
            yield task()
            if context.should_stop():
                return


@nnrun.hookimpl
def register_metrics(register):
    register("boom", Boom)


@nnrun.hookimpl
def register_executors(register):
    register("inline", Inline)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The third-party package, on this process's path and on its workers' (PYTHONPATH)."""
    site = tmp_path_factory.mktemp("site")
    (site / "nnrun_test_site.py").write_text(PLUGIN)
    info = site / "nnrun_test_site-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnrun-test-site\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nnrun]\nsite = nnrun_test_site\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
        patch.setenv("PYTHONPATH", path)
        yield site


@pytest.fixture(scope="module")
def ray_instance(site):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def write(folder: Path, text: str = EXPERIMENT) -> Path:
    path = folder / "e.toml"
    path.write_text(textwrap.dedent(text))
    return path


def comparable(out: Path) -> tuple[list[dict], list[dict]]:
    """The summary's runs and the metrics, each run's records together, the times left out."""

    def timeless(record):
        return {k: v for k, v in record.items() if k != "seconds"}

    runs = [timeless(r) for r in json.loads((out / "summary.json").read_text())["runs"]]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    metrics.sort(key=lambda r: (r["run"], r.get("epoch", 0)))
    return runs, [timeless(r) for r in metrics]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    run_experiment(nnrun.load_experiment(write(folder)), folder / "out")
    return comparable(folder / "out")


# ------------------------------------------------------------------------------------------------
# The same numbers as a serial run


def test_ray_gives_the_serial_summary_and_metrics(tmp_path, ray_instance, serial):
    experiment = nnrun.load_experiment(write(tmp_path), executor="ray")
    assert experiment.executor == {
        "name": "ray",
        "address": "local",
        "num_cpus": 1.0,
        "num_gpus": 0.0,
    }
    run_experiment(experiment, tmp_path / "out")
    assert comparable(tmp_path / "out") == serial


@pytest.mark.slow  # four job processes, each importing torch: ~10-20 s
def test_submitit_on_this_machine_gives_the_serial_summary_and_metrics(tmp_path, serial):
    experiment = nnrun.load_experiment(
        write(tmp_path), ["executor.cluster=local"], executor="submitit"
    )
    out = tmp_path / "out"
    run_experiment(experiment, out)
    assert comparable(out) == serial
    logs = sorted(p.name for p in (out / "submitit").iterdir())
    assert sum(name.endswith("_result.pkl") for name in logs) == 4  # one job per run
    # the default submitit folder is the run directory's own: --force clears it with the rest
    again = nnrun.load_experiment(write(tmp_path))
    run_experiment(again, out, force=True)
    assert not (out / "submitit").exists()
    assert comparable(out) == serial


def test_submitit_runs_each_task_once_as_in_process():
    check_executor(executors.Submitit, cluster="local", array_parallelism=2)


# ------------------------------------------------------------------------------------------------
# Failures, Ctrl-C and resume


def test_a_run_failing_on_a_ray_worker_is_reported_per_run_and_the_others_finish(
    tmp_path, ray_instance
):
    text = EXPERIMENT.replace('[sweep]\n"optimizer.lr" = [0.01, 0.02, 0.03, 0.04]', "")
    text += '[[runs]]\nname = "fine"\n\n[[runs]]\nname = "broken"\ntrain = { metrics = ["boom"] }\n'
    summary = run_experiment(
        nnrun.load_experiment(write(tmp_path, text), executor="ray"), tmp_path / "out"
    )
    status = {r["name"]: (r["status"], r.get("error")) for r in summary["runs"]}
    assert status == {"fine": ("ok", None), "broken": ("failed", "RuntimeError: boom")}
    assert "RuntimeError: boom" in (tmp_path / "out" / "failures.log").read_text()


#: Four runs, the second long enough (2000 epochs, a few seconds) that a stop request reaches it
#: while it runs; the others short (each epoch takes about 2 ms).
LONGER = EXPERIMENT.replace('[sweep]\n"optimizer.lr" = [0.01, 0.02, 0.03, 0.04]', "") + "".join(
    f'[[runs]]\nname = "{name}"\ntrain = {{ epochs = {epochs} }}\n'
    for name, epochs in [("first", 40), ("second", 2000), ("third", 40), ("fourth", 40)]
)


class StopOnceTheSecondRuns(SilentReporter):
    """Ctrl-C once the first run is recorded and the second has begun (written an epoch), so that
    the second is stopped while it runs: neither before its worker starts nor after it ends."""

    def __init__(self, out: Path):
        self.metrics = out / "metrics.jsonl"

    def run_finished(self, entry):
        deadline = time.monotonic() + 120
        while not StopFlag.requested:
            written = self.metrics.read_text() if self.metrics.exists() else ""
            if '{"run": "second"' in written:
                StopFlag.requested = True
            elif time.monotonic() > deadline:
                raise AssertionError("the second run wrote no epoch within 120 s")
            else:
                time.sleep(0.01)


@pytest.mark.slow  # a serial run, the interrupted one and its resume: ~25 s
def test_ctrl_c_cancels_the_queued_ray_tasks_and_resume_sends_only_the_unfinished(
    tmp_path, ray_instance, monkeypatch
):
    run_experiment(nnrun.load_experiment(write(tmp_path, LONGER)), tmp_path / "serial")
    sent: list[list[str]] = []
    execute = executors.Ray.execute

    def spy(self, tasks, context):
        sent.append([task.name for task in tasks])
        return execute(self, tasks, context)

    monkeypatch.setattr(executors.Ray, "execute", spy)
    out = tmp_path / "out"
    # each run takes both CPUs: one at a time, the others queued
    experiment = nnrun.load_experiment(
        write(tmp_path, LONGER), ["executor.num_cpus=2"], executor="ray"
    )
    with pytest.raises(Interrupted):
        run_experiment(experiment, out, reporter=StopOnceTheSecondRuns(out))
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["ok", "interrupted", "pending", "pending"]
    assert 0 < runs[1]["epochs"] < 2000
    config = out / "config.toml"
    assert 'name = "ray"' in config.read_text()  # resume continues on the same executor
    run_experiment(nnrun.load_experiment(config), out, resume=True)
    assert sent == [[r["name"] for r in runs], [r["name"] for r in runs[1:]]]
    assert comparable(out) == comparable(tmp_path / "serial")


@pytest.mark.slow  # job processes one at a time, each importing torch: ~30 s
def test_ctrl_c_stops_submitit_jobs_leaving_the_rest_pending_and_resume_finishes_them(tmp_path):
    run_experiment(nnrun.load_experiment(write(tmp_path, LONGER)), tmp_path / "serial")
    out = tmp_path / "out"
    options = ["executor.cluster=local", "executor.array_parallelism=1"]
    experiment = nnrun.load_experiment(write(tmp_path, LONGER), options, executor="submitit")
    with pytest.raises(Interrupted):
        run_experiment(experiment, out, reporter=StopOnceTheSecondRuns(out))
    runs = json.loads((out / "summary.json").read_text())["runs"]
    # the second job was running (SIGINT: it checkpoints); the last two were never submitted
    assert [r["status"] for r in runs] == ["ok", "interrupted", "pending", "pending"]
    assert 0 < runs[1]["epochs"] < 2000
    run_experiment(nnrun.load_experiment(out / "config.toml"), out, resume=True)
    assert comparable(out) == comparable(tmp_path / "serial")


# ------------------------------------------------------------------------------------------------
# Without the engine installed, and a third party's executor


@pytest.mark.parametrize(
    ("name", "module", "extra", "what"),
    [("ray", "ray", "ray", "Ray"), ("submitit", "submitit", "slurm", "submitit")],
)
def test_an_executor_without_its_package_names_the_extra_and_writes_nothing(
    tmp_path, monkeypatch, name, module, extra, what
):
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    path = write(tmp_path)
    message = f'--executor {name} needs {what}: pip install "nnrun[{extra}]"'
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        nnrun.load_experiment(path, executor=name)
    result = CliRunner().invoke(main, [str(path), "--executor", name, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_third_party_executor_registered_by_a_plugin_runs_the_experiment(tmp_path, site, serial):
    log = tmp_path / "sent.txt"
    path = write(tmp_path, EXPERIMENT + f'\n[executor]\nname = "inline"\nlog = "{log}"\n')
    run_experiment(nnrun.load_experiment(path), tmp_path / "out")
    assert log.read_text().splitlines() == ["lr=0.01", "lr=0.02", "lr=0.03", "lr=0.04"]
    assert comparable(tmp_path / "out") == serial


@pytest.mark.parametrize(
    "jobs",
    [1, pytest.param(2, marks=pytest.mark.slow)],  # 2: spawned workers, ~10 s
)
def test_the_local_executor_runs_each_task_once_as_in_process(jobs):
    check_executor(executors.Local, jobs=jobs)


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine is a SLURM cluster")
def test_slurm_where_there_is_none_is_an_error_saying_nothing_ran(tmp_path):
    path = write(tmp_path)
    args = [str(path), "--executor", "submitit", "-o", "executor.cluster=slurm", "-q"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "[executor] cluster = 'slurm': submitit cannot submit there" in result.output
    assert "Nothing has run" in result.output
    runs = json.loads((tmp_path / "o" / "summary.json").read_text())["runs"]
    assert {r["status"] for r in runs} == {"pending"}  # resumable elsewhere


#: tests/core/experiment/test_tuning.py's study, its best configuration rerun over two seeds.
STUDY = PRUNED.replace("trials = 4\n", "trials = 4\nfinal_seeds = 2\n")


def test_a_study_on_ray_draws_prunes_and_reruns_its_best_as_a_serial_one(tmp_path, ray_instance):
    """Each trial runs as a Ray task that reports its epochs to the study through the journal
    file in the run directory, where the pruner decides; the best's final seeds run at once."""
    path = write(tmp_path, STUDY)
    run_experiment(nnrun.load_experiment(path), tmp_path / "serial")
    run_experiment(nnrun.load_experiment(path, executor="ray"), tmp_path / "ray")
    (serial_runs, serial_metrics), (ray_runs, ray_metrics) = (
        comparable(tmp_path / name) for name in ("serial", "ray")
    )
    by_name = lambda runs: sorted(runs, key=lambda r: r["name"])  # noqa: E731
    assert by_name(ray_runs) == by_name(serial_runs) and ray_metrics == serial_metrics
    statuses = {r["name"]: r["status"] for r in ray_runs}
    assert list(statuses.values()).count("pruned") == 1  # decided on the worker
    assert {"pruned/best/seed=4", "pruned/best/seed=5"} <= set(statuses)
    tune = [
        json.loads((tmp_path / n / "summary.json").read_text())["tune"] for n in ("serial", "ray")
    ]
    counts = {"complete": 3, "pruned": 1, "failed": 0}
    assert tune[0]["pruned"]["trials"] == tune[1]["pruned"]["trials"] == counts
    assert tune[0]["pruned"]["best"] == tune[1]["pruned"]["best"]
