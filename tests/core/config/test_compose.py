"""Composing an experiment: [[runs]] merged over the base, sweeps expanded, overrides applied."""

from __future__ import annotations

import importlib
import os
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


def test_a_run_restating_the_components_name_merges_key_by_key():
    merged = merge(
        {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
        {"optimizer": {"name": "sgd", "lr": 0.5}},
    )
    assert merged["optimizer"] == {"name": "sgd", "lr": 0.5, "momentum": 0.9}


@pytest.mark.parametrize(
    "tables",
    [{}, {"data": {"expr": "x"}}, {"data": {"expr": "x", "split": 0.5}}],
    ids=["no table", "no subtable", "a value where the subtable goes"],
)
def test_an_override_makes_the_tables_on_its_path(tables):
    set_path(tables, ["data", "split", "val"], 0.2)
    assert tables["data"]["split"] == {"val": 0.2}


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


# --- Exact messages and limits --------------------------------------------------------------------

SWEPT = BASE + "[sweep]\n'optimizer.lr' = [0.1, 0.01]\n"


def numbered(text: str, snippet: str | None) -> str:
    """':LINE' of the line holding `snippet` ('' for None), as messages write it."""
    if snippet is None:
        return ""
    (number,) = [n for n, line in enumerate(text.splitlines(), 1) if snippet in line]
    return f":{number}"


BAD_FILES = {
    "runs not tables": (
        "runs = [1, 2]\n" + BASE,
        "runs =",
        ": [[runs]] must be an array of tables",
    ),
    "sweep value not a list": (
        BASE + "[sweep]\n'optimizer.lr' = 0.1\n",
        "[sweep]",
        ': every [sweep] key maps to a non-empty list, e.g. "optimizer.lr" = [0.1, 0.01]',
    ),
    "sweep over an unknown table": (
        BASE + "[sweep]\n'optimiser.lr' = [0.1]\n",
        "'optimiser.lr' =",
        ": [sweep] 'optimiser.lr': unknown table; did you mean 'optimizer'?",
    ),
    "unknown key in a run": (
        BASE + "[[runs]]\nname = 'a'\noptimiser = {}\n",
        "[[runs]]",
        ": [[runs]] 'a': unknown key 'optimiser'; did you mean 'optimizer'?; a run may set "
        "experiment, data, model, loss, optimizer, scheduler, train, solver, report, tune, distributed",
    ),
    "run name not a string": (
        BASE + "[[runs]]\nname = 3\n",
        "[[runs]]",
        ": [[runs]] entry 1: name = 3: a name is a string",
    ),
    "run name not a string, runs an inline array": (
        "runs = [{ name = 3 }]\n" + BASE,
        None,  # no [[runs]] header to point at
        ": [[runs]] entry 1: name = 3: a name is a string",
    ),
    "unknown key in a run, runs an inline array": (
        "runs = [{ name = 'a', optimiser = {} }]\n" + BASE,
        None,
        ": [[runs]] 'a': unknown key 'optimiser'; did you mean 'optimizer'?; a run may set "
        "experiment, data, model, loss, optimizer, scheduler, train, solver, report, tune, distributed",
    ),
    "repeated run names": (
        BASE + "[[runs]]\nname = 'a'\n[[runs]]\nname = 'b'\n[[runs]]\nname = 'a'\n"
        "[[runs]]\nname = 'b'\n",
        None,
        ": run names must be unique; repeated: a, b",
    ),
    "grid over max_runs": (
        BASE.replace("seed = 1", "seed = 1\nmax_runs = 3") + "[[runs]]\nname = 'a'\n"
        "[[runs]]\nname = 'b'\n[sweep]\n'optimizer.lr' = [0.1, 0.2]\n'train.epochs' = [1]\n",
        "[sweep]",
        ": the experiment composes 4 runs (2 [[runs]] × 2 × 1 [sweep] values), more than "
        "[experiment] max_runs = 3; sweep fewer values or raise max_runs",
    ),
    "runs over max_runs without a sweep": (
        BASE.replace("seed = 1", "seed = 1\nmax_runs = 1")
        + "[[runs]]\nname = 'a'\n[[runs]]\nname = 'b'\n",
        None,
        ": the experiment composes 2 runs (2 [[runs]] × 1 [sweep] values), more than "
        "[experiment] max_runs = 1; sweep fewer values or raise max_runs",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_each_bad_file_message_in_full(tmp_path, case):
    text, snippet, message = BAD_FILES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        compose(path)
    assert str(info.value) == f"{path}{numbered(textwrap.dedent(text), snippet)}{message}"


def test_the_runs_line_of_a_bad_entry_ignores_comments_after_the_header(tmp_path):
    path = write(tmp_path, BASE + "[[runs]]  # see #3\nname = 'a'\n[[runs]] # b\nname = 3\n")
    with pytest.raises(ConfigError) as info:
        compose(path)
    where = numbered(path.read_text(), "[[runs]] # b")
    assert str(info.value) == f"{path}{where}: [[runs]] entry 2: name = 3: a name is a string"


def test_max_runs_is_the_largest_grid_allowed(tmp_path):
    text = BASE.replace("seed = 1", "seed = 1\nmax_runs = 2") + SWEPT[len(BASE) :]
    assert len(compose(write(tmp_path, text))[1]) == 2
    one = BASE.replace("seed = 1", "seed = 1\nmax_runs = 1")
    assert len(compose(write(tmp_path, one))[1]) == 1


@pytest.mark.parametrize("limit", ["0", "-1", "true", "'3'", "2.5"])
def test_a_bad_max_runs_is_left_to_the_schema_not_counted_against(tmp_path, limit):
    text = BASE.replace("seed = 1", f"seed = 1\nmax_runs = {limit}") + SWEPT[len(BASE) :]
    assert len(compose(write(tmp_path, text))[1]) == 2


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "optimiser.lr=1",
            "override 'optimiser.lr=1': unknown table 'optimiser'; did you mean 'optimizer'?; "
            "overrides start with one of experiment, data, model, loss, optimizer, scheduler, "
            "train, solver, report, tune, distributed",
        ),
        (
            "optimizer.lr=0.5",
            "override 'optimizer.lr=0.5': [sweep] varies 'optimizer.lr' (line "
            + numbered(SWEPT, "'optimizer.lr' =")[1:]
            + "), so the override would make its runs identical; change the sweep instead",
        ),
        ("optimizer.name=adam", "override 'optimizer.name=adam': [sweep] varies 'optimizer.lr'"),
        ("optimizer={name='adam'}", "override \"optimizer={name='adam'}\": [sweep] varies"),
    ],
)
def test_an_override_clashing_with_the_sweep_is_refused_in_full(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        compose(write(tmp_path, SWEPT), [Override.parse(override)])
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("override", ["train.epochs=5", "experiment.name=quick", "optimizer.x=1"])
def test_an_override_beside_the_sweep_is_applied_to_every_run(tmp_path, override):
    text = SWEPT + "'experiment.seed' = [1]\n" if override.startswith("experiment") else SWEPT
    _, runs = compose(write(tmp_path, text), [Override.parse(override)])
    key, value = override.split("=")
    table, name = key.split(".")
    assert len(runs) == 2
    for _, tables in runs:
        assert str(tables[table][name]) == value


def test_an_override_value_may_hold_an_equals_sign_and_keeps_its_text():
    override = Override.parse("data.expr='x==1'")
    assert (override.path, override.value, override.text) == (
        ("data", "expr"),
        "x==1",
        "data.expr='x==1'",
    )
    for bad in ["=1", "data..expr=1", ".expr=1", "data.=1"]:
        with pytest.raises(ConfigError, match=r"expected key\.path=value"):
            Override.parse(bad)


def test_a_drawn_seed_is_a_31_bit_number_and_a_given_one_is_used(tmp_path, monkeypatch):
    compose_module = importlib.import_module("nnrun.config.compose")

    bounds = []
    monkeypatch.setattr(compose_module.secrets, "randbelow", lambda n: bounds.append(n) or n - 1)
    path = write(tmp_path, "[experiment]\ntask = 'solve'\n")
    assert compose(path)[0]["seed"] == 2**31 - 1 and bounds == [2**31]
    assert compose(path, seed=5)[0]["seed"] == 5 and bounds == [2**31]


def test_the_text_given_is_composed_not_the_files_current_one(tmp_path):
    path = write(tmp_path, "[experiment]\nname = 'on-disk'\n")
    experiment, _ = compose(path, text="[experiment]\nname = 'given'\n")
    assert experiment["name"] == "given"


def test_a_file_without_runs_or_sweep_is_one_run_named_after_the_experiment(tmp_path):
    _, runs = compose(write(tmp_path, BASE))
    assert [name for name, _ in runs] == ["demo"]


def test_a_swept_component_name_is_set_before_its_swept_hyperparameters(tmp_path):
    text = BASE + "[sweep]\n'optimizer.lr' = [0.5]\n'optimizer.name' = ['adam']\n"
    ((_, tables),) = compose(write(tmp_path, text))[1]
    assert tables["optimizer"] == {"name": "adam", "lr": 0.5}


def test_swept_tables_and_lists_are_named_readably(tmp_path):
    text = BASE + (
        "[sweep]\n'optimizer' = [{name = 'adam'}, {lr = 0.5}]\n'train.probes' = [[0.5, 1.0]]\n"
    )
    names = [name for name, _ in compose(write(tmp_path, text))[1]]
    assert names == ["optimizer=adam,probes=[0.5,1]", "optimizer=table,probes=[0.5,1]"]


def test_merging_a_run_leaves_the_base_untouched_for_the_next_run():
    base = {"experiment": {"name": "e", "tags": {"a": 1}}, "optimizer": {"name": "sgd", "x": [1]}}
    merged = merge(base, {"experiment": {"tags": {"b": 2}}, "optimizer": {"x": [2]}})
    merged["optimizer"]["x"].append(3)
    merged["experiment"]["tags"]["c"] = 3
    assert base == {
        "experiment": {"name": "e", "tags": {"a": 1}},
        "optimizer": {"name": "sgd", "x": [1]},
    }
    assert merged["experiment"] == {"name": "e", "tags": {"a": 1, "b": 2, "c": 3}}


# --- Reading the file: only a small, regular, UTF-8 text file -------------------------------------


def test_a_file_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not(tmp_path):
    from nnrun.config.compose import MAX_FILE_BYTES, read_source

    path = tmp_path / "experiment.toml"
    path.write_bytes(b"#" * MAX_FILE_BYTES)
    assert len(read_source(path)) == MAX_FILE_BYTES
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigError) as info:
        read_source(path)
    assert str(info.value) == f"{path}: experiment files are at most 1024 KiB, this one is larger"


