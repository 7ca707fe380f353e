"""Composing an experiment: [[runs]] merged over the base, sweeps expanded, overrides applied."""

from __future__ import annotations

import textwrap

import pytest

from nnrun.config.compose import Override, compose, merge, set_path
from nnrun.errors import ConfigError

BASE = """
[experiment]
name = "demo"
seed = 1

[optimizer]
name = "sgd"
lr = 0.1
momentum = 0.9

[train]
epochs = 2
"""


def write(tmp_path, text):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_run_naming_another_component_replaces_its_table_whole():
    merged = merge(
        {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
        {"optimizer": {"name": "adam", "lr": 0.01}},
    )
    assert merged["optimizer"] == {"name": "adam", "lr": 0.01}


def test_a_run_keeping_the_component_merges_key_by_key():
    merged = merge(
        {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}, {"optimizer": {"lr": 0.5}}
    )
    assert merged["optimizer"] == {"name": "sgd", "lr": 0.5, "momentum": 0.9}


def test_setting_a_components_name_drops_the_old_hyperparameters():
    tables = {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "model": {"activation": "relu"},
    }
    set_path(tables, ["optimizer", "name"], "adam")
    set_path(tables, ["model", "activation", "negative_slope"], 0.2)
    assert tables["optimizer"] == {"name": "adam"}
    assert tables["model"]["activation"] == {"name": "relu", "negative_slope": 0.2}


def test_runs_are_merged_over_the_base_tables(tmp_path):
    path = write(
        tmp_path,
        BASE
        + '\n[[runs]]\nname = "plain"\n\n[[runs]]\nname = "adam"\noptimizer = { name = "adam", lr = 0.01 }\n',
    )
    experiment, runs = compose(path)
    assert experiment["name"] == "demo"
    assert [name for name, _ in runs] == ["plain", "adam"]
    assert runs[0][1]["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    assert runs[1][1]["optimizer"] == {"name": "adam", "lr": 0.01}


def test_sweep_times_runs_gives_the_product_with_readable_names(tmp_path):
    path = write(
        tmp_path,
        BASE + '\n[sweep]\n"optimizer.name" = ["sgd", "adam"]\n"optimizer.lr" = [0.1, 0.01]\n'
        '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\ntrain = { epochs = 3 }\n',
    )
    _, runs = compose(path)
    names = [name for name, _ in runs]
    assert len(names) == 8
    assert "a,optimizer=sgd,lr=0.1" in names and "b,optimizer=adam,lr=0.01" in names
    adam = dict(runs)["b,optimizer=adam,lr=0.01"]
    assert adam["optimizer"] == {"name": "adam", "lr": 0.01}  # sgd's momentum did not leak
    assert adam["train"]["epochs"] == 3


def test_sweep_alone_names_runs_by_what_varies(tmp_path):
    path = write(tmp_path, BASE + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n')
    _, runs = compose(path)
    assert [name for name, _ in runs] == ["lr=0.1", "lr=0.01"]


def test_overrides_apply_to_every_run_and_parse_toml_values(tmp_path):
    path = write(tmp_path, BASE + '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\n')
    overrides = [
        Override.parse("optimizer.lr=0.5"),
        Override.parse("train.probes=[1.0, 2.0]"),
        Override.parse("optimizer.name=adam"),
    ]
    _, runs = compose(path, overrides)
    for _, tables in runs:
        assert tables["optimizer"] == {"name": "adam"}
        assert tables["train"]["probes"] == [1.0, 2.0]
    assert Override.parse("experiment.seed=7").value == 7
    assert Override.parse("optimizer.name=adam").value == "adam"


def test_missing_seed_is_drawn_and_recorded(tmp_path):
    path = write(tmp_path, "[experiment]\ntask = 'solve'\n")
    experiment, _ = compose(path)
    assert isinstance(experiment["seed"], int)
    assert experiment["name"] == "experiment"  # the file's stem


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "the file is empty"),
        ("[experiment\n", "invalid TOML.*line 1, column"),
        (
            "[experiment]\nname = 'x'\n[optimiser]\nname = 'sgd'\n",
            r":3: unknown table \[optimiser\]; did you mean 'optimizer'",
        ),
        ("[optimizer]\nname = 'sgd'\n", r"missing \[experiment\] table"),
        (
            BASE + "[[runs]]\nname = 'a'\noptimiser = {}\n",
            "unknown key 'optimiser'; did you mean 'optimizer'",
        ),
        (
            BASE + "[[runs]]\nname = 'a'\n[[runs]]\nname = 'a'\n",
            "run names must be unique; repeated: a",
        ),
        (BASE + "[sweep]\n'optimizer.lr' = []\n", "non-empty list"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        compose(write(tmp_path, text))


def test_missing_file_and_directory_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        compose(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        compose(tmp_path)


def test_bad_override_syntax_and_table(tmp_path):
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        Override.parse("optimizer.lr")
    with pytest.raises(ConfigError, match="unknown table 'optimiser'; did you mean 'optimizer'"):
        compose(write(tmp_path, BASE), [Override.parse("optimiser.lr=1")])
