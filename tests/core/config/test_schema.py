"""Schema errors: every mistake in an experiment file is one line naming the file, the line of the
offending key (in its own table), the key's path and what was expected."""

from __future__ import annotations

import functools
import re

import pytest

import nnrun
from nnrun.errors import ConfigError

BASE = """\
[experiment]
name = "schema"
seed = 0

[data]
expr = "x**2"
n = 40

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.01

[train]
epochs = 3
"""

SOLVE = """\
[experiment]
name = "roots"
task = "solve"

[solver]
name = "quadratic_descent"
a = 1.0
b = -6.0
c = 4.0
"""


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


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


# (text, the line holding the mistake, what the message says after "file:line: ")
WITH_LINE = {
    # unknown keys, anywhere
    "unknown key in [experiment]": (
        edit(BASE, "seed = 0", "seed = 0\nsed = 1"),
        "sed = 1",
        r"\[experiment\] unknown key 'sed'; did you mean 'seed'\?; "
        r"\[experiment\] takes name, seed, task, device, dtype",
    ),
    "unknown key in an inline sub-table": (
        edit(BASE, "n = 40", "n = 40\nsplit = { tst = 0.1 }"),
        "tst = 0.1",
        r"\[data\.split\] unknown key 'tst'; \[data\.split\] takes val$",
    ),
    "unknown key in a sub-table header": (
        BASE + "\n[data.split]\nvall = 0.1\n",
        "vall = 0.1",
        r"\[data\.split\] unknown key 'vall'; did you mean 'val'\?",
    ),
    "unknown key in [model]": (
        edit(BASE, "layers = [1, 4, 1]", "layers = [1, 4, 1]\nactivations = 'relu'"),
        "activations =",
        r"\[model\] unknown key 'activations'; did you mean 'activation'\?",
    ),
    # the key another table has: the line is the one in [train], not [optimizer]'s lr
    "unknown key that another table has": (
        BASE + "lr = 0.1\n",
        "lr = 0.1",
        r"\[train\] unknown key 'lr'; \[train\] takes epochs, batch_size, probes, shuffle, "
        r"early_stopping, restore_best, grad_clip, log_every, checkpoint_every",
    ),
    # a misspelt required key is reported as the typo, not as the key that is then missing
    "misspelt required key": (
        edit(BASE, "expr = ", "exp = "),
        "exp = ",
        r"\[data\] unknown key 'exp'; did you mean 'expr'\?",
    ),
    "unknown key in a run": (
        BASE + '\n[[runs]]\nname = "a"\ntrain = { epochs = 2, shufle = true }\n',
        "shufle = true",
        r"\[train\] unknown key 'shufle'; did you mean 'shuffle'\?",
    ),
    # wrong types: TOML has real types, so nothing is coerced
    "string for an integer": (
        edit(BASE, "epochs = 3", 'epochs = "3"'),
        "epochs =",
        r'\[train\] epochs = "3": Input should be a valid integer',
    ),
    "boolean for an integer": (
        edit(BASE, "epochs = 3", "epochs = true"),
        "epochs =",
        r"\[train\] epochs = true: Input should be a valid integer",
    ),
    "float for an integer": (
        edit(BASE, "epochs = 3", "epochs = 3.0"),
        "epochs =",
        r"\[train\] epochs = 3\.0: Input should be a valid integer",
    ),
    "string for a boolean": (
        BASE + 'shuffle = "yes"\n',
        "shuffle =",
        r'\[train\] shuffle = "yes": Input should be a valid boolean',
    ),
    "integer for a boolean": (
        BASE + "shuffle = 1\n",
        "shuffle =",
        r"\[train\] shuffle = 1: Input should be a valid boolean",
    ),
    "string for a number": (
        edit(BASE, "n = 40", 'n = 40\nnoise = "0.1"'),
        "noise =",
        r'\[data\] noise = "0\.1": Input should be a valid number',
    ),
    "string in a list of numbers": (
        BASE + 'probes = [1.0, "two"]\n',
        "probes =",
        r'\[train\] probes\[1\] = "two": Input should be a valid number',
    ),
    "string for a list": (
        edit(BASE, "layers = [1, 4, 1]", 'layers = "1, 4, 1"'),
        "layers =",
        r'\[model\] layers = "1, 4, 1": Input should be a valid list',
    ),
    "number for a table": (
        edit(BASE, "n = 40", "n = 40\nsplit = 0.1"),
        "split =",
        r"\[data\] split = 0\.1: Input should be a valid dictionary",
    ),
    "number for a component": (
        edit(BASE, "layers = [1, 4, 1]", "layers = [1, 4, 1]\nactivation = 3"),
        "activation =",
        r"\[model\] activation = 3: Input should be a valid dictionary",
    ),
    "three numbers for a range": (
        edit(BASE, "n = 40", "n = 40\nrange = [0.0, 1.0, 2.0]"),
        "range =",
        r"\[data\] range = \[0\.0, 1\.0, 2\.0\]: Tuple should have at most 2 items",
    ),
    # out of range
    "val share of 1": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = 1.0 }"),
        "split =",
        r"\[data\.split\] val = 1\.0: Input should be less than 1",
    ),
    "negative val share": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = -0.1 }"),
        "split =",
        r"\[data\.split\] val = -0\.1: Input should be greater than or equal to 0",
    ),
    "negative noise": (
        edit(BASE, "n = 40", "n = 40\nnoise = -1.0"),
        "noise =",
        r"\[data\] noise = -1\.0: Input should be greater than or equal to 0",
    ),
    "reversed range": (
        edit(BASE, "n = 40", "n = 40\nrange = [2.0, -2.0]"),
        "range =",
        r"\[data\] range = \[2\.0, -2\.0\]: range must be \[low, high\] with finite low < high",
    ),
    "zero grad_clip": (
        BASE + "grad_clip = 0.0\n",
        "grad_clip",
        r"\[train\] grad_clip = 0\.0: Input should be greater than 0",
    ),
    "zero log_every": (
        BASE + "log_every = 0\n",
        "log_every",
        r"\[train\] log_every = 0: Input should be greater than or equal to 1",
    ),
    "zero checkpoint_every": (
        BASE + "checkpoint_every = 0\n",
        "checkpoint_every",
        r"\[train\] checkpoint_every = 0: Input should be greater than or equal to 1",
    ),
    "zero patience": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.2 }") + "early_stopping = 0\n",
        "early_stopping",
        r"\[train\] early_stopping = 0: Input should be greater than or equal to 1",
    ),
    "negative seed": (
        edit(BASE, "seed = 0", "seed = -1"),
        "seed =",
        r"\[experiment\] seed = -1: Input should be greater than or equal to 0",
    ),
    "unknown task": (
        edit(BASE, "seed = 0", 'seed = 0\ntask = "fit"'),
        "task =",
        r"\[experiment\] task = \"fit\": Input should be 'train' or 'solve'",
    ),
    "unknown dtype": (
        edit(BASE, "seed = 0", 'seed = 0\ndtype = "float16"'),
        "dtype =",
        r"\[experiment\] dtype = \"float16\": Input should be 'float32' or 'float64'",
    ),
    "unknown device": (
        edit(BASE, "seed = 0", 'seed = 0\ndevice = "gpu"'),
        "device =",
        r"\[experiment\] device = \"gpu\": device must be 'cpu', 'cuda' or 'cuda:N'",
    ),
    # a run's own mistake is placed on the run's line, not on the base table's
    "a run's out-of-range value": (
        BASE + '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\ntrain = { epochs = 0 }\n',
        "epochs = 0",
        r"run 'b': \[train\] epochs = 0: Input should be greater than or equal to 1",
    ),
    "a run's mistake in a sub-table header": (
        BASE + '\n[[runs]]\nname = "a"\n\n[runs.train]\nepochs = -2\n',
        "epochs = -2",
        r"\[train\] epochs = -2: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize("case", sorted(WITH_LINE))
def test_a_mistake_is_one_line_with_file_line_key_path_and_expectation(tmp_path, case):
    text, snippet, message = WITH_LINE[case]
    error = error_of(tmp_path, text)
    prefix = f"{tmp_path / 'experiment.toml'}:{line_of(text, snippet)}: "
    assert error.startswith(prefix), error
    assert re.search(message, error[len(prefix) :]), error


# Mistakes no single line holds: the message names the file and the table.
WITHOUT_LINE = {
    "missing expr": (edit(BASE, 'expr = "x**2"\n', ""), r"\[data\] 'expr' is required"),
    "missing n": (edit(BASE, "n = 40\n", ""), r"\[data\] 'n' is required"),
    "missing layers": (edit(BASE, "layers = [1, 4, 1]\n", ""), r"\[model\] 'layers' is required"),
    "missing epochs": (edit(BASE, "epochs = 3\n", ""), r"\[train\] 'epochs' is required"),
    "missing optimizer name": (
        edit(BASE, 'name = "sgd"\n', ""),
        r"\[optimizer\] 'name' is required",
    ),
    "missing tables": (
        BASE.split("[model]")[0],
        r"a train experiment needs \[model\], \[optimizer\], \[train\]$",
    ),
    "[solver] in a train experiment": (
        BASE + '\n[solver]\nname = "quadratic_descent"\n',
        r"\[solver\] is only used when \[experiment\] task = 'solve'",
    ),
    "[model] in a solve experiment": (
        SOLVE + "\n[model]\nlayers = [1, 4, 1]\n",
        r"\[model\] not used when task = 'solve'",
    ),
    "[scheduler] in a solve experiment": (
        SOLVE + '\n[scheduler]\nname = "step"\nstep_size = 2\n',
        r"\[scheduler\] not used when task = 'solve'",
    ),
    "solve without [solver]": (
        SOLVE.split("[solver]")[0],
        r"a solve experiment needs a \[solver\] table",
    ),
    "early stopping without a validation split": (
        BASE + "early_stopping = 3\n",
        r"\[train\] early_stopping watches the validation loss: add \[data\] split = "
        r"\{ val = 0\.1 \}",
    ),
}


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
    assert run.data.range == (-2.0, 2.0) and run.data.noise == 0.0
    assert run.train.probes == [1.0, 2.0]
    assert all(isinstance(v, float) for v in (*run.data.range, run.data.noise, *run.train.probes))


def test_defaults_are_filled_in_for_what_the_file_leaves_out(tmp_path):
    (run,) = load(tmp_path, BASE).runs
    assert run.train.batch_size == 32 and run.train.shuffle is False
    assert run.train.early_stopping is None and run.train.grad_clip is None
    assert run.train.log_every == 1 and run.train.checkpoint_every is None
    assert run.data.split.val == 0.0 and run.data.range == (-1.0, 1.0)
    assert run.model.activation.name == "sigmoid" and run.loss.name == "mse"
    assert (run.experiment.task, run.experiment.device, run.experiment.dtype) == (
        "train",
        "cpu",
        "float32",
    )
