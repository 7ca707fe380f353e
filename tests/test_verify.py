"""`nnrun verify`: every built-in passes; a broken optimizer fails with the right check named;
unknown names are bad usage (exit 2) with a suggestion."""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch
from click.testing import CliRunner
from plugin_sources import BROKEN_OPTIMIZERS, THIRD_PARTY_OPTIMIZER

import nnrun
from nnrun.cli import main
from nnrun.verify import UnknownTargetError, resolve_reference, select, verify


@pytest.fixture
def broken(install_plugin):
    install_plugin("nnrun-broken", {"nnrun_broken": BROKEN_OPTIMIZERS}, {"broken": "nnrun_broken"})


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_every_builtin_passes_through_the_cli():
    result = invoke("verify", "nnrun", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    registry = nnrun.load_registry()
    builtins = {
        (c.kind, c.name) for c in registry.components() if c.provider.distribution == "nnrun"
    }
    assert {(c["kind"], c["name"]) for c in listing["components"]} == builtins
    assert listing["passed"] and all(c["passed"] and c["checks"] for c in listing["components"])
    adam = next(c for c in listing["components"] if c["name"] == "adam")
    assert adam["reference"] == "torch.optim.Adam"
    checks = {check["check"]: check for check in adam["checks"]}
    # The trajectory is compared with torch's: a figure within its tolerance.
    assert 0 <= checks["matches_reference[float32]"]["figure"] <= 1.0
    assert checks["matches_reference[float32]"]["tolerance"] == 1.0


def test_the_table_names_component_check_result_figure_and_tolerance():
    result = invoke("verify", "optimizers:sgd")
    assert result.exit_code == 0
    header = result.stdout.splitlines()[2]
    for column in ("component", "check", "result", "figure", "tolerance"):
        assert column in header
    assert "optimizer sgd" in result.stdout and "matches_reference[float64]" in result.stdout
    # reference_imports; matches_reference and four invariants per dtype; reads_lr; CUDA per dtype
    checks = 1 + 2 * (1 + 4) + 1 + (2 if torch.cuda.is_available() else 0)
    assert result.stdout.rstrip().endswith(f"1 component(s), {checks} checks, 0 failed")


@pytest.mark.parametrize(
    ("name", "check", "message"),
    [
        (
            "uncorrected_adam",
            "matches_reference[float32]",
            r"UncorrectedAdam: matches the reference \[float32, shape \(\), step 1\]",
        ),
        (
            "forgetful_momentum",
            "state_dict_round_trip[float32]",
            "continues identically after state_dict",
        ),
    ],
)
def test_a_broken_optimizer_fails_naming_the_check(broken, name, check, message):
    result = invoke("verify", name, "--json")
    assert result.exit_code == 1, result.output
    (component,) = json.loads(result.stdout)["components"]
    failed = [c for c in component["checks"] if not c["passed"]]
    assert failed[0]["check"] == check
    assert pytest.approx(failed[0]["tolerance"]) == (1.0 if "reference" in check else 0.0)
    assert failed[0]["figure"] > failed[0]["tolerance"]
    assert re.search(message, failed[0]["message"])
    # Only what is broken fails: the invariants hold for the uncorrected Adam.
    if name == "uncorrected_adam":
        assert {c["check"] for c in failed} == {
            "matches_reference[float32]",
            "matches_reference[float64]",
        }
    table = invoke("verify", name)
    assert table.exit_code == 1 and f"FAILED optimizer {name}: {check}: " in table.stdout


def test_a_distribution_is_verified_whole_and_fails_if_one_component_does(broken):
    result = invoke("verify", "NNRUN_Broken", "--json")  # names compare normalised
    listing = json.loads(result.stdout)
    assert result.exit_code == 1 and not listing["passed"]
    assert {c["name"] for c in listing["components"]} == {"uncorrected_adam", "forgetful_momentum"}
    assert "verifying optimizer 'forgetful_momentum'" in result.stderr


def test_a_plugin_without_a_reference_gets_the_invariants(install_plugin):
    install_plugin(
        "nnrun-signsgd", {"nnrun_signsgd": THIRD_PARTY_OPTIMIZER}, {"s": "nnrun_signsgd"}
    )
    (report,) = verify("nnrun-signsgd")
    assert report.reference is None and report.passed
    assert not any(r.check.startswith("matches_reference") for r in report.results)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("adam", {("optimizers", "adam")}),
        ("optimizers:adam", {("optimizers", "adam")}),
        ("optimizer:adam", {("optimizers", "adam")}),
        ("nnrun:adam", {("optimizers", "adam")}),
        ("losses:mse", {("losses", "mse")}),
    ],
)
def test_component_names_may_be_qualified_by_kind_or_distribution(target, expected):
    chosen = select(nnrun.load_registry(), target)
    assert {(c.kind, c.name) for c in chosen} == expected


@pytest.mark.parametrize(
    ("target", "hint"),
    [("adamm", "did you mean 'adam'?"), ("nnrn", "did you mean 'nnrun'?"), ("losses:adam", "")],
)
def test_an_unknown_target_is_bad_usage_with_a_suggestion(target, hint):
    result = invoke("verify", target)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"nnrun verify: {target!r} is neither an installed distribution" in result.stderr
    assert hint in result.stderr and "Distributions: nnrun" in result.stderr
    with pytest.raises(UnknownTargetError):
        select(nnrun.load_registry(), target)


def test_a_component_that_cannot_be_built_fails_the_builds_check(install_plugin):
    source = THIRD_PARTY_OPTIMIZER.replace("lr: float = 0.01", "lr: float")  # lr now required
    install_plugin("nnrun-needs-lr", {"nnrun_needs_lr": source}, {"s": "nnrun_needs_lr"})
    (report,) = verify("nnrun-needs-lr")
    (result,) = report.results
    assert result.check == "builds" and not result.passed
    assert "lr" in result.message and "verify_hyperparameters" in result.message


def test_a_reference_that_does_not_import_fails_its_check(install_plugin):
    source = BROKEN_OPTIMIZERS.replace('"torch.optim.Adam"', '"torch.optim.Adamm"')
    install_plugin("nnrun-broken", {"nnrun_broken": source}, {"broken": "nnrun_broken"})
    (report,) = verify("uncorrected_adam")
    assert [(r.check, r.passed) for r in report.results] == [("reference_imports", False)]
    assert "torch.optim.Adamm" in report.results[0].message


def test_references_resolve_from_dotted_and_colon_paths():
    assert resolve_reference("torch.optim.Adam") is torch.optim.Adam
    assert resolve_reference("torch.optim:Adam") is torch.optim.Adam
    assert resolve_reference(torch.optim.SGD) is torch.optim.SGD


def test_plugins_listing_shows_each_optimizers_reference():
    result = invoke("plugins", "--json")
    optimizers = {c["name"]: c for c in json.loads(result.stdout)["components"]["optimizers"]}
    assert optimizers["sgd"]["reference"] == "torch.optim.SGD"
    assert optimizers["lion"]["reference"] is None
    # wide enough that no cell wraps, whatever extension packages are installed beside nnrun
    table = CliRunner().invoke(main, ["plugins"], env={"COLUMNS": "250"}).stdout
    assert "reference" in table and "torch.optim.RMSprop" in table


def test_a_component_whose_optional_dependency_is_missing_is_skipped_not_failed(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` raises ImportError
    result = invoke("verify", "datasets:sklearn")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout and "nnrun[sklearn]" in result.stdout
    listing = json.loads(invoke("verify", "datasets:sklearn", "--json").stdout)
    (component,) = listing["components"]
    assert listing["passed"] and all(check["skipped"] for check in component["checks"])
