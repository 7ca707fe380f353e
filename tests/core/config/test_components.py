"""Components in a run the schema refused are still checked, so every problem comes at once; and
a component's spec is checked down to its nested components, at most `MAX_NESTING` deep."""

from __future__ import annotations

import functools

import pytest
from bad_experiments import BASE, SOLVE, edit

import nnrun
from nnrun.errors import ConfigError

TAKES = "[experiment] takes name, seed, task, device, dtype, threads, max_runs, requires"


@functools.cache
def registry():
    return nnrun.load_registry()


def error_of(tmp_path, text) -> str:
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        nnrun.load_experiment(path, registry=registry())
    return str(caught.value).replace(str(path), "FILE")


def test_a_solve_runs_solver_is_checked_beside_its_schema_problems(tmp_path):
    text = edit(SOLVE, 'task = "solve"', 'task = "solve"\nsed = 1')
    text = edit(text, '"quadratic_descent"', '"quadratic_descnt"')
    assert error_of(tmp_path, text).splitlines() == [
        "FILE: 2 problems:",
        f"  - FILE:4: [experiment] unknown key 'sed'; did you mean 'seed'?; {TAKES}",
        "  - FILE:7: [solver]: unknown solver 'quadratic_descnt'; did you mean "
        "'quadratic_descent'? Available solvers: quadratic_descent",
    ]


def test_a_train_runs_components_are_checked_and_a_stray_solver_is_not(tmp_path):
    text = edit(BASE, "seed = 0", "seed = 0\nsed = 1")
    text = edit(text, 'name = "sgd"', 'name = "adm"')
    text = '[solver]\nname = "nope"\n\n' + text.replace("[experiment]", "[experiment]", 1)
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0] == "FILE: 2 problems:"
    assert lines[2].startswith("  - FILE:17: [optimizer]: unknown optimizer 'adm'; did you mean")
    assert "solver" not in "".join(lines)


def test_a_train_run_refused_by_the_schema_still_names_its_bad_activation(tmp_path):
    text = edit(BASE, "epochs = 3", 'epochs = "3"')
    text = edit(text, "layers = [1, 4, 1]", 'layers = [1, 4, 1]\nactivation = "relux"')
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0] == "FILE: 2 problems:"
    assert (
        "FILE:11: [model] activation: unknown activation 'relux'; did you mean 'relu'?" in lines[2]
    )


def nested(afters: int) -> str:
    """A scheduler whose `after` chain holds `afters` schedulers."""
    inner = "{ name = 'linear_warmup', after = " * (afters - 1) + "'constant'" + " }" * (afters - 1)
    return BASE + f'\n[scheduler]\nname = "linear_warmup"\nafter = {inner}\n'


def test_components_nest_eight_deep_and_no_deeper(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(nested(8))
    (run,) = nnrun.load_experiment(path, registry=registry()).runs
    assert run.scheduler.name == "linear_warmup"
    assert error_of(tmp_path, nested(9)) == (
        "FILE:21: [scheduler" + ".after" * 8 + "]: components nest at most 8 deep"
    )


def test_a_nested_component_that_is_not_a_spec_is_refused_on_its_line(tmp_path):
    text = BASE + '\n[scheduler]\nname = "linear_warmup"\nafter = 3\n'
    assert error_of(tmp_path, text) == (
        "FILE:21: [scheduler]: Invalid after: 3 (expected a table naming a scheduler, like "
        '{ name = "cosine", T_max = 50 })'
    )


def load(tmp_path, text, overrides=()):
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return nnrun.load_experiment(path, overrides, registry=registry())


def test_a_train_runs_loss_and_a_solve_runs_solver_get_their_defaults(tmp_path):
    (run,) = load(tmp_path, BASE + '\n[loss]\nname = "huber"\n').runs
    assert run.loss.params == {"delta": 1.0}
    (run,) = load(tmp_path, SOLVE).runs
    assert run.solver.params == {"a": 1.0, "b": -6.0, "c": 4.0, "tol": 1e-12, "max_iter": 10000}


def test_a_solvers_optimizer_is_checked_once_beside_schema_problems(tmp_path):
    text = edit(SOLVE, 'task = "solve"', 'task = "solve"\nsed = 1')
    text += 'optimizer = { name = "adm", lr = 0.1 }\n'
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0] == "FILE: 2 problems:"
    assert lines[2].startswith(
        "  - FILE:11: [solver.optimizer]: unknown optimizer 'adm'; did you mean 'adam'?"
    )


def test_a_solver_lr_beside_its_optimizer_is_refused_in_full(tmp_path):
    text = SOLVE + 'lr = 0.2\noptimizer = { name = "adam", lr = 0.1 }\n'
    assert error_of(tmp_path, text) == (
        "FILE:10: [solver] lr is the step of the solver's own descent, and [solver.optimizer] "
        "replaces that descent: set lr in [solver.optimizer] instead"
    )


def test_a_constructors_message_naming_a_hyperparameter_is_reported_on_its_line(tmp_path):
    text = BASE + '\n[scheduler]\nname = "cosine"\neta_min = 0.0\nT_max = 0\n'
    assert error_of(tmp_path, text) == (
        "FILE:22: [scheduler]: scheduler 'cosine': Invalid T_max: 0 (expected an integer > 0)"
    )
