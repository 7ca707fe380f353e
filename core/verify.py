"""`nnrun verify`: the conformance kit run on installed components, with no test code.

Every component of a distribution (or one component) gets the checks of its kind, one result per
check. What a component needs for that it declares as class attributes:

- `verify_hyperparameters`: a dict the component is built with (its required hyperparameters,
  nested specs included), checked against its signature like an experiment file's table;
- `reference` (optimizers): what the trajectory is compared with, a `torch.optim`-style class, a
  reference step function, or the import path of one ("torch.optim.Adam", "pkg.mod:step"),
  imported only when verified; it is built with the same `verify_hyperparameters`;
- `verify_targets` (losses): the `targets` of `check_loss` ("regression" by default).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nnrun.errors import NnrunError, suggest
from nnrun.registry import Component, Registry
from nnrun.testing.results import Check, CheckResult, run_checks


class UnknownTargetError(NnrunError):
    """`nnrun verify` was given a name that is neither an installed distribution nor a component."""


@dataclass
class ComponentReport:
    """The results of one component's checks."""

    kind: str
    name: str
    distribution: str
    version: str | None
    reference: str | None
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "reference": self.reference,
            "passed": self.passed,
            "checks": [result.to_dict() for result in self.results],
        }


def normalize(distribution: str) -> str:
    """A distribution name as packaging compares them (PEP 503): `Nnrun_Extra.Optim` ->
    `nnrun-extra-optim`."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def select(registry: Registry, target: str) -> list[Component]:
    """The components `target` names: a distribution (normalised), a component name (`adam`), or
    a name qualified by its kind or distribution (`optimizers:adam`, `optimizer:adam`,
    `nnrun:adam`). Raise `UnknownTargetError`, with a suggestion, for anything else."""
    components = registry.components()
    by_distribution = [
        c for c in components if normalize(c.provider.distribution) == normalize(target)
    ]
    if by_distribution:
        return by_distribution
    qualifier, _, name = target.rpartition(":")
    chosen = [c for c in components if c.name == name]
    if qualifier:
        chosen = [
            c
            for c in chosen
            if qualifier in (c.kind, c.kind[:-1])
            or normalize(qualifier) == normalize(c.provider.distribution)
        ]
    if chosen:
        return chosen
    distributions = sorted({c.provider.distribution for c in components})
    names = sorted({c.name for c in components})
    hint = suggest(target, [*distributions, *names]) or suggest(name, names)
    raise UnknownTargetError(
        f"nnrun verify: {target!r} is neither an installed distribution that registers nnrun "
        f"components nor a component name{hint or '.'} Distributions: "
        f"{', '.join(distributions) or '(none)'}; `nnrun plugins` lists every component"
    )


def verify(
    target: str,
    registry: Registry | None = None,
    progress: Callable[[Component], None] | None = None,
) -> list[ComponentReport]:
    """Run the conformance kit on every component `target` names (see `select`); `progress` is
    told of each component before its checks run."""
    from nnrun.loading import load_registry

    registry = registry if registry is not None else load_registry()
    reports = []
    for component in select(registry, target):
        if progress is not None:
            progress(component)
        reports.append(verify_component(registry, component))
    return reports


def verify_component(registry: Registry, component: Component) -> ComponentReport:
    """Build the component from its `verify_hyperparameters` and run its kind's checks."""
    from nnrun.factory import ComponentFactory

    cls = component.cls
    hyperparameters = dict(getattr(cls, "verify_hyperparameters", None) or {})
    reference = getattr(cls, "reference", None) if component.kind == "optimizers" else None
    report = ComponentReport(
        component.kind,
        component.name,
        component.provider.distribution,
        component.provider.version,
        describe_reference(reference),
    )
    try:
        spec = {"name": component.name, **hyperparameters}
        build = ComponentFactory(
            registry, component.kind, spec, f"{cls.__name__}.verify_hyperparameters"
        )
    except NnrunError as error:
        report.results = [_failed("builds", f"{error}; set verify_hyperparameters on the class")]
        return report
    checks = _CHECKS[component.kind]
    report.results = checks(component, build, hyperparameters, reference)
    return report


def _failed(check: str, message: str) -> CheckResult:
    return CheckResult(check, False, message=message)


def describe_reference(reference: Any) -> str | None:
    if reference is None or isinstance(reference, str):
        return reference
    return (
        f"{getattr(reference, '__module__', '?')}.{getattr(reference, '__qualname__', reference)}"
    )


def resolve_reference(reference: Any) -> Any:
    """A reference given as an import path ("torch.optim.Adam" or "pkg.module:function") as the
    object; anything else as it is."""
    if not isinstance(reference, str):
        return reference
    module, sep, attribute = reference.partition(":")
    if not sep:
        module, _, attribute = reference.rpartition(".")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _run(checks: list[Check]) -> list[CheckResult]:
    return run_checks(checks, strict=False)


