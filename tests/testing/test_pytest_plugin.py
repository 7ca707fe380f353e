"""The fixtures nnrun's pytest plugin gives plugin authors: `nnrun_host`, empty and isolated, and
`nnrun_builtins_host`, holding exactly nnrun's own built-ins, for tests that run an experiment
(examples/plugin/tests shows one, run by tests/test_plugin_example.py)."""

from __future__ import annotations

from plugin_sources import THIRD_PARTY_OPTIMIZER

import nnrun


def test_nnrun_host_holds_nothing(nnrun_host):
    registry = nnrun.load_registry(nnrun_host)
    assert registry.components() == [] and registry.failures == []


def test_nnrun_builtins_host_holds_every_builtin_and_no_installed_plugin(install_plugin, request):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"signsgd": "nnrun_signsgd"}
    )
    everything = nnrun.load_registry()
    assert "signsgd" in everything.optimizers  # installed, so a leaky fixture would show it

    host = request.getfixturevalue("nnrun_builtins_host")  # built after the install above
    registry = nnrun.load_registry(host)
    builtins = {
        (c.kind, c.name) for c in everything.components() if c.provider.distribution == "nnrun"
    }
    assert {(c.kind, c.name) for c in registry.components()} == builtins
    assert {c.provider for c in registry.components()} == {
        c.provider for c in everything.components() if c.provider.distribution == "nnrun"
    }
    assert registry.failures == [] and "signsgd" not in registry.optimizers
