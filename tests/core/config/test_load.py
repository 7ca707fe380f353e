"""`load_experiment` as one validation pass: what it accepts, how it reports several problems,
how overrides compose, and the whole-run checks (device, memory) that need the machine."""

from __future__ import annotations

import functools
import inspect
import subprocess
import sys

import pytest
import torch
from bad_experiments import BASE, SOLVE, edit

import nnrun
import nnrun.plugins.schedulers
from nnrun.config.fit import check_memory
from nnrun.errors import ConfigError
from nnrun.hyperparameters import validate


@functools.cache
def registry():
    return nnrun.load_registry()


def load(tmp_path, text, overrides=()):
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return nnrun.load_experiment(path, overrides, registry=registry())


def error_of(tmp_path, text, overrides=()) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, overrides)
    return str(caught.value)


def test_a_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert nnrun.load_experiment(path, registry=registry()).name == "schema"


def test_an_integer_is_accepted_where_a_hyperparameter_is_a_float(tmp_path):
    (run,) = load(tmp_path, edit(BASE, "lr = 0.01", "lr = 1")).runs
    assert run.optimizer.params["lr"] == 1


def test_a_hyperparameter_without_annotation_takes_the_type_of_its_default():
    class Plain:
        def __init__(self, scale=0.5, steps=3, flag=False, label="a"):
            pass

    assert validate(Plain, "activations", "plain", {"scale": 1, "steps": 2}, "[x]")
    for key, value in [("scale", "0.5"), ("steps", 2.0), ("flag", 0), ("label", 1)]:
        with pytest.raises(ConfigError, match=f"{key} = "):
            validate(Plain, "activations", "plain", {key: value}, "[x]")


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    text = edit(BASE, "seed = 0", "seed = 0\nsed = 1")
    text = edit(text, "epochs = 3", 'epochs = "3"')
    text = edit(text, "layers = [1, 4, 1]", "layers = [1, 4, 1]\nactivation = 'Relu'")
    lines = error_of(tmp_path, text).splitlines()
    path = tmp_path / "experiment.toml"
    assert lines[0] == f"{path}: 3 problems:"
    assert (
        lines[1:]
        == [
            f"  - {path}:4: [experiment] unknown key 'sed'; did you mean 'seed'?; "
            "[experiment] takes name, seed, task, device, dtype, threads, max_runs, requires",
            f'  - {path}:18: [train] epochs = "3": Input should be a valid integer',
            f"  - {path}:12: [model] activation: unknown activation 'Relu'; did you mean 'relu'? "
            "Available activations: " + ", ".join(sorted(registry().activations)),
        ]
        or len(lines) == 4
    )


def test_at_most_twenty_problems_are_listed(tmp_path):
    text = edit(BASE, "epochs = 3", "epochs = 3\n" + "".join(f"k{i} = 1\n" for i in range(25)))
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0].endswith(": 25 problems (the first 20 shown):")
    assert len(lines) == 21 and all(line.startswith("  - ") for line in lines[1:])


def test_a_problem_of_every_run_is_reported_once_without_a_run_label(tmp_path):
    text = BASE + "lr = 0.1\n" + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01, 0.001]\n'
    error = error_of(tmp_path, text)
    assert "\n" not in error and "run " not in error
    assert "[train] unknown key 'lr'" in error


def test_a_problem_of_some_runs_names_them(tmp_path):
    text = BASE + '\n[sweep]\n"optimizer.lr" = [0.1, inf, -1.0]\n'
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0].endswith("2 problems:")
    assert "run 'lr=inf': [optimizer]: lr = inf: lr must be a finite number" in lines[1]
    assert "run 'lr=-1': [optimizer]: optimizer 'sgd': Invalid learning rate: -1.0" in lines[2]


def test_an_override_sets_one_key_and_keeps_the_rest_of_its_table(tmp_path):
    experiment = load(tmp_path, BASE, ["experiment.name=quick", "optimizer.lr=0.5"])
    (run,) = experiment.runs
    assert (experiment.name, experiment.seed) == ("quick", 0)
    assert run.optimizer.name == "sgd" and run.optimizer.params["lr"] == 0.5


def test_overriding_a_components_name_starts_it_from_its_defaults(tmp_path):
    (run,) = load(tmp_path, BASE, ["optimizer.name=adam"]).runs
    assert run.optimizer.name == "adam" and run.optimizer.params["lr"] == 0.001


def test_an_error_caused_with_overrides_names_them(tmp_path):
    error = error_of(tmp_path, BASE, ["optimizer.lr=inf"])
    assert error.endswith("(with the overrides optimizer.lr=inf)")


def test_names_a_sweep_composes_may_hold_a_slash(tmp_path):
    text = BASE + '\n[sweep]\n"data.expr" = ["x/2", "x**2"]\n'
    assert [run.name for run in load(tmp_path, text).runs] == ["expr=x/2", "expr=x**2"]


def test_a_scheduler_after_gets_its_defaults_filled_in(tmp_path):
    text = BASE + '\n[scheduler]\nname = "linear_warmup"\nafter = { name = "cosine", T_max = 4 }\n'
    (run,) = load(tmp_path, text).runs
    assert run.scheduler.params["after"] == {"name": "cosine", "T_max": 4, "eta_min": 0.0}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_refused_at_load(tmp_path):
    error = error_of(tmp_path, edit(BASE, "seed = 0", 'seed = 0\ndevice = "cuda"'))
    assert ":4: [experiment] device = 'cuda', but torch has no CUDA device here" in error


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")
def test_mps_without_mps_is_refused_at_load(tmp_path):
    error = error_of(tmp_path, edit(BASE, "seed = 0", 'seed = 0\ndevice = "mps"'))
    assert ":4: [experiment] device = 'mps', but torch has no MPS" in error


