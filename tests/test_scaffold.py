"""`nnrun new-plugin`: a package of every kind, whose component passes `nnrun verify`; the slow
round trip installs each into a fresh venv and runs its own tests, `nnrun plugins` and
`nnrun verify` there."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.loading import PluginHost
from nnrun.scaffold import KINDS, names, new_plugin
from nnrun.verify import verify

ROOT = Path(__file__).resolve().parents[1]


def load_generated(package: Path, module: str):
    """Import the generated module from its src/ folder, as an install would make it importable."""
    spec = importlib.util.spec_from_file_location(module, package / "src" / module / "__init__.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generated_component_passes_verify_and_the_package_is_complete(kind, tmp_path):
    distribution = f"nnrun-demo-{kind}"
    package = new_plugin(distribution, kind, tmp_path / distribution)
    module, name = f"nnrun_demo_{kind}", f"demo_{kind}"
    files = {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()}
    assert files == {
        "pyproject.toml",
        "README.md",
        ".github/workflows/test.yml",
        f"src/{module}/__init__.py",
        f"tests/test_{module}.py",
    }
    project = tomli.loads((package / "pyproject.toml").read_text())
    assert project["project"]["name"] == distribution
    assert project["project"]["version"] == "0.1.0"
    assert project["project"]["dependencies"] == ["nnrun>=0.1"]
    assert project["project"]["entry-points"]["nnrun"] == {name: module}
    workflow = (package / ".github/workflows/test.yml").read_text()
    assert "python -m pytest" in workflow and f"nnrun verify {distribution}" in workflow
    assert "${{ matrix.python-version }}" in workflow
    test = (package / f"tests/test_{module}.py").read_text()
    assert f"from nnrun.testing import {KINDS[kind][1]}" in test
    assert f"nnrun verify {distribution}" in (package / "README.md").read_text()

    plugin = load_generated(package, module)
    assert plugin.nnrun_api == 1
    host = PluginHost()
    host.load_entry_points(strict=True, distribution="nnrun")  # a nested spec may name a built-in
    host.register(plugin, name=module)
    (report,) = verify(f"{KINDS[kind][0]}:{name}", registry=nnrun.load_registry(host))
    assert report.passed, [(r.check, r.message) for r in report.results if not r.passed]
    assert len(report.results) >= 2


def test_names_are_derived_from_the_distribution_name():
    assert names("Nnrun_Fancy.SGD") == {
        "distribution": "nnrun-fancy-sgd",
        "module": "nnrun_fancy_sgd",
        "name": "fancy_sgd",
        "cls": "FancySgd",
        "title": "Fancy Sgd",
    }
    assert names("swish")["name"] == "swish"  # no nnrun- prefix to drop


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-plugin", "nnrun foo"], "'nnrun foo' is not a distribution name"),
        (["new-plugin", "nnrun-"], "not a distribution name"),
        (["new-plugin", "nnrun"], "would shadow another package"),
        (["new-plugin", "3d-things"], "cannot be imported"),
        (["new-plugin", "nnrun-x", "--kind", "optimiser"], "'optimiser' is not one of"),
    ],
)
def test_bad_names_and_kinds_are_bad_usage(args, message, tmp_path):
    result = CliRunner().invoke(main, [*args, "--dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_refuses_a_directory_that_is_not_empty_and_writes_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["new-plugin", "nnrun-x", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already exists and is not an empty directory" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_writes_into_an_empty_directory_and_says_what_to_run_next(tmp_path):
    result = CliRunner().invoke(
        main, ["new-plugin", "nnrun-x", "--kind", "loss", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0 and f'pip install -e "{tmp_path}[test]"' in result.stdout
    assert "class X(nnrun.Loss)" in (tmp_path / "src/nnrun_x/__init__.py").read_text()


@pytest.mark.slow
def test_every_kind_installs_into_a_fresh_venv_and_passes_its_own_tests(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, nnrun_command = venv / "bin" / "python", venv / "bin" / "nnrun"
    packages = [new_plugin(f"nnrun-trip-{kind}", kind, tmp_path / kind) for kind in sorted(KINDS)]
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, str(ROOT)], check=True)  # not editable: the templates as package data
    subprocess.run([*pip, *(f"{p}[test]" for p in packages)], check=True)
    env = {**os.environ, "NNRUN_STRICT_PLUGINS": "1"}
    env.pop("PYTHONPATH", None)
    listing = subprocess.run(
        [str(nnrun_command), "plugins", "--json"], env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    components = json.loads(listing.stdout)["components"]
    for kind, package in zip(sorted(KINDS), packages):
        registry_kind = KINDS[kind][0]
        assert f"trip_{kind}" in {c["name"] for c in components[registry_kind]}
        tests = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=package,
            env=env,
            capture_output=True,
            text=True,
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        verified = subprocess.run(
            [str(nnrun_command), "verify", f"nnrun-trip-{kind}", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["passed"]
