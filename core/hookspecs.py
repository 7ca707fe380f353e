"""The hooks a plugin implements: one per kind of component, each given a `register` callback.

A plugin module implements any of these with `@nnrun.hookimpl` and calls
`register(name, component_class)` once per component it provides.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "nnrun"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[str, type], None]


@hookspec
def register_activations(register: Register) -> None:
    """Register activation classes: `forward(x)` and `backward(x, y, grad_y) -> grad_x`."""


@hookspec
def register_losses(register: Register) -> None:
    """Register loss classes: `forward(pred, target) -> scalar`, `backward(pred, target) -> grad`."""


@hookspec
def register_initializers(register: Register) -> None:
    """Register weight initializers: `initialize(weight, bias)` fills both tensors in place."""


@hookspec
def register_optimizers(register: Register) -> None:
    """Register `nnrun.Optimizer` subclasses, built as `Cls(params, **hyperparameters)`."""


@hookspec
def register_schedulers(register: Register) -> None:
    """Register `nnrun.Scheduler` subclasses, built as `Cls(optimizer, **hyperparameters)`."""


@hookspec
def register_solvers(register: Register) -> None:
    """Register `nnrun.Solver` subclasses, built as `Cls(**hyperparameters)`."""


#: Kind of component -> name of the hook that registers it.
HOOKS: dict[str, str] = {
    "activations": "register_activations",
    "losses": "register_losses",
    "initializers": "register_initializers",
    "optimizers": "register_optimizers",
    "schedulers": "register_schedulers",
    "solvers": "register_solvers",
}
