"""`[executor]`: one table for the whole experiment, set by the file, `--executor` and
`-o executor.KEY=VALUE`, saved in config.toml and left out of what a resume compares. (Bad
tables: tests/bad_experiments.py.)"""

from __future__ import annotations

import pytest
from bad_experiments import BASE
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.errors import ConfigError
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.runner import refuse_changed_config, run_experiment

RAY = BASE + '\n[executor]\nname = "ray"\naddress = "auto"\nnum_cpus = 2\n'


def load(tmp_path, text, overrides=(), executor=None):
    path = tmp_path / "e.toml"
    path.write_text(text)
    return nnrun.load_experiment(path, overrides, executor=executor)


def test_without_a_table_the_runs_execute_here_one_at_a_time(tmp_path):
    assert load(tmp_path, BASE).executor == {"name": "local", "jobs": 1}


def test_the_table_names_the_executor_and_its_options_with_the_defaults_filled_in(tmp_path):
    spec = {"name": "ray", "address": "auto", "num_cpus": 2, "num_gpus": 0.0}
    assert load(tmp_path, RAY).executor == spec
    assert load(tmp_path, RAY, ["executor.num_gpus=1"]).executor == {**spec, "num_gpus": 1}


def test_dash_dash_executor_keeps_the_table_of_its_own_name_and_starts_another_from_defaults(
    tmp_path,
):
    assert load(tmp_path, RAY, executor="ray").executor["address"] == "auto"
    assert load(tmp_path, RAY, executor="local").executor == {"name": "local", "jobs": 1}
    # its options follow it on the command line
    chosen = load(tmp_path, BASE, ["executor.cluster=local"], executor="submitit").executor
    assert chosen["name"] == "submitit" and chosen["cluster"] == "local"


def test_executor_overrides_never_reach_the_runs(tmp_path):
    experiment = load(tmp_path, BASE, ["executor.jobs=2", "train.epochs=1"])
    assert experiment.executor["jobs"] == 2 and experiment.runs[0].train.epochs == 1
    assert "executor" not in experiment.runs[0].to_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + '\n[[runs]]\nname = "a"\nexecutor = { name = "ray" }\n', "unknown key 'executor'"),
        (BASE + '\n[sweep]\n"executor.jobs" = [1, 2]\n', "'executor.jobs': unknown table"),
        (BASE.replace("[experiment]", 'executor = "ray"\n[experiment]'), "is a table"),
    ],
)
def test_the_executor_is_the_experiments_not_a_runs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_config_toml_keeps_the_executor_and_a_resume_elsewhere_is_not_refused(tmp_path):
    experiment = load(tmp_path, BASE)
    out = tmp_path / "out"
    run_experiment(experiment, out)
    saved = RunDirectory(out).read_config()
    assert saved["executor"] == {"name": "local", "jobs": 1}
    again = nnrun.load_experiment(out / "config.toml", executor="ray")
    assert again.executor["name"] == "ray"
    refuse_changed_config(RunDirectory(out), again.to_dict())  # the runs are the same: no error


def test_jobs_is_the_local_executors_and_refused_with_another_before_anything_is_written(
    tmp_path,
):
    path = tmp_path / "e.toml"
    path.write_text(RAY)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="--jobs sets the local executor's worker processes"):
        run_experiment(nnrun.load_experiment(path), out, jobs=2)
    assert not out.exists()
    result = CliRunner().invoke(main, [str(path), "--jobs", "2", "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    local = BASE + "\n[executor]\njobs = 3\n"
    path.write_text(local)
    from nnrun.experiment.runner import make_executor

    registry = nnrun.load_registry()
    assert make_executor(nnrun.load_experiment(path), registry, None).jobs == 3
    assert make_executor(nnrun.load_experiment(path), registry, 1).jobs == 1  # --jobs 1 wins
