"""Meta-tests in the manner of datasette's: every hook is documented and every hook is tested.

`EXAMPLES` holds, for each hook, a component registered through it and the arguments nnrun builds
it with; adding a hook without an entry here fails `test_every_hook_has_an_example`, and
`tests/test_readme.py::test_every_hook_is_in_the_hook_reference` fails for one without a README row.
"""

from __future__ import annotations

import pytest
import torch

import nnrun
from nnrun import hookspecs
from nnrun.factory import build
from nnrun.hookspecs import HOOKS


class Cube(nnrun.Activation):
    def forward(self, x):
        return x**3

    def backward(self, x, y, grad_y):
        return 3 * x**2 * grad_y


class Absolute(nnrun.Loss):
    def forward(self, pred, target):
        return (pred - target).abs().mean()

    def backward(self, pred, target):
        return (pred - target).sign() / pred.numel()


class Zeros(nnrun.Initializer):
    def initialize(self, weight, bias):
        weight.zero_()
        bias.zero_()


class Still(nnrun.Optimizer):
    def step(self):
        pass


class Halving(nnrun.Scheduler):
    def lr_at(self, epoch):
        return self.base_lr * 0.5**epoch


class Nothing(nnrun.Solver):
    pass


class Empty(nnrun.Dataset):
    pass


class Count(nnrun.Metric):
    def compute(self, pred, target):
        return float(pred.numel())


class Nowhere(nnrun.Executor):
    pass


def param():
    return [nnrun.Parameter(torch.zeros(1))]


#: hook -> (the component it registers, a factory of the arguments nnrun builds it with)
EXAMPLES = {
    "register_activations": (Cube, list),
    "register_losses": (Absolute, list),
    "register_initializers": (Zeros, list),
    "register_optimizers": (Still, lambda: [param()]),
    "register_schedulers": (Halving, lambda: [nnrun.Optimizer(param(), lr=0.1)]),
    "register_solvers": (Nothing, list),
    "register_datasets": (Empty, list),
    "register_metrics": (Count, list),
    "register_executors": (Nowhere, list),
}


def test_every_hook_has_an_example():
    assert sorted(EXAMPLES) == sorted(HOOKS.values())


@pytest.mark.parametrize("kind", sorted(HOOKS))
def test_a_component_registered_through_each_hook_is_found_by_both_names_and_built(
    nnrun_host, kind
):
    hook = HOOKS[kind]
    cls, arguments = EXAMPLES[hook]

    class Plugin:
        pass

    setattr(Plugin, hook, staticmethod(nnrun.hookimpl(lambda register: register("example", cls))))
    nnrun_host.register(Plugin(), name="example-plugin")
    registry = nnrun.load_registry(nnrun_host)
    assert registry.failures == []
    assert registry.kind(kind)["example"] is cls
    assert registry.kind(kind)["Example_Plugin:example"] is cls  # qualified, normalised
    component = build(registry, kind, {"name": "example-plugin:example"}, *arguments())
    assert type(component) is cls


@pytest.mark.parametrize("hook", sorted(HOOKS.values()))
def test_every_hook_says_when_it_is_called_its_register_contract_and_what_failing_does(hook):
    doc = getattr(hookspecs, hook).__doc__
    assert "Called once per registry" in doc, "when it is called"
    assert "`register(name, cls)`" in doc, "the register() contract"
    assert "returns None" in doc, "what it returns"
    assert "fails and is skipped whole" in doc, "what a failure does"
