"""The plugin author's guide works as written: the example package in examples/plugin installs with
pip, nnrun discovers it through its entry point, and its tests pass: the conformance kit, and an
experiment run with the plugin beside the built-ins (the README shows both verbatim)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.mark.slow  # pip-installs a package, ~9 s
def test_example_plugin_package_installs_and_is_discovered(tmp_path):
    source, site = tmp_path / "nnrun-signum", tmp_path / "site"
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__")
    )  # pip builds in place
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run(
        [sys.executable, "-m", "nnrun.cli", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    optimizers = {c["name"]: c for c in json.loads(listing.stdout)["components"]["optimizers"]}
    assert optimizers["signum"]["distribution"] == "nnrun-signum"
    assert optimizers["signum"]["hyperparameters"] == {"lr": 0.001, "momentum": 0.9}

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_the_guide_shows_the_experiment_test_verbatim():
    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    test = (PACKAGE / "tests" / "test_signum_in_an_experiment.py").read_text()
    assert f"# tests/test_signum_in_an_experiment.py\n{test}```" in readme
