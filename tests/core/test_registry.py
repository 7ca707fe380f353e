"""Naming rules: plain and qualified (`DIST:NAME`) names, collisions, a built-in's precedence."""

from __future__ import annotations

import types

import pytest
from plugin_sources import THIRD_PARTY_OPTIMIZER

import nnrun
from nnrun.errors import (
    ConfigError,
    DuplicateComponentError,
    PluginError,
    PluginLoadWarning,
    UnknownComponentError,
)
from nnrun.registry import Provider, Registry, normalize

LAMB_A = Provider("nnrun-extra-optim", "0.2", "optim")
LAMB_B = Provider("lamb_plugin", "1.0", "lamb")
BUILTIN = Provider("nnrun", "0.1.0", "optimizers")


class LambA(nnrun.Optimizer):
    pass


class LambB(nnrun.Optimizer):
    pass


class Adam(nnrun.Optimizer):
    pass


def two_lambs() -> Registry:
    registry = Registry()
    registry.add("optimizers", "lamb", LambA, LAMB_A)
    registry.add("optimizers", "lamb", LambB, LAMB_B)
    registry.add("optimizers", "adam", Adam, BUILTIN)
    return registry


@pytest.mark.parametrize(
    "written,normal",
    [
        ("nnrun-extra-optim", "nnrun-extra-optim"),
        ("NNRun_Extra.Optim", "nnrun-extra-optim"),
        ("a--b__c..d", "a-b-c-d"),
    ],
)
def test_distribution_names_compare_as_pep_503_normalises_them(written, normal):
    assert normalize(written) == normal


@pytest.mark.parametrize(
    "name,cls",
    [
        ("nnrun-extra-optim:lamb", LambA),
        ("NNRUN_extra.optim:lamb", LambA),
        ("lamb_plugin:lamb", LambB),
        ("lamb-plugin:lamb", LambB),
        ("adam", Adam),
        ("nnrun:adam", Adam),
    ],
)
def test_a_qualified_name_picks_its_distributions_component(name, cls):
    registry = two_lambs()
    assert registry.optimizers[name] is cls
    assert name in registry.optimizers
    assert registry.component("optimizers", name).cls is cls


def test_a_plain_name_two_plugins_register_is_an_error_naming_both_and_the_qualified_names():
    registry = two_lambs()
    with pytest.raises(DuplicateComponentError) as info:
        registry.optimizers["lamb"]
    assert str(info.value) == (
        "the optimizer 'lamb' is ambiguous: 2 plugins register it, lamb_plugin 1.0 (entry point "
        "'lamb') and nnrun-extra-optim 0.2 (entry point 'optim'); write 'lamb_plugin:lamb' or "
        "'nnrun-extra-optim:lamb' to pick one"
    )
    assert "lamb" not in registry.optimizers and list(registry.optimizers) == ["adam"]
    (collision,) = registry.collisions()
    assert {c.cls for c in collision} == {LambA, LambB}
    assert registry.shadowed() == []


def test_one_distribution_registering_a_name_twice_cannot_be_told_apart_by_qualifying():
    registry = Registry()
    registry.add("optimizers", "lamb", LambA, LAMB_A)
    registry.add("optimizers", "lamb", LambB, Provider("nnrun-extra-optim", "0.2", "other"))
    for name in ("lamb", "nnrun-extra-optim:lamb"):
        with pytest.raises(DuplicateComponentError, match="one distribution registers it twice"):
            registry.optimizers[name]


def test_a_builtins_plain_name_stays_the_builtins_and_the_plugins_is_qualified():
    registry = Registry()
    registry.add("optimizers", "adam", Adam, BUILTIN)
    registry.add("optimizers", "adam", LambA, LAMB_A)
    assert registry.optimizers["adam"] is Adam
    assert registry.optimizers["nnrun-extra-optim:adam"] is LambA
    assert list(registry.optimizers) == ["adam"]
    assert [c.cls for c in registry.shadowed()] == [LambA]
    builtin, plugin = registry.collisions()[0]
    assert registry.answers_to(builtin) == ["adam", "nnrun:adam"]
    assert registry.answers_to(plugin) == ["nnrun-extra-optim:adam"]


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("nnrun-extra-optim:lam", "nnrun-extra-optim:lamb"),
        ("nnrun-extra:lamb", "nnrun-extra-optim:lamb"),
        ("ADAM", "adam"),
        ("nnrun:adamm", "nnrun:adam"),
        ("Lamb_Plugin:LAMB", "lamb_plugin:lamb"),
    ],
)
def test_an_unknown_name_suggests_plain_or_qualified_names_ignoring_case(name, suggestion):
    with pytest.raises(UnknownComponentError) as info:
        two_lambs().optimizers[name]
    message = str(info.value)
    assert f"; did you mean {suggestion!r}?" in message
    # the names that work: plain where it picks one, qualified where it does not
    assert message.endswith("Available optimizers: adam, lamb_plugin:lamb, nnrun-extra-optim:lamb")


def test_an_unknown_distribution_in_a_qualified_name_is_unknown():
    with pytest.raises(UnknownComponentError, match="unknown optimizer 'nnrun-lamb:lamb'"):
        two_lambs().optimizers["nnrun-lamb:lamb"]


def test_a_component_name_holding_the_qualifier_fails_its_plugin():
    with pytest.raises(PluginError, match="component names may not contain ':'"):
        Registry().add("optimizers", "my:lamb", LambA, LAMB_A)


