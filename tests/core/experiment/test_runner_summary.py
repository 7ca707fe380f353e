"""The runner's bookkeeping, each piece on its own: summary.json's entries across a resume, the
groups its statistics are over, the driver's loop over outcomes, the epochs a resume forgets, what a
resume may change, and the results kept when a plot or the report fails."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import version

import pytest
import torch

import nnrun
from nnrun.errors import ConfigError
from nnrun.executor import Executor, Outcome
from nnrun.experiment import runner
from nnrun.experiment.reporting import SilentReporter
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.runner import Interrupted, Summary, run_experiment, run_groups, run_tasks
from nnrun.experiment.safefiles import RunDirectoryError
from nnrun.experiment.train import StopFlag

EXPERIMENT = """
[experiment]
name = "bookkeeping"
seed = 0

[data]
expr = "x"
n = 16
split = { val = 0.25 }

[model]
layers = [1, 2, 1]

[optimizer]
name = "sgd"
lr = 0.1

[train]
epochs = 1
batch_size = 8

[[runs]]
name = "plain"

[[runs]]
name = "tuned"
tune = { trials = 2, final_seeds = 2, space = { "optimizer.lr" = { log_uniform = [1e-3, 0.3] } } }

[[runs]]
name = "seeded"
experiment = { seeds = [4, 5] }

