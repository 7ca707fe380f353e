"""The read-only views: `nnrun check` (the resolved experiment, nothing run), `nnrun plugins`
(every component and where it comes from, broken plugins included), `nnrun show` and `compare`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import nnrun
from nnrun.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TWO_RUNS = """
[experiment]
name = "two"
seed = 4

[data]
expr = "x**2"
n = 24
split = { val = 0.25 }

[model]
layers = [1, 4, 1]

[optimizer]
name = "adam"
lr = 0.01

[train]
epochs = 2
batch_size = 8

[[runs]]
name = "adam"

[[runs]]
name = "sgd"
optimizer = { name = "sgd", lr = 0.1 }
"""


def cube_plugin(signature: str = "self, scale: float = 1.0") -> dict[str, str]:
    """A third-party activation z ↦ scale·z³, its constructor's signature as given."""
    return {
        "cube_plugin": f"""
            import nnrun
            from nnrun.components import Activation

            class Cube(Activation):
                def __init__({signature}):
                    self.scale = scale

                def forward(self, z):
                    return self.scale * z**3

                def backward(self, z, out, grad):
                    return 3 * self.scale * z**2 * grad

            @nnrun.hookimpl
            def register_activations(register):
                register("cube", Cube)
        """
    }


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(folder, text, name="experiment.toml"):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------------------
# nnrun check


def test_check_prints_every_resolved_run_with_defaults_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, TWO_RUNS)
    (tmp_path / "printed").mkdir()
    result = invoke("check", path, "-o", "train.epochs=5")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["experiment.toml", "printed"]  # no run directory

    printed = tomllib.loads(result.stdout)  # the comments are TOML comments
    assert [run["name"] for run in printed["runs"]] == ["adam", "sgd"]
    adam = printed["runs"][0]["optimizer"]
    assert adam == {
        "name": "adam",
        "lr": 0.01,
        "betas": [0.9, 0.999],
        "eps": 1e-08,
        "weight_decay": 0.0,
        "amsgrad": False,
        "maximize": False,
    }
    assert printed["runs"][1]["optimizer"]["momentum"] == 0.0  # sgd's own defaults
    assert printed["runs"][1]["model"]["activation"] == {"name": "sigmoid"}  # a default table
    assert all(run["train"]["epochs"] == 5 for run in printed["runs"])
    # What check prints is itself an experiment file giving the same runs.
    again = nnrun.load_experiment(write(tmp_path / "printed", result.stdout))
    assert again.runs == nnrun.load_experiment(path, ["train.epochs=5"]).runs


def test_check_names_the_distribution_of_every_component(tmp_path, install_plugin):
    install_plugin("cube-plugin", cube_plugin(), {"cube": "cube_plugin"}, version="2.3")
    path = write(
        tmp_path, TWO_RUNS.replace("layers = [1, 4, 1]", 'layers = [1, 4, 1]\nactivation = "cube"')
    )
    result = invoke("check", path)
    assert result.exit_code == 0, result.output
    comments = [line for line in result.stdout.splitlines() if line.startswith("#   ")]
    assert "#   [model] activation 'cube' <- cube-plugin 2.3" in comments
    assert "#   [optimizer] 'sgd' <- nnrun " + nnrun.__version__ in comments
    assert "#   [optimizer] 'adam' <- nnrun " + nnrun.__version__ in comments
    assert len(comments) == len(set(comments))  # each component once, however many runs use it


def test_check_reports_a_bad_file_like_a_run_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("check", write(tmp_path, TWO_RUNS.replace("epochs = 2", "epochs = 0")))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "[train] epochs = 0" in result.stderr


# ------------------------------------------------------------------------------------------------
# nnrun plugins


def test_plugins_json_lists_components_with_hyperparameters_and_provenance():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert set(listing["components"]) == {
        "activations",
        "losses",
        "initializers",
        "optimizers",
        "schedulers",
        "solvers",
        "datasets",
        "metrics",
        "executors",
    }
    by_name = {(kind, c["name"]): c for kind, cs in listing["components"].items() for c in cs}
    adam = by_name["optimizers", "adam"]
    assert adam["hyperparameters"]["betas"] == [0.9, 0.999]
    assert adam["hyperparameters"]["eps"] == 1e-08 and adam["required"] == []
    assert by_name["schedulers", "step"]["required"] == ["step_size"]
    assert by_name["solvers", "quadratic_descent"]["required"] == ["a", "b", "c"]
    assert by_name["datasets", "csv"]["required"] == ["path"]
    assert (adam["distribution"], adam["version"]) == ("nnrun", nnrun.__version__)
    # Every component names the installed distribution that provides it: nnrun for the built-ins,
    # and whatever else is installed (an extension package such as nnrun-extra-optim) for its own.
    for c in by_name.values():
        assert importlib.metadata.version(c["distribution"]) == c["version"], c
    assert listing["failures"] == []


