"""`[executor]`: where the runs execute, for the experiment as a whole (not per run).

`[executor] name` picks an executor plugin (`local` by default) and the table's other keys are its
hyperparameters, checked like any component's; `--executor NAME` sets the name (a different one
starts its table from the defaults, as for any component), `-o executor.KEY=VALUE` a key. It is
written to config.toml, so `nnrun resume` continues on the same executor, but it is no part of
what a resume compares: the same runs may continue elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from nnrun.config.compose import Override, set_path
from nnrun.config.validate import Located, line_for
from nnrun.errors import NnrunError
from nnrun.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

EXECUTOR, DEFAULT_EXECUTOR = "executor", "local"


def executor_spec(
    text: str, overrides: Sequence[Override], registry: Registry, chosen: str | None = None
) -> tuple[dict[str, Any] | None, list[Located]]:
    """The executor's spec (name and every hyperparameter, defaults filled in) from the file's
    `[executor]` table (`text` parses: `compose` read it first), `--executor` (`chosen`) and the
    `executor.` overrides; or None and the problems, each with its line."""
    from nnrun.config.resolve import Problem, _checked

    table = tomllib.loads(text).get(EXECUTOR, {})
    if not isinstance(table, dict):
        where = line_for(text, (EXECUTOR,))
        return None, [(where, f'[{EXECUTOR}] is a table, e.g. [{EXECUTOR}] name = "ray"')]
    document: dict[str, Any] = {EXECUTOR: {"name": DEFAULT_EXECUTOR, **table}}
    if chosen is not None:
        set_path(document, (EXECUTOR, "name"), chosen)
    for override in overrides:
        if override.path[0] == EXECUTOR:
            set_path(document, override.path, override.value)
    spec = document[EXECUTOR]
    name = spec.get("name")
    missing = _missing_package(registry, name) if isinstance(name, str) else None
    if missing:
        return None, [(line_for(text, (EXECUTOR, "name")), missing)]
    problems: list[Problem] = []
    filled = _checked(registry, "executors", spec, f"[{EXECUTOR}]", (EXECUTOR,), problems)
    return filled, [(line_for(text, loc), message) for loc, message in problems]


def _missing_package(registry: Registry, name: str) -> str | None:
    """`--executor ray needs Ray: pip install "nnrun[ray]"` when its package is not installed."""
    try:
        cls = registry.executors[name]
    except NnrunError:
        return None  # reported with the hyperparameters' problems
    if cls.requires is None:
        return None
    module, what, extra = cls.requires
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f'--executor {name} needs {what}: pip install "nnrun[{extra}]"'
