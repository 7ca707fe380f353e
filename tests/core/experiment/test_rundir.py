"""The run directory: a config that loads again into the same runs, the environment, metrics and
summary, checkpoints, plots that are real images, and writes that never leave half a file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import textwrap

import matplotlib.image
import pytest
import torch
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.experiment.rundir import RunDirectory, write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Two [[runs]] crossed with a two-value sweep, a nested scheduler, a run with its own seed and
# loss: everything config.toml has to carry. No seed: one is drawn and must be recorded.
RICH = """
[experiment]
name = "rich"

[data]
expr = "sin(x)"
n = 16
split = { val = 0.25 }

[model]
layers = [1, 3, 1]
activation = { name = "leaky_relu", negative_slope = 0.2 }
init = "xavier_uniform"

[optimizer]
name = "sgd"
lr = 0.1

[scheduler]
name = "linear_warmup"
warmup_epochs = 1
after = { name = "cosine", T_max = 2 }

[train]
epochs = 2
batch_size = 8
probes = [0.5]

[sweep]
"optimizer.name" = ["sgd", "adam"]

[[runs]]
name = "a"

[[runs]]
name = "b"
experiment = { seed = 11 }
loss = "huber"
"""

SOLVE = """
[experiment]
name = "roots"
task = "solve"

