"""Plugin discovery: built-ins and third parties through one path, failures isolated and reported."""

from __future__ import annotations

import signal
import types
from importlib.metadata import EntryPoint

import pytest
import torch
from plugin_sources import THIRD_PARTY_OPTIMIZER

import nnrun
from nnrun import loading
from nnrun.errors import (
    ConfigError,
    PluginError,
    PluginLoadError,
    PluginLoadWarning,
    UnknownComponentError,
)
from nnrun.hookspecs import HOOKS
from nnrun.loading import PluginHost
from nnrun.registry import Provider, Registry


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
    assert registry.failures == [] and registry.collisions() == []  # every built-in subclasses


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


def test_a_module_registered_without_a_name_is_known_by_its_module_name(nnrun_host):
    module = types.ModuleType("nnrun_cube")
    exec(
        "import nnrun\n"
        "@nnrun.hookimpl\n"
        "def register_activations(register):\n"
        "    register('cube', nnrun.Activation)\n",
        module.__dict__,
    )
    nnrun_host.register(module)
    component = nnrun.load_registry(nnrun_host).component("activations", "cube")
    assert component.provider == Provider("nnrun_cube", None, "nnrun_cube")
    assert nnrun_host.manager.has_plugin("nnrun_cube")


def test_plugin_objects_registered_without_a_name_are_each_known_by_their_repr(nnrun_host):
    class Losses:
        @nnrun.hookimpl
        def register_losses(self, register):
            register("first", nnrun.Loss)

    class MoreLosses:
        @nnrun.hookimpl
        def register_losses(self, register):
            register("second", nnrun.Loss)

    first, second = nnrun_host.register(Losses()), nnrun_host.register(MoreLosses())
    registry = nnrun.load_registry(nnrun_host)
    assert registry.component("losses", "first").provider.entry_point == repr(first)
    assert registry.component("losses", "second").provider.entry_point == repr(second)


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
    with pytest.raises(UnknownComponentError) as info:
        registry.activations["half_registered"]
    assert "half_registered" not in info.value.available  # not offered as a suggestion either
    assert "sigmoid" in registry.activations


