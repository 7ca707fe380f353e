"""nnrun: small neural networks and gradient-descent solvers with hand-written backward passes,
where every activation, loss, initializer, optimizer, scheduler, solver, dataset, metric and
executor is a plugin.

Plugin authors need only `import nnrun` and `@nnrun.hookimpl`. The rest of the public API, the hook
markers included (pluggy), is loaded on first use, so that `import nnrun` stays cheap for the CLI
(`nnrun --help` imports no more than the exceptions) and for plugins.
"""

from __future__ import annotations

import importlib
from typing import Any

from nnrun.errors import (
    ConfigError,
    DuplicateComponentError,
    NnrunError,
    PluginError,
    PluginLoadError,
    PluginLoadWarning,
    UnknownComponentError,
)

__version__ = "0.1.0"

# Public name -> module that defines it (imported lazily: these pull in torch).
_LAZY = {
    "hookimpl": "nnrun.hookspecs",
    "hookspec": "nnrun.hookspecs",
    "PLUGIN_API": "nnrun.hookspecs",
    "Parameter": "nnrun.parameter",
    "Linear": "nnrun.layers",
    "MLP": "nnrun.model",
    "Activation": "nnrun.components",
    "Loss": "nnrun.components",
    "Initializer": "nnrun.components",
    "Optimizer": "nnrun.optimizer",
    "Scheduler": "nnrun.scheduler",
    "Solver": "nnrun.solver",
    "SolveResult": "nnrun.solver",
    "BatchSolveResult": "nnrun.solver",
    "solve_quadratics": "nnrun.plugins.solvers",
    "Dataset": "nnrun.dataset",
    "DataContext": "nnrun.dataset",
    "LoadedData": "nnrun.dataset",
    "Metric": "nnrun.metric",
    "Executor": "nnrun.executor",
    "Descent": "nnrun.solver",
    "InnerOptimizer": "nnrun.factory",
    "Registry": "nnrun.registry",
    "PluginHost": "nnrun.loading",
    "load_registry": "nnrun.loading",
    "load_experiment": "nnrun.config",
    "run_experiment": "nnrun.experiment.runner",
}

__all__ = [
    "ConfigError",
    "DuplicateComponentError",
    "NnrunError",
    "PluginError",
    "PluginLoadError",
    "PluginLoadWarning",
    "UnknownComponentError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nnrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
