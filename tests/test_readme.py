"""The README is part of the product: every hook, built-in component, experiment-file key and
command it should document is in it (datasette's documentation meta-tests, applied here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nnrun
from nnrun.cli import main
from nnrun.config.distributed import DistributedSection
from nnrun.config.schema import (
    DataSection,
    ExperimentSection,
    ModelSection,
    PruneSection,
    SplitSection,
    TrainSection,
    TuneSection,
)
from nnrun.hookspecs import HOOKS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("hook", sorted(HOOKS.values()))
def test_every_hook_is_in_the_hook_reference(hook):
    assert re.search(rf"^\| `{hook}` \|", README, re.MULTILINE), hook


def test_every_builtin_component_is_documented():
    registry = nnrun.load_registry()
    missing = [
        f"{c.kind}:{c.name}"
        for c in registry.components()
        if c.provider.distribution == "nnrun" and f"`{c.name}`" not in README
    ]
    assert not missing


@pytest.mark.parametrize(
    "table,section",
    [
        ("experiment", ExperimentSection),
        ("data", DataSection),
        ("model", ModelSection),
        ("train", TrainSection),
        ("data.split", SplitSection),
        ("tune", TuneSection),
        ("tune.prune", PruneSection),
        ("distributed", DistributedSection),
    ],
)
def test_every_experiment_file_key_is_documented(table, section):
    for key in section.model_fields:
        assert f"`{key}`" in README, f"[{table}] {key}"


def test_every_command_and_option_is_documented():
    for name, command in main.commands.items():
        if name != "run":
            assert f"nnrun {name}" in README, name
        for param in command.params:
            for option in param.opts:
                if option.startswith("-") and option not in ("-h", "--help"):
                    assert option in README, f"{name} {option}"


def test_quick_start_is_exactly_two_commands_and_ci_runs_the_second():
    start = README.index("## Quick start")
    section = README[start : README.index("\n## ", start + 1)]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "examples/x_squared.toml" in commands[0] and "pytest" in commands[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_plugin_guide_shows_the_example_package_verbatim():
    package = Path(__file__).resolve().parents[1] / "examples" / "plugin"
    module = (package / "nnrun_signum.py").read_text()
    assert f"# nnrun_signum.py\n{module}" in README
    assert (package / "tests" / "test_signum.py").read_text() in README
    for line in ("[project.entry-points.nnrun]", 'signum = "nnrun_signum"'):
        assert line in (package / "pyproject.toml").read_text() and line in README
