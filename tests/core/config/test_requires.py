"""`[experiment] requires`: an experiment refuses to start without the distributions it needs."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from bad_experiments import BASE, edit
from plugin_sources import THIRD_PARTY_OPTIMIZER

import nnrun
from nnrun.errors import ConfigError


def write(tmp_path, requires):
    path = tmp_path / "e.toml"
    path.write_text(edit(BASE, "seed = 0", f"seed = 0\nrequires = {json.dumps(requires)}"))
    return path


@pytest.mark.parametrize(
    "requires,recorded",
    [
        ([], {}),
        (["nnrun>=0.1"], {"nnrun>=0.1": nnrun.__version__}),
        (["pluggy", "click>=8"], {"pluggy": version("pluggy"), "click>=8": version("click")}),
        # a marker that does not apply here: skipped, recorded as not installed
        (
            ['nnrun-not-installed>=1; python_version < "3"'],
            {'nnrun-not-installed>=1; python_version < "3"': None},
        ),
    ],
)
def test_met_requirements_load_and_their_versions_go_into_environment_json(
    tmp_path, requires, recorded
):
    experiment = nnrun.load_experiment(write(tmp_path, requires))
    nnrun.run_experiment(experiment, tmp_path / "run")
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["requires"] == recorded


def test_every_unmet_requirement_is_reported_with_its_pip_command(tmp_path):
    path = write(tmp_path, ["nnrun-a>=0.2", "nnrun>=99", "pluggy"])
    with pytest.raises(ConfigError) as info:
        nnrun.load_experiment(path)
    assert str(info.value).splitlines()[1:] == [
        f"  - {path}:4: [experiment] requires 'nnrun-a>=0.2', which is not installed: "
        "pip install 'nnrun-a>=0.2'",
        f"  - {path}:4: [experiment] requires 'nnrun>=99', and nnrun 0.1.0 is installed: "
        "pip install -U 'nnrun>=99'",
    ]


def test_an_unmet_requirement_is_reported_instead_of_the_unknown_component_it_causes(tmp_path):
    path = write(tmp_path, ["nnrun-signsgd"])
    path.write_text(path.read_text().replace('name = "sgd"', 'name = "signsgd"'))
    with pytest.raises(ConfigError) as info:
        nnrun.load_experiment(path)
    assert str(info.value) == (
        f"{path}:4: [experiment] requires 'nnrun-signsgd', which is not installed: "
        "pip install 'nnrun-signsgd'"
    )


@pytest.mark.parametrize(
    "variable,value,says",
    [
        ("NNRUN_DISABLE_PLUGINS", "NNRUN_SignSGD", "and NNRUN_DISABLE_PLUGINS disables it"),
        ("NNRUN_NO_PLUGINS", "1", "and --no-plugins (NNRUN_NO_PLUGINS=1) leaves it out"),
    ],
)
def test_a_required_plugin_that_is_switched_off_is_unmet(
    install_plugin, monkeypatch, tmp_path, variable, value, says
):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    path = write(tmp_path, ["nnrun-signsgd>=1"])
    assert nnrun.load_experiment(path).runs  # installed and loaded: met
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        nnrun.load_experiment(path)
    assert str(info.value) == f"{path}:4: [experiment] requires 'nnrun-signsgd>=1', {says}"
