"""nnrun: small neural networks and gradient-descent solvers with hand-written backward passes,
where every activation, loss, initializer, optimizer, scheduler and solver is a plugin.

Plugin authors need only `import nnrun` and `@nnrun.hookimpl`. The rest of the public API is loaded
on first use, so that `import nnrun` stays cheap for the CLI and for plugins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nnrun.errors import (
    ConfigError,
    DuplicateComponentError,
    NnrunError,
    PluginLoadWarning,
    UnknownComponentError,
)
from nnrun.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

# Public name -> module that defines it (imported lazily: these pull in torch).
_LAZY = {
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
    "Descent": "nnrun.solver",
    "Registry": "nnrun.registry",
    "PluginHost": "nnrun.loading",
    "load_registry": "nnrun.loading",
    "load_experiment": "nnrun.config",
    "run_experiment": "nnrun.runner",
}

__all__ = [
    "ConfigError",
    "DuplicateComponentError",
    "NnrunError",
    "PluginLoadWarning",
    "UnknownComponentError",
    "__version__",
    "hookimpl",
    "hookspec",
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


if TYPE_CHECKING:
    from nnrun.components import Activation, Initializer, Loss
    from nnrun.config import load_experiment
    from nnrun.layers import Linear
    from nnrun.loading import PluginHost, load_registry
    from nnrun.model import MLP
    from nnrun.optimizer import Optimizer
    from nnrun.parameter import Parameter
    from nnrun.registry import Registry
    from nnrun.runner import run_experiment
    from nnrun.scheduler import Scheduler
    from nnrun.solver import Descent, Solver, SolveResult
