"""The command line's plugin switches (`--no-plugins` on every command, the environment variables)
and its startup: help and version import neither torch nor any plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from bad_experiments import BASE
from click.testing import CliRunner
from plugin_sources import THIRD_PARTY_OPTIMIZER

from nnrun.cli import main

#: Restored after each invocation: `--no-plugins` sets it in the process, for the workers.
CLEAN = {"NNRUN_NO_PLUGINS": None, "NNRUN_DISABLE_PLUGINS": None}


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env={**CLEAN, **(env or {})})


def listed(result):
    assert result.exit_code == 0, result.output
    components = json.loads(result.stdout)["components"]
    return {c["distribution"] for kind in components.values() for c in kind}


@pytest.mark.parametrize(
    "args",
    [["--no-plugins", "plugins", "--json"], ["plugins", "--json", "--no-plugins"]],
)
def test_no_plugins_before_or_after_the_command_lists_the_builtins_alone(install_plugin, args):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    assert {"nnrun", "nnrun-signsgd"} <= listed(invoke("plugins", "--json"))
    assert listed(invoke(*args)) == {"nnrun"}


def test_disable_plugins_leaves_a_distribution_out_of_every_command(install_plugin):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    assert "nnrun-signsgd" in listed(invoke("plugins", "--json"))
    result = invoke("plugins", "--json", env={"NNRUN_DISABLE_PLUGINS": "nnrun_signsgd"})
    assert "nnrun" in listed(result) and "nnrun-signsgd" not in listed(result)


def test_disabling_the_builtins_is_exit_status_2(tmp_path):
    (tmp_path / "e.toml").write_text(BASE)
    result = invoke("check", tmp_path / "e.toml", env={"NNRUN_DISABLE_PLUGINS": "nnrun"})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: NNRUN_DISABLE_PLUGINS names 'nnrun', the built-ins")


MARKING = """
import os
with open(os.environ["NNRUN_TEST_MARKS"], "a") as marks:
    marks.write(f"{os.getpid()}\\n")
"""

SWEEP = BASE + '\n[sweep]\n"optimizer.lr" = [0.01, 0.02]\n'


@pytest.mark.parametrize("no_plugins", [False, True])
def test_jobs_workers_load_the_parents_plugins(install_plugin, tmp_path, monkeypatch, no_plugins):
    install_plugin("nnrun-marking", {"nnrun_marking": MARKING}, {"m": "nnrun_marking"})
    marks = tmp_path / "marks"
    monkeypatch.setenv("NNRUN_TEST_MARKS", str(marks))
    (tmp_path / "e.toml").write_text(SWEEP)
    flag = ["--no-plugins"] if no_plugins else []
    result = invoke(*flag, tmp_path / "e.toml", "--jobs", 2, "-q", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    importers = set(marks.read_text().split()) if marks.exists() else set()
    # without the flag the parent and its workers (one or two: an idle one is reused) import the
    # plugin; with it, none of them does
    assert len(importers) == 0 if no_plugins else len(importers) >= 2


PROBE = """
import runpy, sys
sys.argv = ["nnrun", *sys.argv[1:]]
try:
    runpy.run_module("nnrun", run_name="__main__")
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m in ("torch", "pluggy") or m.startswith(("nnrun_", "nnrun.plugins"))))
"""


def heavy_imports(site, args):
    """The heavy modules (torch, pluggy, plugins) a fresh `nnrun ARGS` imported, with `site` installed."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["check", "--help"], ["plugins", "--help"], ["-h"]]
)
def test_help_and_version_import_neither_torch_nor_any_plugin(install_plugin, args):
    site = install_plugin("nnrun-heavy", {"nnrun_heavy": "import torch"}, {"h": "nnrun_heavy"})
    assert heavy_imports(site, args) == "[]"


def test_listing_the_plugins_imports_them(install_plugin):
    """The check above can fail: `nnrun plugins` does import the plugin, and with it torch."""
    site = install_plugin("nnrun-heavy", {"nnrun_heavy": "import torch"}, {"h": "nnrun_heavy"})
    imported = heavy_imports(site, ["plugins", "--json"])
    assert "'nnrun_heavy'" in imported and "'torch'" in imported


def test_plugins_shows_collisions_with_what_the_plain_name_picks(install_plugin):
    signsgd_as = THIRD_PARTY_OPTIMIZER.replace('"signsgd"', '"{}"')
    install_plugin("nnrun-a", {"lamb_a": signsgd_as.format("lamb")}, {"lamb": "lamb_a"})
    install_plugin("nnrun-b", {"lamb_b": signsgd_as.format("lamb")}, {"lamb": "lamb_b"})
    install_plugin("nnrun-c", {"adam_c": signsgd_as.format("adam")}, {"adam": "adam_c"})
    listing = json.loads(invoke("plugins", "--json").stdout)
    picks = {c["name"]: c["plain_name_picks"] for c in listing["collisions"]}
    assert picks == {"adam": "nnrun:adam", "lamb": None}
    names = {c["qualified"]: c["answers_to"] for c in listing["components"]["optimizers"]}
    assert names["nnrun-a:lamb"] == ["nnrun-a:lamb"] and names["nnrun:adam"] == [
        "adam",
        "nnrun:adam",
    ]
    text = invoke("plugins").stdout
    assert "'lamb' is ambiguous: write 'nnrun-a:lamb' or 'nnrun-b:lamb'" in text
    assert "'adam' is the built-in, the others answer to 'nnrun-c:adam'" in text


COUNTING_HOOK = """
import os

import nnrun

@nnrun.hookimpl
def register_losses(register):
    with open(os.environ["NNRUN_TEST_MARKS"], "a") as marks:
        marks.write("called\\n")
"""


@pytest.mark.parametrize("command", ["plugins", "check", "run"])
def test_a_command_loads_the_plugins_once(install_plugin, tmp_path, monkeypatch, command):
    install_plugin("nnrun-counting", {"nnrun_counting": COUNTING_HOOK}, {"c": "nnrun_counting"})
    marks = tmp_path / "marks"
    monkeypatch.setenv("NNRUN_TEST_MARKS", str(marks))
    (tmp_path / "e.toml").write_text(BASE)
    args = {
        "plugins": ["plugins"],
        "check": ["check", tmp_path / "e.toml"],
        "run": ["run", tmp_path / "e.toml", "-q", "--out", tmp_path / "run"],
    }[command]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert marks.read_text().splitlines() == ["called"]