def test_the_memory_estimate_counts_weights_optimizer_state_data_and_activations(tmp_path):
    (run,) = load(tmp_path, edit(BASE, "layers = [1, 4, 1]", "layers = [1, 1000, 1]")).runs
    parameters = 1000 + 1000 + 1000 + 1  # two weight matrices and two biases
    needed = 4 * parameters * 4 + 40 * 2 * 4 + 2 * 32 * 1002 * 4
    assert check_memory(run, needed, (40, 2 * 4)) is None
    message = check_memory(run, needed - 1, (40, 2 * 4))
    assert message.startswith(
        "[model] layers = [1, 1000, 1] has 3.0e+03 parameters (47 KiB of weights"
    )


def test_config_imports_neither_experiment_nor_the_plugins_registry_lookups():
    code = (
        "import sys, nnrun.config, nnrun.config.fit, nnrun.config.resolve; "
        "print(any(m.startswith('nnrun.experiment') for m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


def test_plugins_get_nested_components_built_and_never_look_them_up():
    assert "load_registry" not in inspect.getsource(nnrun.plugins.schedulers)


def test_a_resume_seed_is_used_only_where_the_file_sets_none(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(edit(BASE, "seed = 0\n", ""))
    assert nnrun.load_experiment(path, registry=registry(), seed=1234).seed == 1234
    path.write_text(BASE)
    assert nnrun.load_experiment(path, registry=registry(), seed=1234).seed == 0


def test_the_experiment_records_its_file_and_overrides_and_dumps_what_reloads(tmp_path):
    text = BASE + '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\ntrain = { epochs = 5 }\n'
    experiment = load(tmp_path, text, ["optimizer.lr=0.5"])
    assert experiment.path == tmp_path / "experiment.toml"
    assert experiment.overrides == ["optimizer.lr=0.5"]
    dumped = experiment.to_dict()
    assert dumped["experiment"]["name"] == "schema" and dumped["experiment"]["seed"] == 0
    assert [(run["name"], run["train"]["epochs"]) for run in dumped["runs"]] == [("a", 3), ("b", 5)]
    assert all(run["optimizer"]["lr"] == 0.5 for run in dumped["runs"])


def test_an_override_error_from_composing_names_the_overrides(tmp_path):
    text = BASE + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n'
    error = error_of(tmp_path, text, ["experiment.max_runs=1"])
    assert error.endswith("raise max_runs (with the overrides experiment.max_runs=1)")


def test_exactly_twenty_problems_are_all_listed_without_a_note(tmp_path):
    text = edit(BASE, "epochs = 3", "epochs = 3\n" + "".join(f"k{i} = 1\n" for i in range(20)))
    lines = error_of(tmp_path, text).splitlines()
    assert lines[0].endswith(": 20 problems:") and len(lines) == 21


def test_a_problem_in_more_than_three_runs_names_three_and_counts_the_rest(tmp_path):
    text = (
        BASE + '\n[sweep]\n"optimizer.name" = ["sgd", "nope"]\n"train.epochs" = [1, 2, 3, 4, 5]\n'
    )
    (line,) = error_of(tmp_path, text).splitlines()
    assert (
        ": runs 'optimizer=nope,epochs=1', 'optimizer=nope,epochs=2', 'optimizer=nope,epochs=3' and 2 more: "
        in (line)
    )
    assert "unknown optimizer 'nope'" in line


def test_a_problem_in_two_or_three_runs_names_them_all(tmp_path):
    text = BASE + '\n[sweep]\n"optimizer.name" = ["sgd", "nope"]\n"train.epochs" = [1, 2]\n'
    (line,) = error_of(tmp_path, text).splitlines()
    assert (
        ": runs 'optimizer=nope,epochs=1', 'optimizer=nope,epochs=2': [optimizer]: unknown" in line
    )


@pytest.mark.parametrize(
    "text",
    [
        BASE + '\n[scheduler]\nname = "linear_warmup"\nafter = { name = "cosine", T_max = 4 }\n'
        '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\ntrain = { epochs = 5 }\n',
        SOLVE + 'optimizer = { name = "adam", lr = 0.1 }\n',
        SOLVE,
    ],
)
def test_an_experiment_dumped_to_toml_loads_back_as_the_same_runs(tmp_path, text):
    import tomli_w

    from nnrun.experiment.rundir import toml_ready  # what a run directory's config.toml holds

    experiment = load(tmp_path, text)
    again = tmp_path / "again.toml"
    again.write_text(tomli_w.dumps(toml_ready(experiment.to_dict())))
    reloaded = nnrun.load_experiment(again, registry=registry())
    assert (reloaded.name, reloaded.seed) == (experiment.name, experiment.seed)
    assert [(r.name, r.to_dict()) for r in reloaded.runs] == [
        (r.name, r.to_dict()) for r in experiment.runs
    ]
    solver = experiment.runs[0].solver
    if solver is not None:  # the solver's own optimizer is kept, or left out when not set
        assert ("optimizer" in solver.to_dict()) == ("optimizer = " in text)


def test_a_message_about_an_override_is_not_followed_by_the_overrides(tmp_path):
    text = BASE + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n'
    error = error_of(tmp_path, text, ["optimizer.lr=0.5"])
    assert error.startswith("override 'optimizer.lr=0.5': ")
    assert error.endswith("change the sweep instead")


def test_every_override_given_is_named_after_a_problem(tmp_path):
    error = error_of(tmp_path, BASE, ["train.epochs=2", "optimizer.lr=inf"])
    assert error.endswith("(with the overrides train.epochs=2 optimizer.lr=inf)")
