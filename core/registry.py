"""The registry: every loaded component, by kind and name, with the distribution that provides it.

Naming rules. Every component answers to its qualified name `DIST:NAME` (`nnrun:adam`,
`nnrun-extra-optim:lamb`; the distribution compared as PEP 503 normalises it, so case, `-`, `_` and
`.` do not matter). Its plain name `NAME` works too unless several distributions register it: then
a built-in (distribution `nnrun`) keeps the plain name and the others are reachable qualified only,
and between third parties the plain name is ambiguous, an error naming both and their qualified
names. Collisions are recorded, not raised, so loading and `nnrun plugins` always work.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from nnrun.errors import DuplicateComponentError, NnrunError, PluginError, UnknownComponentError
from nnrun.hookspecs import HOOKS

#: The distribution of the built-in components: it keeps a plain name that a plugin registers too.
BUILTIN = "nnrun"
#: Separates a distribution from a component name in a qualified name; component names may not hold it.
QUALIFIER = ":"

#: Kind -> the base class its components must subclass (imported when checked: they pull in torch).
BASES: dict[str, str] = {
    "activations": "nnrun.components:Activation",
    "losses": "nnrun.components:Loss",
    "initializers": "nnrun.components:Initializer",
    "optimizers": "nnrun.optimizer:Optimizer",
    "schedulers": "nnrun.scheduler:Scheduler",
    "solvers": "nnrun.solver:Solver",
    "datasets": "nnrun.dataset:Dataset",
    "metrics": "nnrun.metric:Metric",
    "executors": "nnrun.executor:Executor",
}


@dataclass(frozen=True)
class Provider:
    """Where a plugin came from: a distribution (with version) and its entry point, or in-process."""

    distribution: str
    version: str | None
    entry_point: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.distribution}{version}"

    requires_nnrun: str | None = field(default=None, compare=False)
    """The distribution's own requirement on nnrun (`nnrun>=0.3`), to say which nnrun it needs."""

    def describe(self) -> str:
        """How messages name the plugin: "plugin 'adam' from nnrun-adam 1.0"."""
        return f"plugin {self.entry_point!r} from {self}"

    @property
    def is_builtin(self) -> bool:
        return normalize(self.distribution) == BUILTIN


def normalize(distribution: str) -> str:
    """A distribution name as PEP 503 compares it: `NNRun_Extra.Optim` -> `nnrun-extra-optim`."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    cls: type
    provider: Provider

    @property
    def qualified(self) -> str:
        """The name that always picks this component: `DIST:NAME`."""
        return f"{self.provider.distribution}{QUALIFIER}{self.name}"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded; nnrun keeps going without it."""

    provider: Provider
    error: str

    def __str__(self) -> str:
        return self.message("failed to load")

    def message(self, outcome: str) -> str:
        """One line: "plugin 'x' from nnrun-x 1.0 <outcome>: <error>"."""
        return f"{self.provider.describe()} {outcome}: {self.error}"


def base_class(kind: str) -> type:
    """The class every component of `kind` subclasses (`nnrun.Optimizer` for "optimizers")."""
    module, name = BASES[kind].split(":")
    return getattr(importlib.import_module(module), name)


def collision_error(kind: str, name: str, providers: list[Component]) -> DuplicateComponentError:
    """The plain name several distributions register: name them all, and the qualified names that
    tell them apart (when one distribution registers it twice, only uninstalling helps)."""
    qualified = sorted({c.qualified for c in providers})
    if len({normalize(c.provider.distribution) for c in providers}) == len(providers):
        fix = f"write {' or '.join(map(repr, qualified))} to pick one"
    else:
        fix = "one distribution registers it twice: uninstall or fix it"
    return DuplicateComponentError(
        f"the {kind[:-1]} {name!r} is ambiguous: {len(providers)} plugins register it, "
        + " and ".join(f"{c.provider} (entry point {c.provider.entry_point!r})" for c in providers)
        + f"; {fix}"
    )


def resolve(components: list[Component]) -> Component | None:
    """The component a plain name picks among its providers: the only one, else the built-in."""
    if len(components) == 1:
        return components[0]
    builtins = [c for c in components if c.provider.is_builtin]
    return builtins[0] if len(builtins) == 1 else None


