"""An optimizer may wrap another one (`inner = { name = "sgd", lr = 0.1 }`, annotated
`nnrun.InnerOptimizer`): the factory hands it a factory that builds the inner optimizer on its
parameters, and a bad inner spec is refused when the file is loaded, on its own line, by `check` and
`run` alike."""

from __future__ import annotations

import re
import sys

import pytest
import torch
from bad_experiments import BASE, edit
from click.testing import CliRunner
from plugin_sources import WRAPPING_OPTIMIZER

import nnrun
from nnrun.cli import main
from nnrun.factory import ComponentFactory, build

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

INNER_ADAM_DEFAULTS = {
    "name": "adam",
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "amsgrad": False,
    "maximize": False,
}


@pytest.fixture
def registry(install_plugin):
    install_plugin(
        "repeat-plugin", {"repeat_plugin": WRAPPING_OPTIMIZER}, {"repeat": "repeat_plugin"}
    )
    return nnrun.load_registry(strict=True)


@pytest.mark.parametrize("times", [1, 3])
def test_a_wrapper_steps_the_inner_optimizer_the_factory_built_on_its_parameters(registry, times):
    param = nnrun.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    spec = {"name": "repeat", "times": times, "inner": {"name": "sgd", "lr": 0.1}}
    optimizer = build(registry, "optimizers", spec, [param])
    assert isinstance(optimizer.inner, registry.kind("optimizers")["sgd"])
    assert optimizer.inner.params == [param]
    param.grad = torch.tensor([0.5, 4.0], dtype=torch.float64)
    optimizer.step()
    # `times` plain SGD steps with the same gradient, by hand: p − times·lr·g.
    expected = torch.tensor([1.0 - times * 0.05, -2.0 - times * 0.4], dtype=torch.float64)
    torch.testing.assert_close(param.data, expected, rtol=1e-15, atol=0)


def test_the_inner_factory_is_checked_and_builds_a_fresh_optimizer_each_call(registry):
    factory = ComponentFactory(registry, "optimizers", {"name": "adam", "lr": 0.01})
    params = [nnrun.Parameter(torch.zeros(2))]
    first, second = factory(params), factory(params)
    assert first is not second and first.lr == second.lr == 0.01


def experiment(inner: str) -> str:
    return edit(BASE, 'name = "sgd"\nlr = 0.01', f'name = "repeat"\ninner = {inner}')


def test_a_wrapper_with_a_good_inner_optimizer_is_checked_and_trains(registry, tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(experiment('{ name = "adam", lr = 0.01 }'))
    checked = CliRunner().invoke(main, ["check", str(path)])
    assert checked.exit_code == 0, checked.output
    printed = tomllib.loads(checked.stdout)["runs"][0]["optimizer"]
    assert printed["inner"] == {**INNER_ADAM_DEFAULTS, "lr": 0.01}  # the inner's defaults filled in
    ran = CliRunner().invoke(
        main, ["run", str(path), "-q", "--json", "--out", str(tmp_path / "out")]
    )
    assert ran.exit_code == 0, ran.output
    assert '"status": "ok"' in ran.stdout


BAD_INNER = {
    "unknown inner optimizer": (
        '{ name = "adm", lr = 0.01 }',
        r"\[optimizer\.inner\]: unknown optimizer 'adm'; did you mean 'adam'\?",
    ),
    "unknown inner hyperparameter": (
        '{ name = "adam", lrr = 0.01 }',
        r"\[optimizer\.inner\]: optimizer 'adam' does not take 'lrr'; did you mean 'lr'\?",
    ),
    "inner hyperparameter of the wrong type": (
        '{ name = "adam", lr = "0.01" }',
        r"\[optimizer\.inner\]: lr = '0\.01': lr: Input should be a valid number",
    ),
    "inner constructor's own check": (
        '{ name = "adam", lr = -0.1 }',
        r"\[optimizer\.inner\]: optimizer 'adam': Invalid learning rate: -0\.1",
    ),
    "inner that is not a table": (
        "3",
        r"\[optimizer\]: Invalid inner: 3 \(expected a table naming an? optimizer",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INNER))
@pytest.mark.parametrize("command", [["check"], ["run", "--jobs", "1"], ["run", "--jobs", "2"]])
def test_a_bad_inner_optimizer_is_refused_on_its_line_before_anything_runs(
    registry, tmp_path, monkeypatch, case, command
):
    inner, message = BAD_INNER[case]
    path = tmp_path / "experiment.toml"
    text = experiment(inner)
    path.write_text(text)
    line = 1 + text.splitlines().index(f"inner = {inner}")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {path}:{line}: "), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_wrappers_own_check_names_the_wrapper(registry, tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(edit(experiment('{ name = "sgd" }'), "inner = ", "times = 0\ninner = "))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert "[optimizer]: optimizer 'repeat': Invalid times: 0" in result.stderr