def test_every_provider_is_listed_with_the_names_it_answers_to():
    registry = two_lambs()
    names = {c.qualified: registry.answers_to(c) for c in registry.components("optimizers")}
    assert names == {
        "nnrun:adam": ["adam", "nnrun:adam"],
        "lamb_plugin:lamb": ["lamb_plugin:lamb"],
        "nnrun-extra-optim:lamb": ["nnrun-extra-optim:lamb"],
    }


# --- Installed plugins and experiment files -------------------------------------------------------

SIGNSGD_AS = THIRD_PARTY_OPTIMIZER.replace('"signsgd"', '"{name}"')


def install_two_lambs(install_plugin):
    for distribution, module in [("nnrun-extra-optim", "extra_lamb"), ("nnrun-lamb", "lamb")]:
        install_plugin(distribution, {module: SIGNSGD_AS.format(name="lamb")}, {"lamb": module})


def test_a_plugin_taking_a_builtins_name_is_warned_about_once(install_plugin):
    install_plugin(
        "nnrun-other-adam", {"other_adam": SIGNSGD_AS.format(name="adam")}, {"adam": "other_adam"}
    )
    with pytest.warns(PluginLoadWarning) as caught:
        registry = nnrun.load_registry()
    assert [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)] == [
        "plugin 'adam' from nnrun-other-adam 1.0 registers the optimizer 'adam', the name of a "
        "built-in: 'adam' stays nnrun's, and the plugin's is 'nnrun-other-adam:adam'"
    ]
    assert registry.component("optimizers", "adam").provider.distribution == "nnrun"
    qualified = registry.component("optimizers", "nnrun-other-adam:adam")
    assert qualified.cls.__name__ == "SignSGD"
    assert registry.failures == []


EXPERIMENT = """\
[experiment]
name = "e"
seed = 0

[data]
expr = "x"
n = 8

[model]
layers = [1, 2, 1]

[optimizer]
name = "{optimizer}"

[scheduler]
name = "linear_warmup"
warmup_epochs = 1
after = {{ name = "{after}", T_max = 2 }}

[train]
epochs = 2
"""


def write(tmp_path, optimizer="sgd", after="cosine"):
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.format(optimizer=optimizer, after=after))
    return path


def test_an_experiment_naming_an_ambiguous_name_gets_its_line_and_the_qualified_names(
    install_plugin, tmp_path
):
    install_two_lambs(install_plugin)
    with pytest.raises(ConfigError) as info:
        nnrun.load_experiment(write(tmp_path, "lamb"))
    assert str(info.value) == (
        f"{tmp_path / 'e.toml'}:13: [optimizer]: the optimizer 'lamb' is ambiguous: 2 plugins "
        "register it, nnrun-extra-optim 1.0 (entry point 'lamb') and nnrun-lamb 1.0 (entry point "
        "'lamb'); write 'nnrun-extra-optim:lamb' or 'nnrun-lamb:lamb' to pick one"
    )


@pytest.mark.parametrize(
    "optimizer,after,overrides,used",
    [
        ("nnrun-lamb:lamb", "cosine", [], ("nnrun-lamb:lamb", "cosine")),
        (
            "lamb",
            "cosine",
            ["optimizer.name=nnrun_extra_optim:lamb"],
            ("nnrun_extra_optim:lamb", "cosine"),
        ),
        ("sgd", "nnrun:cosine", [], ("sgd", "nnrun:cosine")),  # a nested spec, qualified
        (
            "nnrun:sgd",
            "cosine",
            ['scheduler.after={ name = "nnrun:cosine", T_max = 2 }'],
            ("nnrun:sgd", "nnrun:cosine"),
        ),
    ],
)
def test_qualified_names_work_in_files_nested_specs_and_overrides_and_are_kept_as_written(
    install_plugin, tmp_path, optimizer, after, overrides, used
):
    install_two_lambs(install_plugin)
    experiment = nnrun.load_experiment(write(tmp_path, optimizer, after), overrides)
    (run,) = experiment.runs
    # the resolved config (config.toml) keeps each name as the user wrote it, qualified or not
    assert (run.optimizer.name, run.scheduler.params["after"]["name"]) == used
    summary = nnrun.run_experiment(experiment, tmp_path / "run")
    assert summary["runs"][0]["status"] == "ok"


def test_the_readme_quotes_the_ambiguity_and_shadowing_messages_as_nnrun_writes_them(nnrun_host):
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    registry = Registry()
    registry.add("optimizers", "lamb", LambA, LAMB_A)
    registry.add("optimizers", "lamb", LambB, Provider("nnrun-lamb", "1.0", "lamb"))
    with pytest.raises(DuplicateComponentError) as info:
        registry.optimizers["lamb"]
    assert f"`{info.value}`" in readme

    class Plugin:
        @nnrun.hookimpl
        def register_optimizers(self, register):
            register("adam", LambA)

    nnrun_host.register(Plugin(), provider=Provider("nnrun-fast-adam", "1.0", "adam"))
    nnrun_host.register(
        types.SimpleNamespace(
            register_optimizers=nnrun.hookimpl(lambda register: register("adam", Adam))
        ),
        provider=Provider("nnrun", "0.1.0", "optimizers"),
    )
    with pytest.warns(PluginLoadWarning) as caught:
        nnrun.load_registry(nnrun_host)
    (warning,) = caught
    assert f"`warning: {warning.message}`" in readme
