"""Checks of `[report]` that need more than its types: an extra it relies on is installed."""

from __future__ import annotations

import importlib.util

from nnrun.config.schema import RunConfig
from nnrun.config.validate import Located, line_for


def report_problems(text: str, run: RunConfig) -> list[Located]:
    """`[report] tensorboard = true` without the tensorboard package, with its line; else []."""
    if run.report.tensorboard and importlib.util.find_spec("tensorboard") is None:
        here = line_for(text, ("report", "tensorboard"), run.name)
        return [
            (
                here,
                "[report] tensorboard = true needs TensorBoard: install the extra with "
                "pip install 'nnrun[tensorboard]'",
            )
        ]
    return []
