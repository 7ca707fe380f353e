"""Schema errors: every mistake in an experiment file is one line naming the file, the line of the
offending key (in its own table), the key's path and what was expected."""

from __future__ import annotations

import functools
import re

import pytest
from bad_experiments import BASE, COMPONENT_LINE, WITH_LINE, WITHOUT_LINE, edit

import nnrun
from nnrun.errors import ConfigError


@functools.cache
def registry():
    return nnrun.load_registry()


def load(tmp_path, text):
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    return nnrun.load_experiment(path, registry=registry())


def error_of(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def line_of(text: str, snippet: str) -> int:
    """The line the test itself put the offending key on."""
    (number,) = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return number


@pytest.mark.parametrize("case", sorted(WITH_LINE) + sorted(COMPONENT_LINE))
def test_a_mistake_is_one_line_with_file_line_key_path_and_expectation(tmp_path, case):
    text, snippet, message = WITH_LINE.get(case) or COMPONENT_LINE[case]
    error = error_of(tmp_path, text)
    prefix = f"{tmp_path / 'experiment.toml'}:{line_of(text, snippet)}: "
    assert error.startswith(prefix), error
    assert re.search(message, error[len(prefix) :]), error


@pytest.mark.parametrize("case", sorted(WITHOUT_LINE))
def test_a_whole_run_mistake_is_one_line_naming_the_file_and_tables(tmp_path, case):
    text, message = WITHOUT_LINE[case]
    error = error_of(tmp_path, text)
    prefix = f"{tmp_path / 'experiment.toml'}: "
    assert error.startswith(prefix), error
    assert re.search(message, error[len(prefix) :]), error


def test_integers_are_fine_where_numbers_are_expected(tmp_path):
    text = edit(BASE, "n = 40", "n = 40\nrange = [-2, 2]\nnoise = 0\nsplit = { val = 0 }")
    (run,) = load(tmp_path, text + "probes = [1, 2]\n").runs
    data = run.data.params
    assert data["range"] == [-2.0, 2.0] and data["noise"] == 0.0
    assert run.train.probes == [1.0, 2.0]
    assert all(isinstance(v, float) for v in (*data["range"], data["noise"], *run.train.probes))


def test_defaults_are_filled_in_for_what_the_file_leaves_out(tmp_path):
    (run,) = load(tmp_path, BASE).runs
    assert run.train.batch_size == 32 and run.train.shuffle is False
    assert run.train.early_stopping is None and run.train.grad_clip is None
    assert run.train.log_every == 1 and run.train.checkpoint_every is None
    assert run.data.split.val == 0.0 and run.data.params["range"] == [-1.0, 1.0]
    assert run.model.activation.name == "sigmoid" and run.loss.name == "mse"
    assert (run.experiment.task, run.experiment.device, run.experiment.dtype) == (
        "train",
        "cpu",
        "float32",
    )