[solver]
name = "quadratic_descent"
a = 1.0
b = -6.0
c = 4.0
"""


def write(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """RICH with one override, run once: (experiment, summary, run directory)."""
    tmp_path = tmp_path_factory.mktemp("rich")
    experiment = nnrun.load_experiment(write(tmp_path, RICH), ["train.epochs=3"])
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    return experiment, summary, tmp_path / "out"


def test_config_toml_loads_again_into_the_same_runs_with_the_drawn_seed(finished):
    experiment, _, out = finished
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["experiment"]["seed"] == experiment.seed  # drawn, since the file had none
    again = nnrun.load_experiment(out / "config.toml")
    assert [r.name for r in again.runs] == [
        "a,optimizer=sgd",
        "a,optimizer=adam",
        "b,optimizer=sgd",
        "b,optimizer=adam",
    ]
    assert again.runs == experiment.runs
    assert (again.name, again.seed) == (experiment.name, experiment.seed)
    assert all(r.train.epochs == 3 for r in again.runs)  # the override is part of it
    assert again.runs[2].experiment.seed == 11 and again.runs[0].experiment.seed == experiment.seed


def test_overrides_txt_records_the_command_line_overrides(finished):
    _, _, out = finished
    assert (out / "overrides.txt").read_text().splitlines() == ["train.epochs=3"]


def installed_plugins() -> dict[str, str]:
    """Every installed distribution with entry points in the `nnrun` group, and its version:
    nnrun itself, and any extension package installed beside it (nnrun-extra-optim)."""
    return {
        ep.dist.name: ep.dist.version
        for ep in importlib.metadata.entry_points(group="nnrun")
        if ep.dist
    }


def test_environment_json_names_the_versions_that_produced_the_results(finished):
    _, _, out = finished
    environment = json.loads((out / "environment.json").read_text())
    assert environment["nnrun"] == nnrun.__version__
    assert environment["torch"] == torch.__version__
    assert environment["python"] == platform.python_version()
    assert environment["plugins"]["nnrun"] == nnrun.__version__
    assert environment["plugins"] == installed_plugins()


def test_environment_json_lists_a_third_party_plugins_distribution(tmp_path, install_plugin):
    install_plugin(
        "cube-plugin",
        {
            "cube_plugin": """
                import nnrun
                from nnrun.components import Activation

                class Cube(Activation):
                    def forward(self, z):
                        return z**3

                    def backward(self, z, out, grad):
                        return 3 * z**2 * grad

                @nnrun.hookimpl
                def register_activations(register):
                    register("cube", Cube)
            """
        },
        {"cube": "cube_plugin"},
        version="2.3",
    )
    text = RICH.replace('{ name = "leaky_relu", negative_slope = 0.2 }', '"cube"')
    experiment = nnrun.load_experiment(write(tmp_path, text), ["train.epochs=1"])
    nnrun.run_experiment(experiment, tmp_path / "out")
    plugins = json.loads((tmp_path / "out" / "environment.json").read_text())["plugins"]
    assert plugins["nnrun"] == nnrun.__version__ and plugins["cube-plugin"] == "2.3"
    assert plugins == installed_plugins()


def test_metrics_jsonl_holds_one_object_per_run_per_epoch(finished):
    experiment, _, out = finished
    records = metrics(out)
    assert [(r["run"], r["epoch"]) for r in records] == [
        (run.name, epoch) for run in experiment.runs for epoch in (1, 2, 3)
    ]
    assert all({"train_loss", "val_loss", "lr", "probes", "seconds"} <= set(r) for r in records)


def test_summary_json_lists_every_run_with_its_status(finished):
    experiment, summary, out = finished
    saved = json.loads((out / "summary.json").read_text())
    assert saved == summary
    assert saved["experiment"] == "rich"
    assert [r["name"] for r in saved["runs"]] == [r.name for r in experiment.runs]
    assert all(r["status"] == "ok" and r["epochs"] == 3 for r in saved["runs"])
    assert all({"final_loss", "final_val_loss", "probes"} <= set(r) for r in saved["runs"])


def test_a_finished_run_directory_leaves_no_temporary_files(finished):
    _, _, out = finished
    left = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(out)
        for name in names
        if (name.startswith(".") or name.endswith(".tmp"))
        and name not in (".nnrun-run", ".nnrun.lock")
    ]
    assert left == []


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_crash(stream):
        stream.write(b"new, but only ha")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        write_atomic(target, half_then_crash)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_metrics_are_appended_and_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    directory = RunDirectory.create(tmp_path / "out")
    directory.append_metrics({"run": "a", "epoch": 1})
    directory.append_metrics({"run": "a", "epoch": 2})
    with open(tmp_path / "out" / "metrics.jsonl", "a") as stream:
        stream.write('{"run": "a", "ep')  # killed mid-write
    assert directory.read_metrics() == [{"run": "a", "epoch": 1}, {"run": "a", "epoch": 2}]


def test_a_non_empty_directory_is_refused_unless_resuming_a_run_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(nnrun.ConfigError, match=r"not empty.*--resume.*--force"):
        RunDirectory.create(out)
    with pytest.raises(nnrun.ConfigError, match="not an nnrun run directory"):
        RunDirectory.create(out, resume=True)
    with pytest.raises(nnrun.ConfigError, match="not an nnrun run directory"):
        RunDirectory.create(tmp_path / "missing", resume=True)
    assert not (tmp_path / "missing").exists()
    (out / "config.toml").write_text("")
    RunDirectory.create(out, resume=True)
    assert (out / "notes.txt").exists()  # resuming keeps what is there
    with pytest.raises(nnrun.ConfigError, match="not a directory"):
        RunDirectory.create(out / "notes.txt")


def test_runs_whose_names_differ_only_in_unsafe_characters_keep_separate_checkpoints(tmp_path):
    text = RICH.split("[sweep]")[0] + (
        '[[runs]]\nname = "lr 0.1"\n\n[[runs]]\nname = "lr_0.1"\noptimizer = { lr = 0.5 }\n'
    )
    experiment = nnrun.load_experiment(write(tmp_path, text), ["experiment.seed=0"])
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    registry = nnrun.load_registry()
    from nnrun.experiment.assemble import make_data, make_model

    directory = RunDirectory(tmp_path / "out")
    for run, entry in zip(experiment.runs, summary["runs"]):
        model = make_model(run, registry)
        model.load_state_dict(directory.load_last_checkpoint(run.name)["model"])
        x, y = make_data(run).train
        assert torch.nn.functional.mse_loss(model.forward(x), y).item() == entry["final_loss"]
    assert len(list((tmp_path / "out" / "checkpoints").iterdir())) == 2


# ------------------------------------------------------------------------------------------------
# plots


def assert_image(path):
    assert path.stat().st_size > 10_000, path  # an empty figure is a few kB
    image = matplotlib.image.imread(path)
    height, width, channels = image.shape
    assert height > 200 and width > 200 and channels in (3, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_a_training_run_directory_has_a_loss_and_a_fit_plot(finished):
    _, _, out = finished
    assert_image(out / "loss.png")
    assert_image(out / "fit.png")
    assert not (out / "descent.png").exists()


def test_a_solve_run_directory_has_a_descent_plot(tmp_path):
    nnrun.run_experiment(nnrun.load_experiment(write(tmp_path, SOLVE)), tmp_path / "out")
    assert_image(tmp_path / "out" / "descent.png")
    assert not (tmp_path / "out" / "loss.png").exists()


# ------------------------------------------------------------------------------------------------
# nnrun resume


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_resume_on_a_finished_directory_reruns_nothing(finished):
    _, summary, out = finished
    before = (out / "metrics.jsonl").read_bytes()
    result = invoke("resume", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {**summary, "run_dir": str(out)}
    assert (out / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_resume_on_a_directory_that_is_not_a_run_directory_exits_2(tmp_path, content):
    if content:
        (tmp_path / content).write_text("mine")
    result = invoke("resume", tmp_path)
    assert result.exit_code == 2
    assert "not an nnrun run directory" in result.stderr and "Traceback" not in result.output


def test_the_run_directory_writes_strict_json_and_refuses_a_non_finite_number(tmp_path):
    """JSON has no NaN or infinity: a value that slipped through unconverted is a bug to surface,
    never `Infinity` in summary.json (which strict parsers reject)."""
    from nnrun.experiment.rundir import RunDirectory

    directory = RunDirectory(tmp_path)
    for write in (
        lambda: directory.write_json("summary.json", {"runs": [], "x": float("inf")}),
        lambda: directory.append_metrics({"run": "a", "loss": float("nan")}),
        lambda: directory.rewrite_metrics([{"run": "a", "loss": float("-inf")}]),
    ):
        with pytest.raises(ValueError, match="JSON compliant"):
            write()
