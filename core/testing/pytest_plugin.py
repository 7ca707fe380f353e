"""pytest fixtures for plugin authors, installed with nnrun (entry point `pytest11`).

`nnrun_host` gives a fresh, isolated plugin host with no plugins loaded: register yours in-process
and build a registry from it, without installing anything or touching global state.

    def test_my_optimizer_is_found(nnrun_host):
        nnrun_host.register(my_plugin_module)
        assert "my_sgd" in nnrun.load_registry(nnrun_host).optimizers

`nnrun_builtins_host` holds nnrun's own built-ins as well, for a test that runs an experiment
using the plugin (with a plain `nnrun_host` there is no `mse` loss, no `sigmoid`, no `adam`).
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
    """A plugin host holding nnrun's own built-in plugins and no third-party one."""
    host = PluginHost()
    host.load_entry_points(strict=True, distribution="nnrun")
    return host
