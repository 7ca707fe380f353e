"""The README's table names every optimizer the package registers, with each hyperparameter."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from nnrun_extra_optim import OPTIMIZERS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_readme_lists_every_optimizer_with_its_hyperparameters(name):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"no row for {name} in the README's table"
    parameters = list(inspect.signature(OPTIMIZERS[name].__init__).parameters)[2:]
    missing = [p for p in parameters if p not in rows[0]]
    assert not missing, f"{name}: the README's row lacks {missing}"