@pytest.mark.parametrize(
    "data,message",
    [
        (
            b"[experiment]\nname = '\xe9'\n",
            ": cannot read the file: not UTF-8 text (byte 21 is 0xe9); "
            "an experiment file is plain TOML",
        ),
        (
            b"[experiment]\x00\n",
            ": cannot read the file: it contains NUL bytes; an experiment file is plain TOML",
        ),
    ],
)
def test_a_file_that_is_not_text_is_refused_in_full(tmp_path, data, message):
    from nnrun.config.compose import read_source

    path = tmp_path / "experiment.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        read_source(path)
    assert str(info.value) == f"{path}{message}"


def test_a_bom_is_dropped_and_the_text_kept(tmp_path):
    from nnrun.config.compose import read_source

    path = tmp_path / "experiment.toml"
    path.write_bytes("\ufeff[experiment]\nname = 'é'\n".encode())
    assert read_source(path) == "[experiment]\nname = 'é'\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    from nnrun.config.compose import read_source

    path = tmp_path / "experiment.toml"
    os.mkfifo(path)
    with pytest.raises(ConfigError) as info:
        read_source(path)
    assert str(info.value) == (
        f"{path}: not a regular file (a FIFO, device or socket); an experiment file is a plain "
        "TOML file"
    )


def test_a_path_through_a_file_is_an_error_naming_why(tmp_path):
    from nnrun.config.compose import read_source

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as info:
        read_source(tmp_path / "file" / "experiment.toml")
    assert (
        str(info.value)
        == f"{tmp_path / 'file' / 'experiment.toml'}: cannot read the file (Not a directory)"
    )