def test_a_plugin_error_spread_over_lines_is_reported_on_one(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_losses(self, register):
            raise ValueError("first line\n\n   second line  \n")

    nnrun_host.register(Plugin(), name="multiline")
    with pytest.warns(PluginLoadWarning):
        (failure,) = nnrun.load_registry(nnrun_host).failures
    assert failure.error == "ValueError: first line second line"


def test_a_plugin_failing_in_one_hook_is_not_called_again_and_the_others_still_are(nnrun_host):
    class Failing:
        @nnrun.hookimpl
        def register_activations(self, register):  # called first: activations come before losses
            raise RuntimeError("activations failed")

        @nnrun.hookimpl
        def register_losses(self, register):
            register("failing_loss", nnrun.Loss)

    class Healthy:
        @nnrun.hookimpl
        def register_losses(self, register):
            register("healthy_loss", nnrun.Loss)

    nnrun_host.register(Failing(), name="failing")  # registered first, so called first per hook
    nnrun_host.register(Healthy(), name="healthy")
    with pytest.warns(PluginLoadWarning, match="activations failed"):
        registry = nnrun.load_registry(nnrun_host)
    assert list(registry.losses) == ["healthy_loss"]
    assert [f.provider.entry_point for f in registry.failures] == ["failing"]


def test_unknown_component_error_suggests_and_lists():
    registry = nnrun.load_registry()
    with pytest.raises(UnknownComponentError) as info:
        registry.optimizers["adamm"]
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "unknown optimizer 'adamm'" in message
    assert "did you mean 'adam'" in message
    assert "sgd" in message and "rmsprop" in message


# --- What a plugin can throw: it fails that plugin, never nnrun -----------------------------------

RAISES = {
    "SystemExit": "raise SystemExit(3)",
    "KeyboardInterrupt": "raise KeyboardInterrupt",
    "GeneratorExit": "raise GeneratorExit",
}


def raising_plugin(where: str, statement: str) -> str:
    if where == "import":
        return statement
    return f"""
import nnrun

@nnrun.hookimpl
def register_losses(register):
    {statement}
"""


@pytest.mark.parametrize("where", ["import", "hook"])
@pytest.mark.parametrize("exception", sorted(RAISES))
def test_anything_a_plugin_raises_fails_only_that_plugin(install_plugin, where, exception):
    source = raising_plugin(where, RAISES[exception])
    install_plugin("nnrun-rude", {"nnrun_rude": source}, {"rude": "nnrun_rude"})
    try:
        with pytest.warns(PluginLoadWarning, match=f"nnrun-rude 1.0 failed to load.*: {exception}"):
            registry = nnrun.load_registry()
    except KeyboardInterrupt:  # caught here, or pytest would stop the whole session
        pytest.fail("the plugin's own KeyboardInterrupt escaped load_registry")
    (failure,) = registry.failures
    assert failure.provider.distribution == "nnrun-rude"
    assert failure.error.startswith(exception)
    assert "adam" in registry.optimizers and "mse" in registry.losses


@pytest.mark.parametrize("where", ["import", "hook"])
def test_a_real_ctrl_c_while_a_plugin_loads_still_interrupts_nnrun(install_plugin, where):
    source = raising_plugin(where, "import signal; signal.raise_signal(signal.SIGINT)")
    install_plugin("nnrun-slow", {"nnrun_slow": source}, {"slow": "nnrun_slow"})
    # Python's own Ctrl-C handler, whatever the test runner installed (mutmut installs its own)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            nnrun.load_registry()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, before)


def test_what_a_plugin_prints_goes_to_stderr_not_stdout(install_plugin, capsys):
    source = """
import nnrun
print("hello from import")

@nnrun.hookimpl
def register_losses(register):
    print("hello from the hook")
"""
    install_plugin("nnrun-chatty", {"nnrun_chatty": source}, {"chatty": "nnrun_chatty"})
    registry = nnrun.load_registry()
    assert registry.failures == []
    out, err = capsys.readouterr()
    assert out == ""
    assert "hello from import" in err and "hello from the hook" in err


# --- Plugins that break the contract -------------------------------------------------------------

TYPO = """
import nnrun

@nnrun.hookimpl
def register_optimisers(register):  # British spelling: not a hook
    pass
"""


def test_a_misspelled_hook_registered_in_process_is_an_error_naming_the_hooks(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_optimisers(self, register):
            pass

    with pytest.raises(PluginError) as info:
        nnrun_host.register(Plugin(), name="typo")
    message = str(info.value)
    assert message.startswith("plugin 'typo' from typo: unknown hook 'register_optimisers'")
    assert "did you mean 'register_optimizers'?" in message
    assert f"Hooks: {', '.join(sorted(HOOKS.values()))}" in message
    assert not nnrun_host.manager.has_plugin("typo")  # nothing half-registered


def test_an_installed_plugin_with_a_misspelled_hook_is_skipped_as_failed(install_plugin):
    install_plugin("nnrun-typo", {"nnrun_typo": TYPO}, {"typo": "nnrun_typo"}, "0.2")
    with pytest.warns(PluginLoadWarning) as caught:
        registry = nnrun.load_registry()
    (warning,) = [w for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert str(warning.message) == (
        "plugin 'typo' from nnrun-typo 0.2 failed to load and was skipped: unknown hook "
        "'register_optimisers'; did you mean 'register_optimizers'? Hooks: "
        + ", ".join(sorted(HOOKS.values()))
    )
    assert [f.provider.distribution for f in registry.failures] == ["nnrun-typo"]
    assert "adam" in registry.optimizers


def test_a_hook_with_arguments_nnrun_does_not_pass_is_one_line_error(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_losses(self, registry):  # the argument is `register`
            pass

    with pytest.raises(PluginError, match="'registry'") as info:
        nnrun_host.register(Plugin(), name="args")
    assert str(info.value).startswith("plugin 'args' from args: ")
    assert "\n" not in str(info.value)
    assert not nnrun_host.manager.has_plugin("args")


def test_several_unknown_hooks_are_named_in_one_message_with_or_without_a_suggestion(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_optimisers(self, register):
            pass

        @nnrun.hookimpl
        def setup(self):
            pass

    with pytest.raises(PluginError) as info:
        nnrun_host.register(Plugin(), name="two")
    assert info.value.reason == (
        "unknown hook 'register_optimisers'; did you mean 'register_optimizers'? "
        "unknown hook 'setup'. Hooks: " + ", ".join(sorted(HOOKS.values()))
    )


class NotAnActivation:
    def forward(self, x):
        return x

    def backward(self, x, y, grad_y):
        return grad_y


@pytest.mark.parametrize(
    "kind,base",
    [
        ("activations", "Activation"),
        ("losses", "Loss"),
        ("initializers", "Initializer"),
        ("optimizers", "Optimizer"),
        ("schedulers", "Scheduler"),
        ("solvers", "Solver"),
        ("datasets", "Dataset"),
        ("metrics", "Metric"),
    ],
)
def test_a_class_that_does_not_subclass_the_kinds_base_fails_its_plugin(nnrun_host, kind, base):
    class Plugin:
        pass

    def hook(register):
        register("ok", getattr(nnrun, base))  # the base itself is a subclass of itself
        register("duck", NotAnActivation)

    setattr(Plugin, HOOKS[kind], staticmethod(nnrun.hookimpl(hook)))
    nnrun_host.register(Plugin(), name="ducks")
    with pytest.warns(PluginLoadWarning):
        registry = nnrun.load_registry(nnrun_host)
    (failure,) = registry.failures
    assert failure.error == (
        "register('duck', NotAnActivation): NotAnActivation does not subclass "
        f"nnrun.{base}, the base class of every {kind[:-1]}"
    )
    assert list(registry.kind(kind)) == []  # dropped whole, "ok" included


@pytest.mark.parametrize(
    "name,cls,message",
    [
        (3, nnrun.Optimizer, "component names are non-empty strings, got 3"),
        ("", nnrun.Optimizer, "component names are non-empty strings, got ''"),
        (
            "fn",
            lambda params: None,
            "optimizers must be classes that subclass nnrun.Optimizer, got a value of type function",
        ),
        ("obj", object(), "got a value of type object"),
    ],
)
def test_registry_add_rejects_what_is_not_a_named_component_class(name, cls, message):
    provider = Provider("nnrun-odd", "1.0", "odd")
    with pytest.raises(PluginError) as info:
        Registry().add("optimizers", name, cls, provider)
    assert str(info.value).startswith("plugin 'odd' from nnrun-odd 1.0: ")
    assert message in str(info.value)


# --- NNRUN_STRICT_PLUGINS --------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["1", "0", ""])
def test_strict_plugins_turns_a_failure_into_a_one_line_error(install_plugin, monkeypatch, setting):
    install_plugin(
        "nnrun-broken",
        {"nnrun_broken2": "raise ImportError('missing dep')"},
        {"broken": "nnrun_broken2"},
    )
    monkeypatch.setenv("NNRUN_STRICT_PLUGINS", setting)
    if setting != "1":
        with pytest.warns(PluginLoadWarning, match="missing dep"):
            assert "adam" in nnrun.load_registry().optimizers
        return
    with pytest.raises(PluginLoadError) as info:
        nnrun.load_registry()
    assert str(info.value) == (
        "plugin 'broken' from nnrun-broken 1.0 failed to load: ImportError: missing dep "
        "(NNRUN_STRICT_PLUGINS is set; unset it to skip the plugin instead)"
    )
    assert isinstance(info.value.__cause__, ImportError)  # the plugin's own error, for debugging


def test_a_plugin_host_skips_a_failing_plugin_unless_told_to_be_strict(install_plugin):
    install_plugin(
        "nnrun-broken", {"nnrun_broken3": "raise ImportError('no dep')"}, {"b": "nnrun_broken3"}
    )
    install_plugin(
        "nnrun-rude", {"nnrun_rude": raising_plugin("hook", "1 / 0")}, {"r": "nnrun_rude"}
    )
    host = PluginHost()
    with pytest.warns(PluginLoadWarning, match="ImportError: no dep"):
        host.load_entry_points()
    with pytest.warns(PluginLoadWarning, match="ZeroDivisionError"):
        registry = host.registry()
    assert sorted(f.provider.distribution for f in registry.failures) == [
        "nnrun-broken",
        "nnrun-rude",
    ]
    with pytest.raises(PluginLoadError, match="ImportError: no dep"):
        PluginHost().load_entry_points(strict=True)


@pytest.mark.skipif(
    hasattr(loading, "_mutmut_mutated"),
    reason="mutmut's trampolines add frames to every call, which moves any stacklevel",
)
def test_a_plugin_hosts_warning_points_at_the_line_that_asked_for_the_registry(nnrun_host):
    class Plugin:
        @nnrun.hookimpl
        def register_losses(self, register):
            raise RuntimeError("no losses today")

    nnrun_host.register(Plugin(), name="failing")
    with pytest.warns(PluginLoadWarning) as caught:
        nnrun_host.registry()
    (warning,) = [w for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert warning.filename == __file__  # for `python -W` and filterwarnings by module


def test_strict_plugins_applies_to_a_failing_hook_too(install_plugin):
    install_plugin(
        "nnrun-rude", {"nnrun_rude": raising_plugin("hook", "1 / 0")}, {"r": "nnrun_rude"}
    )
    with pytest.raises(PluginLoadError, match="ZeroDivisionError"):
        nnrun.load_registry(strict=True)


# --- Duplicates (collisions and qualified names: test_registry.py) ---------------------------------------------------------------------


def test_a_plugin_dropped_for_failing_no_longer_collides(nnrun_builtins_host):
    class Plugin:
        @nnrun.hookimpl
        def register_optimizers(self, register):
            register("adam", nnrun.Optimizer)
            raise RuntimeError("half done")

    nnrun_builtins_host.register(Plugin(), name="half")
    with pytest.warns(PluginLoadWarning, match="half done"):
        registry = nnrun.load_registry(nnrun_builtins_host)
    assert registry.component("optimizers", "adam").provider.distribution == "nnrun"
    assert registry.collisions() == []


def test_a_distribution_seen_twice_on_sys_path_is_registered_once(install_plugin, monkeypatch):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"signsgd": "nnrun_signsgd"}
    )
    found = list(loading.entry_points(group=loading.ENTRY_POINT_GROUP))
    assert sum(ep.name == "signsgd" for ep in found) == 1
    twice = [entry_point for entry_point in found for _ in range(2)]  # each right after itself
    monkeypatch.setattr(loading, "entry_points", lambda group: twice)
    registry = nnrun.load_registry()
    assert registry.failures == [] and registry.collisions() == []
    assert "adam" in registry.optimizers  # the rest still loads after a repeat
    assert registry.component("optimizers", "signsgd").provider.distribution == "nnrun-signsgd"


def test_an_entry_point_outside_any_distribution_is_named_after_its_target(tmp_path, monkeypatch):
    (tmp_path / "loose_signsgd.py").write_text(THIRD_PARTY_OPTIMIZER)
    monkeypatch.syspath_prepend(str(tmp_path))
    loose = EntryPoint(
        name="signsgd", value="loose_signsgd", group="nnrun"
    )  # built by hand: no dist
    monkeypatch.setattr(loading, "entry_points", lambda group: [loose])
    registry = nnrun.load_registry()
    component = registry.component("optimizers", "signsgd")
    assert component.provider == Provider("loose_signsgd", None, "signsgd")


def test_an_unknown_component_mentions_the_plugins_that_failed(install_plugin):
    install_plugin(
        "cube-plugin", {"cube_plugin": "raise ImportError('no libcube')"}, {"cube": "cube_plugin"}
    )
    with pytest.warns(PluginLoadWarning):
        registry = nnrun.load_registry()
    with pytest.raises(UnknownComponentError) as info:
        registry.activations["cube"]
    assert str(info.value).endswith(
        "A plugin that failed to load may provide it: plugin 'cube' from cube-plugin 1.0 "
        "failed to load: ImportError: no libcube"
    )
    assert str(info.value).startswith("unknown activation 'cube'")


def test_the_readme_shows_the_misspelled_hook_message_as_nnrun_prints_it(nnrun_host):
    from pathlib import Path

    class Plugin:
        @nnrun.hookimpl
        def register_optimisers(self, register):
            pass

    with pytest.raises(PluginError) as info:
        nnrun_host.register(Plugin(), provider=Provider("nnrun-signum", "0.1.0", "signum"))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    line = f"plugin 'signum' from nnrun-signum 0.1.0 failed to load and was skipped: {info.value.reason}"
    assert f"warning: {line}\n" in readme


# --- A broken plugin of each kind: the others stay usable, it is reported once ------------------

BROKEN_AT_LOAD = {
    "import error": ("raise ImportError('no libfoo')", "ImportError: no libfoo"),
    "exception in a hook": (raising_plugin("hook", "raise LookupError('no table')"), "LookupError"),
    "wrong return type": (
        "import nnrun\n"
        "@nnrun.hookimpl\n"
        "def register_losses(register):\n"
        "    return [('mine', nnrun.Loss)]\n",
        "register_losses returned a value of type list: hooks register components by calling "
        "register(name, cls) and return None",
    ),
    "a component that is not a class": (
        "import nnrun\n"
        "@nnrun.hookimpl\n"
        "def register_losses(register):\n"
        "    register('mine', lambda pred, target: 0.0)\n",
        "losses must be classes that subclass nnrun.Loss, got a value of type function",
    ),
    "an unsupported plugin API": (
        "nnrun_api = 99\n",
        "written for plugin API 99, and this nnrun 0.1.0 supports plugin API 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_AT_LOAD))
def test_a_plugin_broken_at_load_is_reported_once_and_the_others_stay_usable(install_plugin, case):
    source, error = BROKEN_AT_LOAD[case]
    install_plugin("nnrun-broken", {"nnrun_broken_kind": source}, {"broken": "nnrun_broken_kind"})
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    with pytest.warns(PluginLoadWarning) as caught:
        registry = nnrun.load_registry()
    (warning,) = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert warning.startswith(
        "plugin 'broken' from nnrun-broken 1.0 failed to load and was skipped"
    )
    assert error in warning
    assert [f.provider.distribution for f in registry.failures] == ["nnrun-broken"]
    assert "signsgd" in registry.optimizers and "mse" in registry.losses
    assert "mine" not in registry.losses


def test_a_failing_plugin_is_one_warning_line_of_a_command(install_plugin, tmp_path):
    from bad_experiments import BASE
    from click.testing import CliRunner

    from nnrun.cli import main

    install_plugin(
        "nnrun-broken", {"nnrun_broken_cli": "raise ImportError('x')"}, {"b": "nnrun_broken_cli"}
    )
    (tmp_path / "e.toml").write_text(BASE)
    result = CliRunner().invoke(main, ["check", str(tmp_path / "e.toml")])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: plugin 'b' from nnrun-broken 1.0 failed to load and was skipped: ImportError: x"
    ]


RAISING_CONSTRUCTOR = """
import nnrun

class Fragile(nnrun.Optimizer):
    def __init__(self, params, lr: float = 0.1):
        raise RuntimeError("no GPU driver")

@nnrun.hookimpl
def register_optimizers(register):
    register("fragile", Fragile)
"""

NAN_STEP = """
import nnrun

class Nan(nnrun.Optimizer):
    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, lr=lr)

    def step(self):
        for p in self.params:
            p.data.fill_(float("nan"))
        return float("nan")

@nnrun.hookimpl
def register_optimizers(register):
    register("nan", Nan)
"""

TWO_RUNS = """
[experiment]
name = "two"
seed = 0

[data]
expr = "x"
n = 16

[model]
layers = [1, 4, 1]

[train]
epochs = 3

[[runs]]
name = "plugin"
optimizer = {{ name = "{name}" }}

[[runs]]
name = "builtin"
optimizer = {{ name = "sgd", lr = 0.1 }}
"""


def test_a_constructor_that_raises_is_one_config_error_naming_the_plugin(install_plugin, tmp_path):
    install_plugin("nnrun-fragile", {"nnrun_fragile": RAISING_CONSTRUCTOR}, {"f": "nnrun_fragile"})
    registry = nnrun.load_registry()
    assert registry.failures == [] and "sgd" in registry.optimizers  # loading is unharmed
    path = tmp_path / "two.toml"
    path.write_text(TWO_RUNS.format(name="fragile"))
    with pytest.raises(ConfigError) as info:
        nnrun.load_experiment(path, registry=registry)
    assert str(info.value) == (
        f"{path}:18: run 'plugin': [optimizer]: optimizer 'fragile' from nnrun-fragile 1.0 "
        "raised RuntimeError: no GPU driver"
    )
    path.write_text(TWO_RUNS.format(name="sgd"))  # the rest of the registry still builds runs
    assert len(nnrun.load_experiment(path, registry=registry).runs) == 2


def test_a_step_that_returns_nan_diverges_its_run_only(install_plugin, tmp_path):
    install_plugin("nnrun-nan", {"nnrun_nan": NAN_STEP}, {"nan": "nnrun_nan"})
    path = tmp_path / "two.toml"
    path.write_text(TWO_RUNS.format(name="nan"))
    summary = nnrun.run_experiment(nnrun.load_experiment(path), tmp_path / "run")
    assert {run["name"]: run["status"] for run in summary["runs"]} == {
        "plugin": "diverged",
        "builtin": "ok",
    }


# --- Which plugins load: NNRUN_DISABLE_PLUGINS, --no-plugins, the plugin API ---------------------


def distributions(registry):
    return {c.provider.distribution for c in registry.components()}


@pytest.mark.parametrize(
    "written", ["nnrun-signsgd", "NNRUN_SignSGD", " nnrun.signsgd ,other-dist"]
)
def test_disabled_distributions_are_not_imported(install_plugin, monkeypatch, written):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    install_plugin(
        "other-dist", {"other_dist": "raise ImportError('never imported')"}, {"o": "other_dist"}
    )
    monkeypatch.setenv("NNRUN_DISABLE_PLUGINS", written)
    if "other" not in written:
        with pytest.warns(PluginLoadWarning, match="never imported"):
            registry = nnrun.load_registry()
    else:
        registry = nnrun.load_registry()
        assert registry.failures == []
    assert "signsgd" not in registry.optimizers and "adam" in registry.optimizers
    assert "nnrun_signsgd" not in __import__("sys").modules


def test_disabling_an_unknown_distribution_warns_with_a_suggestion(install_plugin, monkeypatch):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    monkeypatch.setenv("NNRUN_DISABLE_PLUGINS", "nnrun-signsdg")
    with pytest.warns(PluginLoadWarning) as caught:
        registry = nnrun.load_registry()
    assert [str(w.message) for w in caught] == [
        "NNRUN_DISABLE_PLUGINS names 'nnrun-signsdg', which is no installed plugin distribution; "
        "did you mean 'nnrun-signsgd'?"
    ]
    assert "signsgd" in registry.optimizers


def test_the_builtins_cannot_be_disabled(monkeypatch):
    monkeypatch.setenv("NNRUN_DISABLE_PLUGINS", "NNRun")
    with pytest.raises(
        PluginLoadError, match=r"names 'nnrun', the built-ins .* cannot be disabled"
    ):
        nnrun.load_registry()


@pytest.mark.parametrize("setting,third_party", [("1", False), ("0", True), ("", True)])
def test_no_plugins_loads_the_builtins_alone(install_plugin, monkeypatch, setting, third_party):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    monkeypatch.setenv("NNRUN_NO_PLUGINS", setting)
    registry = nnrun.load_registry()
    if third_party:  # other installed extensions (nnrun-extra-optim in CI) may be there too
        assert {"nnrun", "nnrun-signsgd"} <= distributions(registry)
    else:
        assert distributions(registry) == {"nnrun"}


@pytest.mark.parametrize(
    "declared,requires,message",
    [
        ("nnrun_api = 1", None, None),
        ("", None, None),  # no declaration: taken to be compatible
        (
            "nnrun_api = 2",
            "nnrun>=0.3",
            "written for plugin API 2, and this nnrun 0.1.0 supports plugin API 1: it needs a "
            "newer nnrun (pip install -U 'nnrun>=0.3')",
        ),
        (
            "nnrun_api = 2",
            None,
            "written for plugin API 2, and this nnrun 0.1.0 supports plugin API 1: it needs a "
            "newer nnrun (pip install -U nnrun)",
        ),
        (
            "nnrun_api = 0",
            None,
            "written for plugin API 0, and this nnrun 0.1.0 supports plugin API 1: upgrade "
            "nnrun-signsgd",
        ),
        (
            "nnrun_api = '1'",
            None,
            "nnrun_api must be an int, the plugin API version it was written for, got '1'",
        ),
    ],
)
def test_a_plugin_written_for_another_plugin_api_is_skipped_naming_what_it_needs(
    install_plugin, declared, requires, message
):
    site = install_plugin(
        "nnrun-signsgd",
        {"nnrun_signsgd": f"{declared}\n{THIRD_PARTY_OPTIMIZER}"},
        {"s": "nnrun_signsgd"},
    )
    if requires:
        (metadata,) = site.glob("*.dist-info/METADATA")
        metadata.write_text(metadata.read_text() + f"Requires-Dist: {requires}\n")
    if message is None:
        assert "signsgd" in nnrun.load_registry().optimizers
        return
    with pytest.warns(PluginLoadWarning) as caught:
        registry = nnrun.load_registry()
    (warning,) = [str(w.message) for w in caught]
    assert warning == f"plugin 's' from nnrun-signsgd 1.0 failed to load and was skipped: {message}"
    assert "signsgd" not in registry.optimizers and "adam" in registry.optimizers
    assert nnrun.PLUGIN_API == 1


def test_the_plugin_api_is_checked_for_plugins_registered_in_process(nnrun_host):
    plugin = types.SimpleNamespace(nnrun_api=2)
    with pytest.raises(PluginError, match="written for plugin API 2"):
        nnrun_host.register(plugin, name="future")
