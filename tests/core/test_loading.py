"""Plugin discovery: built-ins and third parties through one path, failures isolated and reported."""

from __future__ import annotations

import pluggy
import pytest
import torch

import nnrun
from nnrun.errors import DuplicateComponentError, PluginLoadWarning, UnknownComponentError

THIRD_PARTY_OPTIMIZER = """
import nnrun

class SignSGD(nnrun.Optimizer):
    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, lr=lr)

    def step(self):
        for p in self.params:
            if p.grad is not None:
                p.data.add_(p.grad.sign(), alpha=-self.hyperparameters["lr"])

@nnrun.hookimpl
def register_optimizers(register):
    register("signsgd", SignSGD)
"""


def test_builtins_are_discovered_through_entry_points():
    registry = nnrun.load_registry()
    for kind, name in [
        ("activations", "sigmoid"),
        ("losses", "mse"),
        ("optimizers", "adam"),
        ("solvers", "quadratic_descent"),
        ("initializers", "torch_default"),
        ("schedulers", "cosine"),
    ]:
        component = registry.component(kind, name)
        assert component.provider.distribution == "nnrun"
        assert component.provider.version == nnrun.__version__


def test_installed_third_party_plugin_is_loaded_like_a_builtin(install_plugin):
    install_plugin(
        "nnrun-signsgd",
        {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER},
        {"signsgd": "nnrun_signsgd"},
        "2.1",
    )
    registry = nnrun.load_registry()
    component = registry.component("optimizers", "signsgd")
    assert (component.provider.distribution, component.provider.version) == ("nnrun-signsgd", "2.1")
    param = nnrun.Parameter(torch.tensor([1.0, -1.0]), grad=torch.tensor([0.5, -3.0]))
    registry.optimizers["signsgd"]([param], lr=0.5).step()
    assert param.data.tolist() == [0.5, -0.5]


def test_plugin_registered_in_process(nnrun_host):
    class Cube(nnrun.Activation):
        def forward(self, x):
            return x**3

        def backward(self, x, y, grad_y):
            return 3 * x**2 * grad_y

    class Plugin:
        @nnrun.hookimpl
        def register_activations(self, register):
            register("cube", Cube)

    nnrun_host.register(Plugin(), name="cube-plugin")
    registry = nnrun.load_registry(nnrun_host)
    assert registry.activations["cube"] is Cube
    assert list(registry.optimizers) == []  # isolated: no installed plugin leaks in


def test_plugin_that_fails_to_import_is_skipped_with_one_warning(install_plugin):
    install_plugin(
        "nnrun-broken",
        {"nnrun_broken": "raise RuntimeError('boom at import')"},
        {"broken": "nnrun_broken"},
    )
    with pytest.warns(
        PluginLoadWarning, match=r"nnrun-broken 1.0.*RuntimeError: boom at import"
    ) as caught:
        registry = nnrun.load_registry()
    assert len([w for w in caught if issubclass(w.category, PluginLoadWarning)]) == 1
    assert "adam" in registry.optimizers  # everything else still loads
    assert [f.provider.distribution for f in registry.failures] == ["nnrun-broken"]


def test_plugin_whose_hook_raises_is_dropped_whole(install_plugin):
    source = """
import nnrun

class Ok(nnrun.Activation):
    pass

@nnrun.hookimpl
def register_activations(register):
    register("half_registered", Ok)
    raise ValueError("hook failed")
"""
    install_plugin("nnrun-halfway", {"nnrun_halfway": source}, {"halfway": "nnrun_halfway"})
    with pytest.warns(PluginLoadWarning, match="ValueError: hook failed"):
        registry = nnrun.load_registry()
    assert "half_registered" not in registry.activations
    assert "sigmoid" in registry.activations


def test_strict_mode_reraises_the_plugin_error(install_plugin):
    install_plugin(
        "nnrun-broken",
        {"nnrun_broken2": "raise ImportError('missing dep')"},
        {"broken": "nnrun_broken2"},
    )
    with pytest.raises(ImportError, match="missing dep"):
        nnrun.load_registry(strict=True)


def test_same_name_from_two_distributions_is_an_error_naming_both(install_plugin):
    install_plugin(
        "nnrun-other-adam",
        {"nnrun_other_adam": THIRD_PARTY_OPTIMIZER.replace('"signsgd"', '"adam"')},
        {"adam": "nnrun_other_adam"},
    )
    with pytest.raises(
        DuplicateComponentError, match="two plugins register the optimizer 'adam'"
    ) as info:
        nnrun.load_registry()
    assert "nnrun 0.1.0" in str(info.value) and "nnrun-other-adam 1.0" in str(info.value)


def test_misspelled_hook_is_rejected(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_optimisers(self, register):  # British spelling: not a hook
            pass

    with pytest.raises(pluggy.PluginValidationError, match="register_optimisers"):
        nnrun_host.register(Plugin(), name="typo")


def test_unknown_component_error_suggests_and_lists():
    registry = nnrun.load_registry()
    with pytest.raises(UnknownComponentError) as info:
        registry.optimizers["adamm"]
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "unknown optimizer 'adamm'" in message
    assert "did you mean 'adam'" in message
    assert "sgd" in message and "rmsprop" in message
