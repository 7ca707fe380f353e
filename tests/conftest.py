"""Shared helpers: fake installed distributions for entry-point tests, and example paths."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _no_stop_left_requested(monkeypatch):
    """A test that asks for a stop (Ctrl-C) and fails before clearing it must not stop the next
    one: the flag is process-wide, and a worker runs many tests."""
    from nnrun.experiment.train import StopFlag

    monkeypatch.setattr(StopFlag, "requested", False)


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a throwaway distribution declaring `nnrun` entry points, visible to
    importlib.metadata for this test only (a dist-info folder on sys.path, as pip would leave)."""

    def install(
        distribution: str,
        modules: dict[str, str],
        entry_points: dict[str, str],
        version: str = "1.0",
    ) -> Path:
        site = tmp_path / f"site-{distribution}"
        site.mkdir()
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[nnrun]\n{lines}")
        monkeypatch.syspath_prepend(str(site))
        for module in modules:
            sys.modules.pop(module, None)
        return site

    return install
