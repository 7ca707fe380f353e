"""pytest fixtures for plugin authors, installed with nnrun (entry point `pytest11`).

`nnrun_host` gives a fresh, isolated plugin host with no plugins loaded: register yours in-process
and build a registry from it, without installing anything or touching global state.

    def test_my_optimizer_is_found(nnrun_host):
        nnrun_host.register(my_plugin_module)
        assert "my_sgd" in nnrun.load_registry(nnrun_host).optimizers
"""

from __future__ import annotations

import pytest

from nnrun.loading import PluginHost


@pytest.fixture
def nnrun_host() -> PluginHost:
    """An empty plugin host; `load_registry(host)` builds a registry from what you register."""
    return PluginHost()


@pytest.fixture
def nnrun_builtins_host() -> PluginHost:
    """A plugin host holding only nnrun's own built-in plugins (no third-party ones)."""
    from importlib import import_module

    import nnrun
    from nnrun.hookspecs import HOOKS
    from nnrun.registry import Provider

    host = PluginHost()
    for kind in HOOKS:
        provider = Provider("nnrun", nnrun.__version__, kind)
        host.register(
            import_module(f"nnrun.plugins.{kind}"), name=f"nnrun:{kind}", provider=provider
        )
    return host