class ComponentMap(Mapping[str, type]):
    """A read-only name -> class mapping, plain or qualified names alike, whose missing keys raise
    `UnknownComponentError` and whose ambiguous plain names raise `DuplicateComponentError`. The
    plain names that can be used are iterated and counted; qualified names are looked up only."""

    def __init__(
        self,
        kind: str,
        components: dict[str, list[Component]],
        failures: Sequence[PluginFailure] = (),
    ):
        self._kind, self._components, self._failures = kind, components, list(failures)

    def __getitem__(self, name: str) -> type:
        return self.component(name).cls

    def component(self, name: str) -> Component:
        """The component `name` (plain or `DIST:NAME`) picks, with its provider."""
        if not isinstance(name, str):
            raise self._unknown(repr(name))
        distribution, qualified, plain = name.rpartition(QUALIFIER)
        providers = self._components.get(plain, [])
        if qualified:
            providers = [
                c
                for c in providers
                if normalize(c.provider.distribution) == normalize(distribution)
            ]
        if not providers:
            raise self._unknown(name)
        chosen = resolve(providers)
        if chosen is None:
            raise collision_error(self._kind, plain, providers)
        return chosen

    def __contains__(self, name: object) -> bool:
        try:
            self.component(name)  # type: ignore[arg-type]
        except NnrunError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(n for n, providers in self._components.items() if resolve(providers)))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<{self._kind}: {', '.join(self)}>"

    def _unknown(self, name: str) -> UnknownComponentError:
        """Listing the plain names that work and the qualified names of the rest; a suggestion may
        be any of them, qualified or not."""
        every = [c for providers in self._components.values() for c in providers]
        reachable = {id(resolve(providers)) for providers in self._components.values()}
        available = [*self, *(c.qualified for c in every if id(c) not in reachable)]
        also = [c.qualified for c in every]
        error = UnknownComponentError(self._kind, name, available, also)
        if self._failures:  # the name may be one a broken plugin would have provided: say so
            failed = "; ".join(str(failure) for failure in self._failures)
            error.args = (f"{error}. A plugin that failed to load may provide it: {failed}",)
        return error


@dataclass
class Registry:
    """What `nnrun.load_registry()` returns: `.activations`, `.losses`, `.optimizers`, ... ."""

    _components: dict[str, dict[str, list[Component]]] = field(
        default_factory=lambda: {kind: {} for kind in HOOKS}
    )
    failures: list[PluginFailure] = field(default_factory=list)

    def add(self, kind: str, name: str, cls: type, provider: Provider) -> None:
        """Record `provider`'s component; raise `PluginError` if it is not a named subclass of the
        kind's base class. A name another provider has too is kept as a collision."""
        what = f"register({name!r}, {getattr(cls, '__qualname__', repr(cls))})"
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{what}: component names are non-empty strings, got {name!r}",
                provider.describe(),
            )
        if QUALIFIER in name:
            raise PluginError(
                f"{what}: component names may not contain {QUALIFIER!r}, which separates the "
                f"distribution in a qualified name ({provider.distribution}{QUALIFIER}NAME)",
                provider.describe(),
            )
        expected = base_class(kind)
        base = f"nnrun.{expected.__name__}"
        if not isinstance(cls, type):
            raise PluginError(
                f"{what}: {kind} must be classes that subclass {base}, got a value of type "
                f"{type(cls).__name__}",
                provider.describe(),
            )
        if not issubclass(cls, expected):
            raise PluginError(
                f"{what}: {cls.__qualname__} does not subclass {base}, "
                f"the base class of every {kind[:-1]}",
                provider.describe(),
            )
        providers = self._components[kind].setdefault(name, [])
        providers[:] = [c for c in providers if c.provider != provider]
        providers.append(Component(kind, name, cls, provider))
        providers.sort(key=lambda c: (c.provider.distribution, c.provider.entry_point))

    def discard(self, provider: Provider) -> None:
        """Forget everything `provider` registered (used when its hook fails halfway)."""
        for by_name in self._components.values():
            for name, providers in list(by_name.items()):
                providers[:] = [c for c in providers if c.provider != provider]
                if not providers:
                    del by_name[name]

    def kind(self, kind: str) -> ComponentMap:
        if kind not in self._components:
            raise UnknownComponentError("kinds", kind, self._components)
        return ComponentMap(kind, self._components[kind], self.failures)

    def component(self, kind: str, name: str) -> Component:
        """The full record (class and provider) of the component `name` (plain or qualified) picks;
        raises `UnknownComponentError` or `DuplicateComponentError` like the kind's mapping."""
        return self.kind(kind).component(name)

    def components(self, kind: str | None = None) -> list[Component]:
        """Every component, each provider of a colliding name too, by kind, name, distribution."""
        kinds = [kind] if kind else list(self._components)
        return [
            c for k in kinds for n in sorted(self._components[k]) for c in self._components[k][n]
        ]

    def answers_to(self, component: Component) -> list[str]:
        """The names that pick `component`: its plain name (unless taken or ambiguous), qualified."""
        plain = resolve(self._components[component.kind][component.name]) is component
        return [component.name, component.qualified] if plain else [component.qualified]

    def collisions(self) -> list[list[Component]]:
        """Every name registered under one kind by more than one provider, with all of them (the
        built-in first where one keeps the plain name)."""
        return [
            sorted(providers, key=lambda c: not c.provider.is_builtin)
            for by_name in self._components.values()
            for _, providers in sorted(by_name.items())
            if len(providers) > 1
        ]

    def shadowed(self) -> list[Component]:
        """Plugins' components whose plain name is a built-in's: reachable qualified only."""
        return [
            c
            for providers in self.collisions()
            if providers[0].provider.is_builtin
            for c in providers[1:]
        ]

    activations = property(lambda self: self.kind("activations"))
    losses = property(lambda self: self.kind("losses"))
    initializers = property(lambda self: self.kind("initializers"))
    optimizers = property(lambda self: self.kind("optimizers"))
    schedulers = property(lambda self: self.kind("schedulers"))
    solvers = property(lambda self: self.kind("solvers"))
    datasets = property(lambda self: self.kind("datasets"))
    metrics = property(lambda self: self.kind("metrics"))
    executors = property(lambda self: self.kind("executors"))
