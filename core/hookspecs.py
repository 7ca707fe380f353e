"""The hooks a plugin implements: one per kind of component, each given a `register` callback.

A plugin module implements any of these with `@nnrun.hookimpl` and calls
`register(name, component_class)` once per component it provides.

Every hook is called each time nnrun builds a registry (`nnrun.load_registry()`): once per command
that needs components, and once in each worker process of `--jobs`, after every plugin has been
imported and before any experiment file is read. Whatever a hook prints goes to stderr. If a
plugin's import or one of its hooks raises anything, a hook returns a value, or registers something
that is not a subclass of the kind's base class, that plugin is skipped whole (what it registered
already is forgotten), reported once as failed, and everything else loads; `NNRUN_STRICT_PLUGINS=1`
makes that an error instead. A plugin module may declare `nnrun_api = PLUGIN_API`, the plugin API it
was written for; nnrun skips one written for another. Names follow `nnrun.registry`'s rules: each
component answers to `DIST:NAME` too, and a built-in's name stays the built-in's.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "nnrun"
#: The plugin API these hooks make up. A plugin module may declare the one it was written for
#: (`nnrun_api = 1`); one this nnrun does not support is skipped with a message.
PLUGIN_API = 1
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[str, type], None]


@hookspec
def register_activations(register: Register) -> None:
    """Register activation classes: `forward(x)` and `backward(x, y, grad_y) -> grad_x`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    activation, with `cls` a subclass of `nnrun.Activation`, built as `cls(**hyperparameters)`.
    Optional: `backward_from_output(y, grad_y) -> grad_x`, for a derivative that is a function of
    the output alone; the model then keeps only the output for backward and calls it instead.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register loss classes: `forward(pred, target) -> scalar`, `backward(pred, target) -> grad`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    loss, with `cls` a subclass of `nnrun.Loss`, built as `cls(**hyperparameters)`; `forward`
    returns a 0-d tensor (the mean over the batch) and `backward` its gradient, 1/N included.
    Optional: `forward_backward(pred, target) -> (loss, grad)`, what the trainer calls, to share
    work between the two; the base class's calls `forward` then `backward`.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_initializers(register: Register) -> None:
    """Register weight initializers: `initialize(weight, bias)` fills both tensors in place.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    initializer, with `cls` a subclass of `nnrun.Initializer`, built as `cls(**hyperparameters)`.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Register `nnrun.Optimizer` subclasses, built as `Cls(params, **hyperparameters)`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    optimizer, with `cls` a subclass of `nnrun.Optimizer` whose `step()` reads
    `self.hyperparameters` and keeps its state in `self.state[param]`. A class attribute
    `reference` (e.g. "torch.optim.Adam") makes `nnrun verify` compare its steps with that one.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_schedulers(register: Register) -> None:
    """Register `nnrun.Scheduler` subclasses, built as `Cls(optimizer, **hyperparameters)`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    scheduler, with `cls` a subclass of `nnrun.Scheduler` (`lr_at(epoch)` or `step(metric)`).
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_solvers(register: Register) -> None:
    """Register `nnrun.Solver` subclasses, built as `Cls(**hyperparameters)`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    solver, with `cls` a subclass of `nnrun.Solver` whose `solve(optimizer)` nnrun calls.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register `nnrun.Dataset` subclasses, built as `Cls(**hyperparameters)` from `[data]`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    dataset, with `cls` a subclass of `nnrun.Dataset` whose `load(context)` returns a
    `nnrun.LoadedData`; `[data] kind = name` picks it.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register `nnrun.Metric` subclasses, built as `Cls(**hyperparameters)`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    metric, with `cls` a subclass of `nnrun.Metric` whose `compute(pred, target)` returns a float;
    `[train] metrics` names it.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register `nnrun.Executor` subclasses, built as `Cls(**hyperparameters)` from `[executor]`.

    Called once per registry, when nnrun loads its plugins. Call `register(name, cls)` once per
    executor, with `cls` a subclass of `nnrun.Executor` whose `execute(tasks, context)` runs
    each `nnrun.executor.Task` somewhere and yields its outcome; `--executor name` picks it.
    The hook returns None. If it raises, returns a value or registers anything else, the plugin
    fails and is skipped whole.
    """


#: Kind of component -> name of the hook that registers it.
HOOKS: dict[str, str] = {
    "activations": "register_activations",
    "losses": "register_losses",
    "initializers": "register_initializers",
    "optimizers": "register_optimizers",
    "schedulers": "register_schedulers",
    "solvers": "register_solvers",
    "datasets": "register_datasets",
    "metrics": "register_metrics",
    "executors": "register_executors",
}
