"""Which line a problem is reported on: the offending key's own line, however the file spells the
key or its table (quoted, dotted, commented), and in a [[runs]] entry the entry's own line."""

from __future__ import annotations

import functools
import re

import pytest
from bad_experiments import BASE, edit

import nnrun
from nnrun.errors import ConfigError


@functools.cache
def registry():
    return nnrun.load_registry()


def error_of(tmp_path, text) -> str:
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        nnrun.load_experiment(path, registry=registry())
    return str(caught.value).replace(str(path), "FILE")


def line_of(text: str, snippet: str) -> int:
    (number,) = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return number


BAD_EPOCHS = r"\[train\] epochs = \"3\": Input should be a valid integer"

# (text, the snippet on the line the problem must be reported on, what the message says then)
SPELLINGS = {
    "quoted key": (edit(BASE, "epochs = 3", '"epochs" = "3"'), '"epochs"', BAD_EPOCHS),
    "typo ending in a capital X": (
        edit(BASE, "epochs = 3", "epochsX = 3"),
        "epochsX",
        r"\[train\] unknown key 'epochsX'; did you mean 'epochs'\?",
    ),
    "dotted key inside a table": (
        edit(BASE, "n = 40", "n = 40\nsplit.val = 1.0"),
        "split.val",
        r"\[data\.split\] val = 1\.0: Input should be less than 1",
    ),
    "table header with a comment holding #": (
        edit(edit(BASE, "[train]", "[train]  # see issue #12"), "epochs = 3", 'epochs = "3"'),
        'epochs = "3"',
        BAD_EPOCHS,
    ),
    "quoted table header": (
        edit(edit(BASE, "[train]", '["train"]'), "epochs = 3", 'epochs = "3"'),
        'epochs = "3"',
        BAD_EPOCHS,
    ),
    "file opening with a comment": (
        "# an experiment\n" + edit(BASE, "epochs = 3", 'epochs = "3"'),
        'epochs = "3"',
        BAD_EPOCHS,
    ),
    "run named with an = sign": (
        BASE + '\n[[runs]]\nname = "X=1"\ntrain = { epochs = "3" }\n',
        'train = { epochs = "3" }',
        BAD_EPOCHS,
    ),
    "component check in a run's inline table": (
        BASE + '\n[[runs]]\nname = "neg"\noptimizer = { name = "sgd", lr = -1.0 }\n',
        "lr = -1.0",
        r"\[optimizer\]: optimizer 'sgd': Invalid learning rate: -1\.0",
    ),
}


@pytest.mark.parametrize("case", sorted(SPELLINGS))
def test_a_problem_is_reported_on_the_line_of_its_key_however_it_is_spelt(tmp_path, case):
    text, snippet, message = SPELLINGS[case]
    error = error_of(tmp_path, text)
    prefix = f"FILE:{line_of(text, snippet)}: "
    assert error.startswith(prefix), error
    assert re.search(message, error[len(prefix) :]), error


def test_each_runs_problem_is_on_that_runs_own_line(tmp_path):
    text = (
        BASE
        + '\n[[runs]]\nname = "a"\ntrain = { epochs = "x" }\n'
        + '\n[[runs]]\nname = "b"\ntrain = { epochs = "y" }\n'
    )
    x, y = line_of(text, '"x"'), line_of(text, '"y"')
    assert error_of(tmp_path, text).splitlines()[1:] == [
        f"  - FILE:{x}: run 'a': [train] epochs = \"x\": Input should be a valid integer",
        f"  - FILE:{y}: run 'b': [train] epochs = \"y\": Input should be a valid integer",
    ]


def test_a_base_table_written_after_the_runs_is_still_the_base(tmp_path):
    text = (
        edit(BASE, "[train]\nepochs = 3\n", "")
        + '\n[[runs]]\nname = "a"\ntrain = { epochs = "x" }\n'
        + '\n[[runs]]\nname = "b"\n'
        + '\n[train]\nepochs = "y"\n'
    )
    x, y = line_of(text, '"x"'), line_of(text, '"y"')
    assert error_of(tmp_path, text).splitlines()[1:] == [
        f"  - FILE:{x}: run 'a': [train] epochs = \"x\": Input should be a valid integer",
        f"  - FILE:{y}: run 'b': [train] epochs = \"y\": Input should be a valid integer",
    ]


def test_unknown_keys_come_first_and_missing_keys_last(tmp_path):
    text = edit(BASE, "n = 40\n", "")  # [data] n missing
    text = edit(text, "layers = [1, 4, 1]", 'layers = "wide"')  # [model] wrong type
    text = edit(text, "epochs = 3", "epochs = 3\nepoch = 3")  # [train] unknown key
    lines = error_of(tmp_path, text).splitlines()
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in lines[1:]] == [
        "[train]",
        "[model]",
        "[data]:",
    ]
    assert "unknown key 'epoch'" in lines[1] and "dataset 'function' needs 'n'" in lines[3]


def test_a_typo_in_a_sub_table_does_not_hide_a_key_missing_from_its_parent(tmp_path):
    text = edit(BASE, "n = 40", "split = { vall = 0.1 }")
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0] == "FILE: 2 problems:"
    assert "[data.split] unknown key 'vall'; did you mean 'val'?" in lines[1]
    assert lines[2] == "  - FILE:5: [data]: dataset 'function' needs 'n'"