def _built(build: Any, *args: Any) -> tuple[Any, list[CheckResult]]:
    """Build one instance, or the failed "builds" result saying why not."""
    try:
        return build(*args), []
    except Exception as error:
        return None, [_failed("builds", f"raised {type(error).__name__}: {error}")]


def _optimizers(component, build, hyperparameters, reference) -> list[CheckResult]:
    import torch

    from nnrun.parameter import Parameter
    from nnrun.testing.optimizer_checks import optimizer_checks

    _, failed = _built(build, [Parameter(torch.zeros(2))])
    if failed:
        return failed
    results = []
    if reference is not None:
        try:
            reference = resolve_reference(reference)
            results.append(CheckResult("reference_imports", True))
        except Exception as error:
            return [_failed("reference_imports", f"{reference!r}: {type(error).__name__}: {error}")]
    checks = optimizer_checks(build, reference, hyperparameters, name=component.cls.__name__)
    return results + _run(checks)


def _activations(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.gradient_checks import activation_results

    instance, failed = _built(build)
    return failed or activation_results(instance)


def _losses(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.gradient_checks import loss_results

    instance, failed = _built(build)
    targets: Any = getattr(component.cls, "verify_targets", "regression")
    if failed:
        return failed
    try:
        return loss_results(instance, targets)
    except ValueError as error:  # verify_targets is not a kind of targets
        return [_failed("builds", f"verify_targets: {error}")]


def _initializers(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.initializer_checks import initializer_checks

    _, failed = _built(build)
    return failed or _run(initializer_checks(build, {}))


def _schedulers(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.scheduler_checks import RateHolder, scheduler_checks

    _, failed = _built(build, RateHolder())
    return failed or _run(scheduler_checks(build, {}, name=component.cls.__name__))


def _solvers(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.solver_checks import solver_checks

    _, failed = _built(build)
    return failed or _run(solver_checks(component.cls, hyperparameters, build=build))


def _datasets(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.dataset_checks import dataset_checks

    _, failed = _built(build)
    return failed or _run(dataset_checks(component.cls, hyperparameters))


def _metrics(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.metric_checks import metric_checks

    _, failed = _built(build)
    return failed or _run(metric_checks(component.cls, hyperparameters))


def _executors(component, build, hyperparameters, reference) -> list[CheckResult]:
    from nnrun.testing.executor_checks import executor_checks

    _, failed = _built(build)
    return failed or _run(executor_checks(component.cls, hyperparameters))


_CHECKS = {
    "activations": _activations,
    "losses": _losses,
    "initializers": _initializers,
    "optimizers": _optimizers,
    "schedulers": _schedulers,
    "solvers": _solvers,
    "datasets": _datasets,
    "metrics": _metrics,
    "executors": _executors,
}


def verify_listing(target: str, reports: list[ComponentReport]) -> dict[str, Any]:
    """What `nnrun verify --json` prints."""
    return {
        "target": target,
        "passed": all(report.passed for report in reports),
        "components": [report.to_dict() for report in reports],
    }


def render_verify(listing: dict[str, Any], console: Any = None) -> None:
    """The report as a table (component, check, result, figure, tolerance), then each failure's
    message in full."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"nnrun verify {listing['target']}", title_justify="left")
    for column in ("component", "check", "result", "figure", "tolerance"):
        table.add_column(column)
    failures: list[str] = []
    skips: set[str] = set()
    for component in listing["components"]:
        full = label = f"{component['kind'][:-1]} {component['name']}"
        for check in component["checks"]:
            result = (
                "[yellow]skipped[/]"
                if check.get("skipped")
                else ("passed" if check["passed"] else "[red]FAILED[/]")
            )
            table.add_row(
                escape(label),
                escape(check["check"]),
                result,
                _number(check["figure"]),
                _number(check["tolerance"]),
            )
            if not check["passed"]:
                failures.append(f"{full}: {check['check']}: {check['message']}")
            elif check.get("skipped"):
                skips.add(f"{full}: {check['message']}")
            label = ""
    console.print(table)
    for failure in failures:
        console.print("[red]FAILED[/] " + escape(failure), highlight=False, soft_wrap=True)
    for skip in sorted(skips):
        console.print("[yellow]skipped[/] " + escape(skip), highlight=False, soft_wrap=True)
    total = sum(len(c["checks"]) for c in listing["components"])
    failed = sum(not check["passed"] for c in listing["components"] for check in c["checks"])
    skipped = sum(
        bool(check.get("skipped")) for c in listing["components"] for check in c["checks"]
    )
    console.print(
        f"{len(listing['components'])} component(s), {total} checks, {failed} failed"
        + (f", {skipped} skipped (a missing optional dependency)" if skipped else ""),
        highlight=False,
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
