"""Read-only views for the CLI: the plugin listing, a resolved experiment, runs side by side."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnrun.config.schema import ComponentSpec, RunConfig
from nnrun.hyperparameters import hyperparameters
from nnrun.registry import Registry


def plugin_listing(registry: Registry | None = None) -> dict[str, Any]:
    """Every component by kind with its provider, the names it answers to and its hyperparameters,
    plus the problems: plugins that failed, and names that several distributions register (with
    which one the plain name picks: the built-in, or none)."""
    from nnrun.loading import load_registry

    registry = registry if registry is not None else load_registry()
    components: dict[str, list[dict[str, Any]]] = {}
    for component in registry.components():
        components.setdefault(component.kind, []).append(
            {
                "name": component.name,
                "qualified": component.qualified,
                "answers_to": registry.answers_to(component),
                "distribution": component.provider.distribution,
                "version": component.provider.version,
                "hyperparameters": {
                    h.name: _plain(h.default)
                    for h in hyperparameters(component.cls, component.kind)
                    if not h.required
                },
                "required": [
                    h.name for h in hyperparameters(component.cls, component.kind) if h.required
                ],
                "reference": _reference(component.cls, component.kind),
                **_search_space(component.cls, component.kind),
            }
        )
    failures = [
        {
            "distribution": f.provider.distribution,
            "version": f.provider.version,
            "entry_point": f.provider.entry_point,
            "error": f.error,
        }
        for f in registry.failures
    ]
    collisions = [
        {
            "kind": providers[0].kind,
            "name": providers[0].name,
            "plain_name_picks": next(
                (c.qualified for c in providers if providers[0].name in registry.answers_to(c)),
                None,
            ),
            "providers": [
                {
                    "distribution": c.provider.distribution,
                    "version": c.provider.version,
                    "entry_point": c.provider.entry_point,
                    "qualified": c.qualified,
                }
                for c in providers
            ],
        }
        for providers in registry.collisions()
    ]
    return {"components": components, "failures": failures, "collisions": collisions}


def render_plugin_listing(listing: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for kind, components in listing["components"].items():
        table = Table(title=kind, title_justify="left")
        with_reference = kind == "optimizers"
        columns = ("name", "hyperparameters (defaults)", "from")
        for column in (*columns, "reference") if with_reference else columns:
            table.add_column(column, overflow="fold")  # wrap, never cut a name off
        for c in components:
            params = ", ".join(
                c["required"] + [f"{k}={v!r}" for k, v in c["hyperparameters"].items()]
            )
            if c.get("search_space"):  # an optimizer's default [tune] space
                params += "\nspace: " + ", ".join(
                    f"{k} {kind} {values}"
                    for k, entry in c["search_space"].items()
                    for kind, values in entry.items()
                )
            version = f" {c['version']}" if c["version"] else ""
            name = c["answers_to"][0]  # the plain name where it picks this one, else qualified
            row = [name, params or "-", f"{c['distribution']}{version}"]
            if with_reference:
                row.append(escape(c["reference"]) if c["reference"] else "no")
            table.add_row(*row)
        console.print(table)
    for failure in listing["failures"]:
        version = f" {failure['version']}" if failure["version"] else ""
        console.print(
            "[red]FAILED[/] "
            + escape(
                f"plugin {failure['entry_point']!r} from {failure['distribution']}{version}: "
                f"{failure['error']}"
            ),
            highlight=False,
            soft_wrap=True,  # one failure, one line
        )
    for collision in listing["collisions"]:
        providers = " and ".join(
            f"{p['distribution']}{' ' + p['version'] if p['version'] else ''} "
            f"(entry point {p['entry_point']!r})"
            for p in collision["providers"]
        )
        name, picks = collision["name"], collision["plain_name_picks"]
        others = [p["qualified"] for p in collision["providers"] if p["qualified"] != picks]
        outcome = (
            f"{name!r} is the built-in, the others answer to {' and '.join(map(repr, others))}"
            if picks
            else f"{name!r} is ambiguous: write {' or '.join(map(repr, others))}"
        )
        console.print(
            "[red]COLLISION[/] "
            + escape(f"{collision['kind'][:-1]} {name!r} is registered by {providers}; {outcome}"),
            highlight=False,
            soft_wrap=True,
        )


def describe_experiment(file: Path, overrides: Iterable[str] = (), nproc: int | None = None) -> str:
    """The resolved experiment as TOML, with a comment per component naming its distribution."""
    from nnrun.config import load_experiment
    from nnrun.config.resolve import component_slots, listed_components  # imports torch
    from nnrun.config.tuning import describe_tune, tune_runs
    from nnrun.experiment.rundir import toml_ready
    from nnrun.loading import load_registry

    registry = load_registry()
    experiment = load_experiment(file, overrides, registry=registry, nproc=nproc)
    total = sum(tune_runs(run) for run in experiment.runs)
    lines = [f"# {file}: {total} run(s), all valid. Components come from:"]
    data_lines: list[str] = []
    for run in experiment.runs:
        slots = [*component_slots(run), *listed_components(run)]
        if run.data is not None:
            slots.insert(0, ("datasets", "[data] kind", ComponentSpec(name=run.data.kind)))
            for line in describe_data(run, registry):
                if line not in data_lines:
                    data_lines.append(line)
        for kind, where, spec in slots:
            if spec is not None:
                provider = registry.component(kind, spec.name).provider
                line = f"#   {where} {spec.name!r} <- {provider}"
                if line not in lines:
                    lines.append(line)
    if data_lines:
        lines += ["# Data:", *data_lines]
    tuned = [run for run in experiment.runs if run.tune is not None]
    if tuned:
        lines.append("# [tune] (trials, then the best re-run on the final seeds):")
        lines += [f"#   {describe_tune(run, registry)}" for run in tuned]
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(toml_ready(experiment.to_dict()))


def describe_data(run: RunConfig, registry: Registry) -> list[str]:
    """What the run's dataset holds, as `nnrun check` prints it: samples per split, inputs, and
    the task with its outputs or classes (loaded once, as the validation pass already did)."""
    from nnrun.experiment.assemble import load_data
    from nnrun.experiment.data import split_indices

    assert run.data is not None
    loaded, generator = load_data(run, registry)
    n, shares = len(loaded.x), run.data.split.shares()
    labels = loaded.y if loaded.task == "classification" else None
    parts = split_indices(n, shares, generator, labels) if shares else {"train": range(n)}
    sizes = ", ".join(f"{name} {len(index)}" for name, index in parts.items())
    kind = run.data.kind
    lines = [
        f"#   [data] kind {kind!r}: {n} samples ({sizes}), {len(loaded.inputs)} input(s): "
        f"{_names(loaded.inputs)}",
    ]
    if loaded.task == "classification":
        lines.append(
            f"#   [data] kind {kind!r}: classification into {len(loaded.classes)} classes: "
            f"{_names(loaded.classes)}"
        )
    else:
        lines.append(
            f"#   [data] kind {kind!r}: regression of {len(loaded.targets)} output(s): "
            f"{_names(loaded.targets)}"
        )
    lines += [f"#   [data] kind {kind!r}: {note}" for note in loaded.notes]
    return lines


def _names(names: tuple[str, ...], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def comparison_table(run_dirs: Iterable[Path], every_run: bool = False) -> Table:
    """One row per group (or, without seeds or with `every_run`, per run) of every directory
    given, prefixed by the directory."""
    from nnrun.experiment.comparison import load_groups
    from nnrun.experiment.reporting import group_table, has_groups, results_table

    groups, entries = load_groups(list(run_dirs))
    summary = {"experiment": "comparison", "runs": list(entries.values()), "groups": groups}
    if has_groups(summary) and not every_run:
        return group_table(summary)
    return results_table(summary)


def _reference(cls: type, kind: str) -> str | None:
    """What an optimizer declares `nnrun verify` compares it with (see `nnrun.Optimizer`), as
    text; None for one that declares nothing and for the other kinds, whose reference is fixed
    (autograd of forward for activations and losses)."""
    from nnrun.verify import describe_reference

    return describe_reference(getattr(cls, "reference", None)) if kind == "optimizers" else None


def _search_space(cls: type, kind: str) -> dict[str, Any]:
    """An optimizer's default `[tune]` space, as `nnrun plugins` lists it ({} when it has none)."""
    space = getattr(cls, "search_space", None) if kind == "optimizers" else None
    return {"search_space": _plain(space)} if isinstance(space, dict) and space else {}


def _plain(value: Any) -> Any:
    """A default as JSON can hold it: tuples as lists, anything else JSON lacks (a function, an
    object) as its repr, so one plugin's odd default cannot break `nnrun plugins --json`."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
