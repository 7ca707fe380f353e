"""[experiment] seeds and repeats: every configuration ([[runs]] entry, sweep cell) once per seed,
named CONFIG/seed=S and grouped; the resolved config.toml composes the same runs again."""

from __future__ import annotations

import textwrap

import pytest

import nnrun
from nnrun.config.compose import Override, compose
from nnrun.errors import ConfigError
from nnrun.experiment.rundir import toml_ready
from nnrun.names import slug

BASE = """
[experiment]
name = "demo"
seed = 7
{seeds}

[data]
expr = "x**2"
n = 20

[model]
layers = [1, 3, 1]

[optimizer]
name = "sgd"
lr = 0.1

[train]
epochs = 1
"""
RUNS = '\n[[runs]]\nname = "sgd"\n\n[[runs]]\nname = "adam"\noptimizer = { name = "adam" }\n'


def write(tmp_path, seeds, extra=""):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(BASE.format(seeds=seeds)) + extra)
    return path


def runs(path, *overrides):
    _, composed = compose(path, [Override.parse(o) for o in overrides])
    return [(name, t["experiment"]["seed"], t.get("group")) for name, t in composed]


@pytest.mark.parametrize("seeds", ["seeds = [3, 0, 9]", "repeats = 3"])
def test_every_run_entry_repeats_once_per_seed_in_a_group(tmp_path, seeds):
    expected = [3, 0, 9] if seeds.startswith("seeds") else [7, 8, 9]  # repeats: seed, seed + 1, ...
    composed = runs(write(tmp_path, seeds, RUNS))
    assert composed == [
        (f"{config}/seed={s}", s, {"name": config, "seed": 7})
        for config in ("sgd", "adam")
        for s in expected
    ]


def test_every_sweep_cell_repeats_and_a_file_without_runs_is_named_after_the_experiment(tmp_path):
    path = write(tmp_path, "seeds = [0, 1]", '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n')
    assert [name for name, _, _ in runs(path)] == [
        "lr=0.1/seed=0",
        "lr=0.1/seed=1",
        "lr=0.01/seed=0",
        "lr=0.01/seed=1",
    ]
    assert [name for name, _, _ in runs(write(tmp_path, "repeats = 2"))] == [
        "demo/seed=7",
        "demo/seed=8",
    ]


def test_without_seeds_nothing_changes(tmp_path):
    assert runs(write(tmp_path, "", RUNS)) == [("sgd", 7, None), ("adam", 7, None)]


def test_overrides_set_the_seeds_and_replace_repeats_or_the_base_seed(tmp_path):
    path = write(tmp_path, "repeats = 3")
    assert [s for _, s, _ in runs(path, "experiment.seeds=[1, 2]")] == [1, 2]
    assert [s for _, s, _ in runs(path, "experiment.repeats=2")] == [7, 8]
    # the base seed draws the data and counts the repeats from itself
    assert runs(path, "experiment.seed=0")[0] == ("demo/seed=0", 0, {"name": "demo", "seed": 0})
    seeded = write(tmp_path, "seeds = [4, 5]")
    assert runs(seeded, "experiment.repeats=1") == [("demo/seed=7", 7, {"name": "demo", "seed": 7})]


def test_a_run_entry_may_set_its_own_seeds(tmp_path):
    extra = '\n[[runs]]\nname = "one"\n\n[[runs]]\nname = "many"\nexperiment = { seeds = [1, 2] }\n'
    assert [name for name, _, _ in runs(write(tmp_path, "", extra))] == [
        "one",
        "many/seed=1",
        "many/seed=2",
    ]


def test_the_seeds_count_against_max_runs_before_composing(tmp_path):
    path = write(tmp_path, "repeats = 1000000000000\nmax_runs = 5", RUNS)
    with pytest.raises(
        ConfigError,
        match=r":5: the experiment composes 2,000,000,000,000 runs "
        r"\(2 \[\[runs\]\] × 1 \[sweep\] values × 1,000,000,000,000 seeds\)",
    ):
        compose(path)


@pytest.mark.parametrize("key", ["seeds", "repeats"])
def test_sweeping_the_seeds_is_refused(tmp_path, key):
    path = write(tmp_path, "", f'\n[sweep]\n"experiment.{key}" = [[1], [2]]\n')
    with pytest.raises(
        ConfigError,
        match=f"the seeds repeat every sweep cell already; set \\[experiment\\] {key} instead",
    ):
        compose(path)


def test_a_run_folder_never_becomes_a_sub_directory():
    assert "/" not in slug("adam/seed=3") and slug("adam/seed=3") != slug("adam_seed=3")


def test_the_resolved_config_holds_the_groups_and_composes_the_same_runs(tmp_path):
    import tomli_w

    experiment = nnrun.load_experiment(write(tmp_path, "seeds = [0, 2]", RUNS))
    config = experiment.to_dict()
    assert [run["name"] for run in config["runs"]] == ["sgd", "adam"]
    assert config["experiment"]["seeds"] == [0, 2] and config["experiment"]["seed"] == 7
    saved = tmp_path / "config.toml"
    saved.write_text(tomli_w.dumps(toml_ready(config)))
    again = nnrun.load_experiment(saved)
    assert again.runs == experiment.runs and again.to_dict() == config
