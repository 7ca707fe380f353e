"""What the light commands import: `--help`, `--version`, `show` and `compare` never import
torch (nor matplotlib or altair), whatever the run directory holds; each is run in a fresh
interpreter and asked afterwards. `check` validates by building every component, so it does
import torch (and says so in the README); nothing here is timed (benchmarks/startup.py is)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnrun.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

HEAVY = ("torch", "matplotlib", "altair")

PROBE = """
import json, sys
from nnrun.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps([name for name in {heavy!r} if name in sys.modules]), file=sys.stderr)
"""


def heavy_imports(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "roots"
    result = CliRunner().invoke(main, [str(EXAMPLES / "roots.toml"), "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["check", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    assert heavy_imports(*args) == []


def test_show_imports_nothing_heavy(run_dir):
    assert heavy_imports("show", str(run_dir)) == []


def test_compare_imports_nothing_heavy(run_dir):
    assert heavy_imports("compare", str(run_dir), str(run_dir)) == []


def test_check_imports_torch_to_build_the_components():
    assert "torch" in heavy_imports("check", str(EXAMPLES / "roots.toml"))