[[runs]]
name = "unfinished"
tune = { trials = 1, final_seeds = 0, space = { "optimizer.lr" = { log_uniform = [1e-3, 0.3] } } }
"""


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(EXPERIMENT))
    return nnrun.load_experiment(path)


class Recorder(SilentReporter):
    def __init__(self):
        super().__init__()
        self.finished, self.warnings = [], []

    def run_finished(self, entry):
        self.finished.append(entry)

    def warn(self, message):
        self.warnings.append(message)


def read_summary(path):
    return json.loads((path / "summary.json").read_text())


# ------------------------------------------------------------------------------------------------
# run_groups


def test_groups_are_a_configurations_seeds_a_single_run_and_a_tuned_best_on_its_final_seeds(
    experiment,
):
    assert run_groups(experiment) == {
        "plain": [("plain", 0)],
        "tuned/best": [("tuned/best/seed=1", 1), ("tuned/best/seed=2", 2)],  # seed + 1, + 2
        "seeded": [("seeded/seed=4", 4), ("seeded/seed=5", 5)],
        # "unfinished" has no final seeds: its trials are the search, no group
    }


# ------------------------------------------------------------------------------------------------
# Summary


def test_a_new_summary_lists_the_untuned_runs_as_pending_and_records_each_as_it_finishes(
    tmp_path, experiment
):
    reporter = Recorder()
    with RunDirectory.create(tmp_path / "out") as directory:
        summary = Summary(directory, experiment, reporter, resume=False)
        names = ["plain", "seeded/seed=4", "seeded/seed=5"]
        assert [r.name for r in summary.pending()] == names
        assert summary.as_dict() == {
            "experiment": "bookkeeping",
            "runs": [{"name": n, "status": "pending"} for n in names],
            "groups": summary.as_dict()["groups"],
        }
        assert "tune" not in summary.as_dict() and not summary.has("ok")
        entry = {"name": "seeded/seed=4", "status": "ok", "final": {"val_loss": 0.5}}
        summary.record(entry)
        assert reporter.finished == [entry]
        assert read_summary(directory.path)["runs"][1] == entry  # written at once
        assert summary.has("ok") and not summary.has("failed")
        assert [r.name for r in summary.pending()] == ["plain", "seeded/seed=5"]


@pytest.mark.parametrize(
    "status, pending", [("ok", False), ("diverged", False), ("failed", True), ("interrupted", True)]
)
def test_a_resume_runs_again_what_did_not_finish_and_keeps_the_rest(
    tmp_path, experiment, status, pending
):
    with RunDirectory.create(tmp_path / "out") as directory:
        saved = {"name": "plain", "status": status, "epochs": 1}
        directory.write_json(
            "summary.json",
            {
                "experiment": "bookkeeping",
                "runs": [
                    saved,
                    {"name": "tuned/trial=0", "status": "ok"},  # a trial, made as the study went
                    {"name": "tunedx/trial=0", "status": "ok"},  # no configuration's trial
                    {"name": "gone", "status": "ok"},  # a run no longer in the file
                ],
                "tune": {"tuned": {"best": "tuned/trial=0"}},
            },
        )
        summary = Summary(directory, experiment, SilentReporter(), resume=True)
        assert summary.entries["plain"] == saved
        assert list(summary.entries) == [
            "plain",
            "seeded/seed=4",
            "seeded/seed=5",
            "tuned/trial=0",
        ]
        assert summary.tune == {"tuned": {"best": "tuned/trial=0"}}
        assert summary.as_dict()["tune"] == {"tuned": {"best": "tuned/trial=0"}}
        assert ("plain" in [r.name for r in summary.pending()]) is pending
        # without resume the saved summary is not read
        fresh = Summary(directory, experiment, SilentReporter(), resume=False)
        assert fresh.entries["plain"] == {"name": "plain", "status": "pending"} and not fresh.tune


def test_a_resume_with_no_summary_yet_starts_every_run_afresh(tmp_path, experiment):
    with RunDirectory.create(tmp_path / "out") as directory:
        summary = Summary(directory, experiment, SilentReporter(), resume=True)
        assert all(e["status"] == "pending" for e in summary.entries.values())
        assert summary.tune == {}


def test_without_tuned_configurations_saved_trials_are_not_kept(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.split("[[runs]]")[0] + '[[runs]]\nname = "plain"\n'))
    experiment = nnrun.load_experiment(path)
    with RunDirectory.create(tmp_path / "out") as directory:
        runs = [{"name": "plain", "status": "ok"}, {"name": "plain/trial=0", "status": "ok"}]
        directory.write_json("summary.json", {"experiment": "e", "runs": runs})
        summary = Summary(directory, experiment, SilentReporter(), resume=True)
        assert list(summary.entries) == ["plain"]


# ------------------------------------------------------------------------------------------------
# run_tasks


class Outcomes(Executor):
    """An executor whose outcomes are given, and which records whether its generator was closed."""

    def __init__(self, outcomes, generator=True):
        self.outcomes, self.generator, self.closed = outcomes, generator, False

    def execute(self, tasks, context):
        self.context = context
        if not self.generator:
            return iter(self.outcomes)
        self.running = self._each()  # held here, so only run_tasks' close() can close it
        return self.running

    def _each(self):
        try:
            yield from self.outcomes
        finally:
            self.closed = True


def test_run_tasks_yields_each_outcomes_entry_and_closes_the_executors_generator(
    tmp_path, monkeypatch
):
    executor = Outcomes(
        [Outcome("a", entry={"name": "a", "status": "ok"}), Outcome("b", error="E: x")]
    )
    with RunDirectory.create(tmp_path / "out") as directory:
        entries = run_tasks(executor, [], directory, None, SilentReporter())
        assert next(entries) == {"name": "a", "status": "ok"}
        entries.close()  # the driver stopped early: the executor's clean-up runs all the same
        assert executor.closed
        assert executor.context.directory == directory.path and not executor.context.should_stop()
        monkeypatch.setattr(StopFlag, "requested", True)
        assert executor.context.should_stop() is True  # a Ctrl-C now reaches the executor
        executor = Outcomes([Outcome("b", error="E: x")], generator=False)  # no close: fine
        assert list(run_tasks(executor, [], directory, None, SilentReporter())) == [
            {"name": "b", "status": "failed", "error": "E: x"}
        ]


@pytest.mark.parametrize(
    "error, message",
    [("out: a symbolic link", "out: a symbolic link"), (None, "a task found bad input")],
)
def test_bad_input_from_a_task_raises_a_config_error_and_still_closes_the_executor(
    tmp_path, error, message
):
    executor = Outcomes([Outcome("a", error=error, bad_input=True), Outcome("b", entry={})])
    with RunDirectory.create(tmp_path / "out") as directory, pytest.raises(ConfigError) as raised:
        list(run_tasks(executor, [], directory, None, SilentReporter()))
    assert str(raised.value) == message and executor.closed


# ------------------------------------------------------------------------------------------------
# forget_unsaved_epochs


def test_a_resume_forgets_the_epochs_an_unfinished_run_recorded_after_its_last_checkpoint(
    tmp_path, experiment, monkeypatch
):
    plain, seeded = experiment.runs[0], experiment.runs[2]
    with RunDirectory.create(tmp_path / "out") as directory:
        records = [
            {"run": "plain", "epoch": 1},
            {"run": "plain", "epoch": 2},
            {"run": "plain", "epoch": 3},  # after the checkpoint of epoch 2
            {"run": "plain"},  # no epoch: not one the checkpoint covers
            {"run": seeded.name, "epoch": 1},  # no checkpoint at all: every epoch goes
            {"run": "finished", "epoch": 9},  # not unfinished: kept
        ]
        for record in records:
            directory.append_metrics(record)
        state = {"model": {}, "optimizer": {}, "generator": torch.zeros(1)}
        directory.save_checkpoint("plain", "epoch2", state | {"trainer": {"epoch": 2, "step": 0}})
        runner.forget_unsaved_epochs(directory, [plain, seeded])
        assert directory.read_metrics() == [records[0], records[1], records[5]]

        rewrites = []
        monkeypatch.setattr(
            RunDirectory, "rewrite_metrics", lambda self, kept: rewrites.append(kept)
        )
        runner.forget_unsaved_epochs(directory, [plain, seeded])
        assert rewrites == []  # nothing to forget: metrics.jsonl is left as it is
        with directory.file("metrics.jsonl").open("a") as metrics:
            metrics.write('{"run": "plain", "ep')  # a last line cut short by a crash
        runner.forget_unsaved_epochs(directory, [plain, seeded])
        assert rewrites == [[records[0], records[1], records[5]]]


def test_a_damaged_newest_checkpoint_is_reported_and_the_epochs_after_the_one_before_forgotten(
    tmp_path, experiment
):
    plain = experiment.runs[0]
    state = {"model": {}, "optimizer": {}, "generator": torch.zeros(1)}
    with RunDirectory.create(tmp_path / "out") as directory:
        for epoch in (1, 2, 3):
            directory.append_metrics({"run": "plain", "epoch": epoch})
        directory.save_checkpoint("plain", "epoch1", state | {"trainer": {"epoch": 1, "step": 0}})
        newest = directory.save_checkpoint(
            "plain", "epoch2", state | {"trainer": {"epoch": 2, "step": 0}}
        )
        newest.write_bytes(b"torn")
        warnings = []
        runner.forget_unsaved_epochs(directory, [plain], warnings.append)
        assert directory.read_metrics() == [{"run": "plain", "epoch": 1}]
    (warning,) = warnings
    assert "epoch2.pt: damaged" in warning and warning.endswith(
        "the checkpoint before it, epoch1.pt"
    )


# ------------------------------------------------------------------------------------------------
# refuse_changed_config


def test_a_resume_may_change_the_executor_and_nothing_else(tmp_path, experiment):
    config = experiment.to_dict()
    with RunDirectory.create(tmp_path / "out") as directory:
        directory.write_config(config, [])
        moved = {**config, "executor": {"name": "local", "jobs": 7}}
        runner.refuse_changed_config(directory, moved)
        changed = {**config, "experiment": {**config["experiment"], "seed": 9}}
        with pytest.raises(ConfigError) as refused:
            runner.refuse_changed_config(directory, changed)
    assert str(refused.value) == (
        f"{directory.path}: refusing to resume: the configuration differs from the one saved in "
        "config.toml: experiment.seed: 0 -> 9. Start a new run directory (another --out) for the "
        "changed experiment"
    )


@pytest.mark.parametrize("count, more", [(10, ""), (11, "; and 1 more")])
def test_a_refused_resume_shows_up_to_ten_differences_and_counts_the_rest(tmp_path, count, more):
    with RunDirectory.create(tmp_path / "out") as directory:
        directory.write_config({"experiment": {f"k{i:02d}": i for i in range(count)}}, [])
        changed = {"experiment": {f"k{i:02d}": i + 1 for i in range(count)}}
        with pytest.raises(ConfigError) as refused:
            runner.refuse_changed_config(directory, changed)
    shown = "; ".join(f"experiment.k{i:02d}: {i} -> {i + 1}" for i in range(10))
    assert f"config.toml: {shown}{more}. Start a new run directory" in str(refused.value)


def test_summary_json_as_a_symbolic_link_is_refused_on_resume_not_taken_for_a_new_start(
    tmp_path, experiment
):
    with RunDirectory.create(tmp_path / "out") as directory:
        (directory.path / "summary.json").symlink_to(tmp_path / "nowhere.json")  # dangling too
        with pytest.raises(RunDirectoryError, match=r"summary\.json"):
            Summary(directory, experiment, SilentReporter(), resume=True)


# ------------------------------------------------------------------------------------------------
# make_executor and run_experiment


def test_jobs_sets_the_local_executors_worker_processes_and_none_keeps_the_files(experiment):
    registry = nnrun.load_registry()
    assert runner.make_executor(experiment, registry, 3).jobs == 3
    experiment.executor = {"name": "local", "jobs": 2}
    assert runner.make_executor(experiment, registry, None).jobs == 2
    assert experiment.executor == {"name": "local", "jobs": 2}  # the experiment is left as it was


def test_jobs_with_an_executor_that_has_no_worker_processes_is_bad_input(experiment):
    experiment.executor = {"name": "ray"}
    with pytest.raises(ConfigError) as raised:
        runner.make_executor(experiment, nnrun.load_registry(), 2)
    assert str(raised.value) == (
        "--jobs 2: --jobs sets the local executor's worker processes, and the executor is 'ray', "
        "which runs as many runs at once as its resources allow; leave --jobs out (or use "
        "--executor local)"
    )


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_bad_input_and_writes_nothing(tmp_path, experiment, out, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        run_experiment(experiment, out)
    assert str(raised.value) == (
        "--out is empty: give the run directory's path, or leave --out out"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.toml"]


def test_a_failing_plot_or_report_is_a_warning_and_the_results_stay(tmp_path, monkeypatch):
    from nnrun.experiment import report_html, run_plots

    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.split("[[runs]]")[0] + '[[runs]]\nname = "plain"\n'))
    experiment = nnrun.load_experiment(path)

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(run_plots, "plot_run_directory", broken)
    monkeypatch.setattr(report_html, "write_report", broken)
    reporter = Recorder()
    summary = run_experiment(experiment, tmp_path / "out", reporter=reporter)
    assert reporter.warnings == [
        "could not draw the plots: OSError: disk full",
        "could not write report.html: OSError: disk full",
    ]
    assert [r["status"] for r in summary["runs"]] == ["ok"]
    assert read_summary(tmp_path / "out") == summary


def test_without_out_the_results_go_to_runs_name_timestamp(tmp_path, monkeypatch):
    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.split("[[runs]]")[0] + '[[runs]]\nname = "plain"\n'))
    monkeypatch.chdir(tmp_path)
    summary = run_experiment(nnrun.load_experiment(path))
    (out,) = (tmp_path / "runs" / "bookkeeping").iterdir()
    assert read_summary(out) == summary and summary["runs"][0]["status"] == "ok"


def test_a_resume_reruns_only_the_unfinished_run_and_says_how_many_it_skipped(tmp_path):
    path = tmp_path / "e.toml"
    head = EXPERIMENT.split("[[runs]]")[0].replace("seed = 0", 'seed = 0\nrequires = ["torch"]')
    path.write_text(textwrap.dedent(head + '[[runs]]\nname = "one"\n\n[[runs]]\nname = "two"\n'))
    out = tmp_path / "out"
    run_experiment(nnrun.load_experiment(path), out)
    with pytest.raises(ConfigError, match="the directory is not empty; pass --resume"):
        run_experiment(nnrun.load_experiment(path), out)  # neither resume nor force: refused
    saved = read_summary(out)
    saved["runs"][1]["status"] = "failed"
    (out / "summary.json").write_text(json.dumps(saved))

    class Started(Recorder):
        def experiment_started(self, experiment, path, skipped):
            self.started = (path, skipped)

    reporter = Started()
    summary = run_experiment(nnrun.load_experiment(path), out, resume=True, reporter=reporter)
    assert reporter.started == (out, 1)
    assert [e["name"] for e in reporter.finished] == ["two"]
    assert [r["status"] for r in summary["runs"]] == ["ok", "ok"]
    environment = json.loads((out / "environment.json").read_text())
    assert environment["plugins"] == {"nnrun": version("nnrun")}  # the built-ins' distribution
    assert environment["requires"] == {"torch": version("torch")}


def single_run(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.split("[[runs]]")[0] + '[[runs]]\nname = "plain"\n'))
    return nnrun.load_experiment(path)


def with_executor(host, experiment, execute):
    """`experiment` on an executor whose `execute` is the function given, and its registry."""

    class Given(Executor):
        def execute(self, tasks, context):
            return execute(tasks, context)

    class Plugin:
        @staticmethod
        @nnrun.hookimpl
        def register_executors(register):
            register("given", Given)

    host.register(Plugin(), name="given-executor")
    experiment.executor = {"name": "given"}
    return nnrun.load_registry(host)


def test_a_run_interrupted_where_it_ran_interrupts_the_experiment_without_a_local_stop(
    tmp_path, nnrun_builtins_host
):
    experiment = single_run(tmp_path)  # as a preempted cluster job's run comes back

    def preempted(tasks, context):
        return [Outcome(t.name, entry={"name": t.name, "status": "interrupted"}) for t in tasks]

    registry = with_executor(nnrun_builtins_host, experiment, preempted)
    with pytest.raises(Interrupted) as raised:
        run_experiment(experiment, tmp_path / "out", registry=registry)
    assert str(raised.value) == (
        f"interrupted; finished runs and checkpoints are saved in {tmp_path / 'out'}. "
        f"Continue with: nnrun resume {tmp_path / 'out'}"
    )
    assert read_summary(tmp_path / "out")["runs"] == [{"name": "plain", "status": "interrupted"}]


def test_a_stop_before_any_run_started_interrupts_and_leaves_every_run_pending(
    tmp_path, nnrun_builtins_host, monkeypatch
):
    experiment = single_run(tmp_path)

    def stopped_first(tasks, context):
        StopFlag.requested = True  # Ctrl-C before the executor started anything
        return []

    registry = with_executor(nnrun_builtins_host, experiment, stopped_first)
    monkeypatch.setattr(StopFlag, "requested", False)
    reporter = Recorder()
    with pytest.raises(Interrupted):
        run_experiment(experiment, tmp_path / "out", registry=registry, reporter=reporter)
    assert read_summary(tmp_path / "out")["runs"] == [{"name": "plain", "status": "pending"}]
    assert reporter.finished == []


def test_tuned_configurations_run_their_studies_after_the_plain_runs(tmp_path):
    path = tmp_path / "e.toml"
    runs = EXPERIMENT.split("[[runs]]")
    path.write_text(textwrap.dedent("[[runs]]".join(runs[:3])))  # plain, tuned
    summary = run_experiment(nnrun.load_experiment(path), tmp_path / "out")
    assert [r["name"] for r in summary["runs"]] == [
        "plain",
        "tuned/trial=0",
        "tuned/trial=1",
        "tuned/best/seed=1",
        "tuned/best/seed=2",
    ]
    assert [g["name"] for g in summary["groups"]] == ["plain", "tuned/best"]
    assert "tuned" in summary["tune"]
