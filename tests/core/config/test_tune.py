"""`[tune]` in the one validation pass: the optimizers' default spaces, a plugin without one, the
Optuna extra, what `nnrun check` and `nnrun plugins` show. (Bad files: tests/bad_experiments.py.)"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from bad_experiments import BASE, TUNED, VALIDATED, edit
from click.testing import CliRunner
from plugin_sources import THIRD_PARTY_OPTIMIZER

import nnrun
from nnrun.cli import main
from nnrun.config.tuning import tune_runs, tune_space
from nnrun.errors import ConfigError
from nnrun.experiment.inspection import plugin_listing
from nnrun.factory import build
from nnrun.plugins.optimizers import BUILTINS

#: The torch.optim class each built-in follows: an independent judge of the spaces' extremes.
TORCH = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adamax": torch.optim.Adamax,
    "adadelta": torch.optim.Adadelta,
}


@functools.cache
def registry():
    return nnrun.load_registry()


def load(tmp_path, text, overrides=(), reg=None):
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return nnrun.load_experiment(path, overrides, registry=reg or registry())


def extremes(space):
    for key, entry in space.items():
        ((kind, values),) = entry.items()
        for value in values:
            yield key, kind, value


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_optimizer_declares_a_default_space_its_constructor_accepts(name):
    space = BUILTINS[name].search_space
    assert "lr" in space and "log_uniform" in space["lr"]
    for key, _, value in extremes(space):
        param = nnrun.Parameter(torch.zeros(2))
        build(registry(), "optimizers", {"name": name, key: value}, [param])
        if name in TORCH:  # torch.optim takes the same value (betas as a tuple)
            value = tuple(value) if isinstance(value, list) else value
            TORCH[name]([torch.zeros(2, requires_grad=True)], **{key: value})


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_default_learning_rate_range_spans_about_three_decades_around_the_default(name):
    low, high = BUILTINS[name].search_space["lr"]["log_uniform"]
    default = build(registry(), "optimizers", {"name": name}, [nnrun.Parameter(torch.zeros(1))])
    assert low <= default.hyperparameters["lr"] <= high
    assert 2.5 <= math.log10(high / low) <= 3.5


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_space_default_tunes_each_optimizer_over_its_own_space(tmp_path, name):
    text = edit(TUNED, 'name = "sgd"\nlr = 0.01', f'name = "{name}"')
    (run,) = load(tmp_path, text).runs
    space = {d.key: {d.kind: list(d.values)} for d in tune_space(run, registry())}
    assert space == {f"optimizer.{k}": v for k, v in BUILTINS[name].search_space.items()}


def test_a_third_party_optimizer_without_a_search_space_gets_a_clear_message(
    tmp_path, install_plugin
):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    text = edit(TUNED, 'name = "sgd"\nlr = 0.01', 'name = "signsgd"')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, reg=nnrun.load_registry())
    message = str(caught.value)
    line = text.splitlines().index("[tune]") + 1
    assert message.startswith(f'{tmp_path / "experiment.toml"}:{line}: [tune] space = "default": ')
    assert (
        "optimizer 'signsgd' (from nnrun-signsgd 1.0) declares no default search space" in message
    )
    assert 'space = { "optimizer.lr" = { log_uniform = [1e-4, 1e-1] } }' in message
    # the file's own space works for it
    given = text + 'space = { "optimizer.lr" = { log_uniform = [1e-3, 1e-1] } }\n'
    (run,) = load(tmp_path, given, reg=nnrun.load_registry()).runs
    assert [d.key for d in tune_space(run, nnrun.load_registry())] == ["optimizer.lr"]


def test_a_third_party_search_space_is_used_and_checked(tmp_path, install_plugin):
    source = THIRD_PARTY_OPTIMIZER.replace(
        "class SignSGD(nnrun.Optimizer):",
        'class SignSGD(nnrun.Optimizer):\n    search_space = {"lr": {"log_uniform": [-1.0, 1.0]}}',
    )
    install_plugin("nnrun-signsgd", {"nnrun_signsgd": source}, {"s": "nnrun_signsgd"})
    text = edit(TUNED, 'name = "sgd"\nlr = 0.01', 'name = "signsgd"')
    with pytest.raises(ConfigError, match=r"declares a search_space nnrun cannot use: 'lr': "):
        load(tmp_path, text, reg=nnrun.load_registry())


def test_without_optuna_a_tuned_file_names_the_extra_to_install(tmp_path, monkeypatch):
    import importlib.util

    import nnrun.config.tuning

    real = importlib.util.find_spec
    monkeypatch.setattr(
        nnrun.config.tuning.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "optuna" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"\[tune\] needs Optuna: .*pip install 'nnrun\[tune\]'"):
        load(tmp_path, TUNED)
    load(tmp_path, VALIDATED)  # a file without [tune] does not need it


def test_the_run_count_is_every_trial_and_every_final_seed(tmp_path):
    text = TUNED + "final_seeds = 3\n" + '\n[sweep]\n"optimizer.name" = ["sgd", "adam"]\n'
    experiment = load(tmp_path, text)
    assert [tune_runs(run) for run in experiment.runs] == [7, 7]
    assert tune_runs(load(tmp_path, VALIDATED).runs[0]) == 1


def test_a_tuned_experiment_round_trips_through_its_saved_config(tmp_path):
    text = TUNED + 'space = { "optimizer.lr" = { log_uniform = [1e-3, 1e-1] } }\nprune = "median"\n'
    with pytest.raises(ConfigError, match=r"\[tune\] prune"):  # prune is a table
        load(tmp_path, text)
    text = text.replace('prune = "median"', 'prune = { method = "asha", warmup_epochs = 2 }')
    experiment = load(tmp_path, text)
    import tomli_w

    from nnrun.experiment.rundir import toml_ready

    saved = tmp_path / "saved.toml"
    saved.write_text(tomli_w.dumps(toml_ready(experiment.to_dict())))
    again = nnrun.load_experiment(saved, registry=registry())
    assert again.runs[0].tune == experiment.runs[0].tune
    assert again.runs[0].tune.prune.method == "asha"


def test_check_prints_the_space_of_each_configuration_and_the_total_number_of_runs(tmp_path):
    text = TUNED + "final_seeds = 2\n" + '\n[sweep]\n"optimizer.name" = ["sgd", "adam"]\n'
    path = tmp_path / "tuned.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert f"# {path}: 12 run(s), all valid." in result.output
    assert (
        "#   optimizer=sgd: random, 4 trials + best on 2 seeds, val_loss (min); space: "
        "optimizer.lr log_uniform [0.001, 1.0]; optimizer.momentum uniform [0.0, 0.99]"
    ) in result.output
    assert "#   optimizer=adam: random, 4 trials" in result.output


def test_plugins_lists_each_optimizers_default_space():
    listing = plugin_listing(registry())
    optimizers = {c["name"]: c for c in listing["components"]["optimizers"]}
    assert optimizers["adamw"]["search_space"]["weight_decay"] == {"log_uniform": [1e-4, 1e-1]}
    assert all("search_space" not in c for c in listing["components"]["losses"])
    result = CliRunner().invoke(main, ["plugins"], env={"COLUMNS": "250"})  # no cell wraps
    assert "space: lr log_uniform [0.001, 1.0]" in result.output


def test_a_file_without_tune_is_unchanged(tmp_path):
    (run,) = load(tmp_path, BASE).runs
    assert run.tune is None and "tune" not in run.to_dict()


@pytest.mark.parametrize(
    "metric,mode", [("val_loss", "min"), ("val_accuracy", "max"), ("train_loss", "min")]
)
def test_mode_defaults_to_the_metrics_own(tmp_path, metric, mode):
    from nnrun.config.schema import TuneSection
    from nnrun.config.tuning import with_tune_mode

    (run,) = load(tmp_path, BASE).runs
    tuned = run.model_copy(update={"tune": TuneSection(metric=metric, trials=2)})
    assert with_tune_mode(tuned, registry()).tune.mode == mode
    explicit = run.model_copy(update={"tune": TuneSection(metric=metric, trials=2, mode="max")})
    assert with_tune_mode(explicit, registry()).tune.mode == "max"
