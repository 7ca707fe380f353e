"""The package as a user meets it: nnrun discovers it through its entry point, its example
experiment runs, and a bad `inner` table of lookahead is refused when the file is loaded, on its
line, by `nnrun check` and `nnrun run` alike."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nnrun_extra_optim
import pytest
from click.testing import CliRunner

import nnrun
from nnrun.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE = """\
[experiment]
name = "inner"
seed = 0

[data]
expr = "x**2"
n = 40

[model]
layers = [1, 4, 1]

[optimizer]
name = "lookahead"
k = 3
{inner}

[train]
epochs = 3
"""


def test_every_optimizer_is_discovered_through_the_entry_point():
    registry = nnrun.load_registry(strict=True)
    optimizers = registry.kind("optimizers")
    for name, cls in nnrun_extra_optim.OPTIMIZERS.items():
        assert optimizers[name] is cls


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_the_example_runs_every_optimizer_to_a_finite_loss(example, tmp_path):
    args = [str(EXAMPLES / example), "--out", str(tmp_path / "out"), "--json", "-q"]
    result = CliRunner().invoke(main, [*args, "-o", "train.epochs=2", "-o", "data.n=128"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert runs and all(run["status"] == "ok" for run in runs), runs


def test_lookahead_with_an_inner_optimizer_and_a_scheduler_trains(tmp_path):
    text = BASE.format(inner='inner = { name = "adabelief", lr = 0.01 }')
    text += '\n[scheduler]\nname = "cosine"\nT_max = 3\n'
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    result = CliRunner().invoke(
        main, ["run", str(path), "-q", "--json", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "ok"


BAD = {
    "unknown inner optimizer": (
        'inner = { name = "lamm" }',
        r"\[optimizer\.inner\]: unknown optimizer 'lamm'; did you mean 'lamb'\?",
    ),
    "inner hyperparameter it does not take": (
        'inner = { name = "adan", betas = [0.9, 0.9, 0.9], momentum = 0.9 }',
        r"\[optimizer\.inner\]: optimizer 'adan' does not take 'momentum'",
    ),
    "inner betas of the wrong length": (
        'inner = { name = "adan", betas = [0.9, 0.9] }',
        r"\[optimizer\.inner\]: betas = \[0\.9, 0\.9\]: betas takes 3 values",
    ),
    "inner constructor's own check": (
        'inner = { name = "lamb", lr = -0.1 }',
        r"\[optimizer\.inner\]: optimizer 'lamb': Invalid learning rate: -0\.1",
    ),
    "lookahead without inner": ("", r"\[optimizer\]: optimizer 'lookahead' needs 'inner'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", [["check"], ["run"]])
def test_a_bad_inner_optimizer_is_refused_on_its_line(tmp_path, monkeypatch, case, command):
    inner, message = BAD[case]
    text = BASE.format(inner=inner)
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    line = 1 + text.splitlines().index(inner or 'name = "lookahead"')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {path}:{line}: "), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "runs").exists()