BROKEN = {
    "import": ({"broken_plugin": "raise ImportError('needs [libfoo]')"}, "ImportError"),
    "exit": ({"broken_plugin": "import sys\nsys.exit('bye')"}, "SystemExit"),
    "interrupt": ({"broken_plugin": "raise KeyboardInterrupt"}, "KeyboardInterrupt"),
    "hook": (
        {
            "broken_plugin": """
                import nnrun

                @nnrun.hookimpl
                def register_losses(register):
                    raise RuntimeError("no licence for [/opt/foo]")
            """
        },
        "RuntimeError",
    ),
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_plugins_exits_0_and_shows_a_broken_plugin_as_failed(install_plugin, how):
    modules, error_type = BROKEN[how]
    install_plugin("broken-plugin", modules, {"broken": "broken_plugin"}, version="0.3")
    odd_default = "self, scale: float = 1.0, clamp=abs"
    install_plugin("cube-plugin", cube_plugin(odd_default), {"cube": "cube_plugin"}, version="2.3")

    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    (failure,) = listing["failures"]
    assert failure["distribution"] == "broken-plugin" and failure["version"] == "0.3"
    assert failure["entry_point"] == "broken" and failure["error"].startswith(error_type)
    cube = next(c for c in listing["components"]["activations"] if c["name"] == "cube")
    assert (cube["distribution"], cube["version"]) == ("cube-plugin", "2.3")
    assert cube["hyperparameters"] == {"scale": 1.0, "clamp": repr(abs)}  # JSON has no functions
    assert any(c["name"] == "adam" for c in listing["components"]["optimizers"])

    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == [f"FAILED plugin 'broken' from broken-plugin 0.3: {failure['error']}"]


def test_plugins_json_stays_json_when_a_plugin_prints(install_plugin):
    source = """
        import nnrun
        print("loading chatty")

        @nnrun.hookimpl
        def register_losses(register):
            print("{registering}")
    """
    install_plugin("chatty-plugin", {"chatty_plugin": source}, {"chatty": "chatty_plugin"})
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failures"] == []
    assert "loading chatty" in result.stderr and "{registering}" in result.stderr


OTHER_ADAM = {
    "other_adam": """
        import nnrun

        class Adam(nnrun.Optimizer):
            def step(self):
                pass

        @nnrun.hookimpl
        def register_optimizers(register):
            register("adam", Adam)
    """
}


def test_plugins_lists_everything_and_shows_a_builtins_name_taken_by_a_plugin(install_plugin):
    install_plugin("other-adam", OTHER_ADAM, {"adam": "other_adam"}, version="0.9")
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["collisions"] == [
        {
            "kind": "optimizers",
            "name": "adam",
            "plain_name_picks": "nnrun:adam",
            "providers": [
                {
                    "distribution": "nnrun",
                    "version": nnrun.__version__,
                    "entry_point": "optimizers",
                    "qualified": "nnrun:adam",
                },
                {
                    "distribution": "other-adam",
                    "version": "0.9",
                    "entry_point": "adam",
                    "qualified": "other-adam:adam",
                },
            ],
        }
    ]
    names = {c["qualified"]: c["answers_to"] for c in listing["components"]["optimizers"]}
    assert names["nnrun:adam"] == ["adam", "nnrun:adam"]  # the built-in keeps the plain name
    assert names["other-adam:adam"] == ["other-adam:adam"]

    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    problems = [line for line in result.stdout.splitlines() if line.startswith("COLLISION")]
    assert problems == [
        f"COLLISION optimizer 'adam' is registered by nnrun {nnrun.__version__} (entry point "
        "'optimizers') and other-adam 0.9 (entry point 'adam'); 'adam' is the built-in, the "
        "others answer to 'other-adam:adam'"
    ]


@pytest.mark.parametrize(
    "name,provider", [("adam", "nnrun 0.1.0"), ("other-adam:adam", "other-adam 0.9")]
)
def test_check_of_an_experiment_using_a_taken_name_warns_once_and_says_which_it_uses(
    tmp_path, install_plugin, name, provider
):
    install_plugin("other-adam", OTHER_ADAM, {"adam": "other_adam"}, version="0.9")
    text = TWO_RUNS.replace('"adam"', f'"{name}"')
    assert f'"{name}"' in text
    result = invoke("check", write(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: ") == 1 and "'adam' stays nnrun's" in result.stderr
    assert f"'{name}' <- {provider}" in result.stdout


TYPO_HOOK = {
    "cube_plugin": """
        import nnrun

        @nnrun.hookimpl
        def register_activation(register):  # the hook is register_activations
            pass
    """
}


def test_a_misspelled_hook_is_a_warning_and_the_experiments_error_says_why(
    tmp_path, install_plugin
):
    install_plugin("cube-plugin", TYPO_HOOK, {"cube": "cube_plugin"}, version="2.3")
    result = invoke("check", write(tmp_path, TWO_RUNS))
    assert result.exit_code == 0, result.output  # the experiment does not need the plugin
    warning = (
        "warning: plugin 'cube' from cube-plugin 2.3 failed to load and was skipped: unknown hook "
        "'register_activation'; did you mean 'register_activations'? Hooks: register_activations,"
    )
    assert result.stderr.startswith(warning) and result.stderr.count("\n") == 1

    uses_cube = TWO_RUNS.replace("layers = [1, 4, 1]", 'layers = [1, 4, 1]\nactivation = "cube"')
    result = invoke("check", write(tmp_path, uses_cube))
    assert result.exit_code == 2, result.output
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: ") and "[model] activation: unknown activation 'cube'" in error
    assert "A plugin that failed to load may provide it: plugin 'cube' from cube-plugin" in error


@pytest.mark.parametrize("command", ["plugins", "check"])
def test_strict_plugins_makes_a_failure_a_one_line_error_of_every_command(
    tmp_path, install_plugin, command
):
    install_plugin("cube-plugin", TYPO_HOOK, {"cube": "cube_plugin"}, version="2.3")
    args = [command] if command == "plugins" else [command, write(tmp_path, TWO_RUNS)]
    result = CliRunner().invoke(main, [str(a) for a in args], env={"NNRUN_STRICT_PLUGINS": "1"})
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.startswith("Error: plugin 'cube' from cube-plugin 2.3 failed to load: ")
    assert result.stderr.count("\n") == 1


# ------------------------------------------------------------------------------------------------
# nnrun show and compare


@pytest.fixture(scope="module")
def two_run_dirs(tmp_path_factory):
    """TWO_RUNS run twice from the command line (the second with another seed), in a folder
    where the run directories are simply `a` and `b`: (folder, stdout of each run)."""
    folder = tmp_path_factory.mktemp("runs")
    path = write(folder, TWO_RUNS)
    before = Path.cwd()
    os.chdir(folder)
    try:
        outputs = [
            invoke(path, "--out", "a"),
            invoke(path, "--out", "b", "-o", "experiment.seed=5"),
        ]
    finally:
        os.chdir(before)
    assert all(result.exit_code == 0 for result in outputs), outputs[0].output
    return folder, [result.stdout for result in outputs]


def test_show_prints_the_same_table_as_the_run(two_run_dirs, monkeypatch):
    folder, stdouts = two_run_dirs
    monkeypatch.chdir(folder)
    result = invoke("show", "a")
    assert result.exit_code == 0 and result.stdout == stdouts[0]
    result = invoke("show", "a", "--json")
    assert json.loads(result.stdout) == json.loads((folder / "a" / "summary.json").read_text())


def test_compare_shows_every_run_of_every_directory(two_run_dirs, monkeypatch):
    folder, _ = two_run_dirs
    monkeypatch.chdir(folder)
    result = invoke("compare", "a", "b")
    assert result.exit_code == 0, result.output
    runs_table, pairs_table = result.stdout.split("final_val_loss: a − b (lower is better)")
    # one seed per run: a's two runs share theirs (paired, n = 1), b has another (unpaired)
    assert pairs_table.count("1 paired") == 2 and pairs_table.count("1 vs 1, unpaired") == 4
    rows = {line.split("│")[1].strip(): line for line in runs_table.splitlines() if "│" in line}
    assert sorted(rows) == ["a: adam", "a: sgd", "b: adam", "b: sgd"]
    for name in ("a", "b"):
        for run in json.loads((folder / name / "summary.json").read_text())["runs"]:
            row = rows[f"{name}: {run['name']}"]
            assert f"{run['final_loss']:.6g}" in row and f"{run['final_val_loss']:.6g}" in row


@pytest.mark.parametrize("command", ["show", "compare"])
@pytest.mark.parametrize(
    "summary,message",
    [
        (None, "no summary.json"),
        ('{"runs": [', "summary.json: cannot read it"),
        ('{"accuracy": 0.9}', "summary.json: not an nnrun summary"),
    ],
)
def test_show_and_compare_reject_a_directory_without_results(tmp_path, command, summary, message):
    if summary is not None:
        (tmp_path / "summary.json").write_text(summary)
    result = invoke(command, tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_check_accepts_every_example(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("check", example)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# {example}: ") and "all valid" in result.stdout


def test_a_plugin_default_that_toml_cannot_hold_does_not_break_check(tmp_path, install_plugin):
    odd_default = "self, scale: float = 1.0, clamp=abs"
    install_plugin("cube-plugin", cube_plugin(odd_default), {"cube": "cube_plugin"})
    path = write(tmp_path, TWO_RUNS.replace("[1, 4, 1]", '[1, 4, 1]\nactivation = "cube"'))
    result = invoke("check", path)
    assert result.exit_code == 0, result.output


def test_a_narrow_terminal_wraps_the_plugin_listing_instead_of_cutting_names_off():
    result = CliRunner().invoke(main, ["plugins"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
