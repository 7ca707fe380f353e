"""The registry: every loaded component, by kind and name, with the distribution that provides it.

Two distributions registering one name is recorded, not raised, so that `nnrun plugins` can still
list everything; using that name raises `DuplicateComponentError` naming both. Every provider of a
name is kept, so that a name qualified by its distribution can pick one later.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from nnrun.errors import DuplicateComponentError, PluginError, UnknownComponentError
from nnrun.hookspecs import HOOKS

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

    def describe(self) -> str:
        """How messages name the plugin: "plugin 'adam' from nnrun-adam 1.0"."""
        return f"plugin {self.entry_point!r} from {self}"


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    cls: type
    provider: Provider


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
    return DuplicateComponentError(
        f"{len(providers)} plugins register the {kind[:-1]} {name!r}: "
        + " and ".join(f"{c.provider} (entry point {c.provider.entry_point!r})" for c in providers)
        + "; uninstall all but one of them"
    )


class ComponentMap(Mapping[str, type]):
    """A read-only name -> class mapping whose missing keys raise `UnknownComponentError`, and whose
    names registered by several distributions raise `DuplicateComponentError`. Only the names that
    can be used are iterated and counted."""

    def __init__(
        self,
        kind: str,
        components: dict[str, list[Component]],
        failures: Sequence[PluginFailure] = (),
    ):
        self._kind, self._components, self._failures = kind, components, list(failures)

    def __getitem__(self, name: str) -> type:
        providers = self._components.get(name)
        if not providers:
            raise self._unknown(name) from None
        if len(providers) > 1:
            raise collision_error(self._kind, name, providers)
        return providers[0].cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and len(self._components.get(name, ())) == 1

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(n for n, providers in self._components.items() if len(providers) == 1))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<{self._kind}: {', '.join(self)}>"

    def _unknown(self, name: str) -> UnknownComponentError:
        error = UnknownComponentError(self._kind, name, self._components)
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
        """The full record (class and provider) of one component."""
        self.kind(kind)[name]  # raises UnknownComponentError or DuplicateComponentError
        return self._components[kind][name][0]

    def components(self, kind: str | None = None) -> list[Component]:
        """Every usable component (collisions left out: see `collisions`), by kind then name."""
        kinds = [kind] if kind else list(self._components)
        return [
            self._components[k][n][0]
            for k in kinds
            for n in sorted(self._components[k])
            if len(self._components[k][n]) == 1
        ]

    def collisions(self) -> list[list[Component]]:
        """Every name registered under one kind by more than one distribution, with all of them."""
        return [
            providers
            for by_name in self._components.values()
            for _, providers in sorted(by_name.items())
            if len(providers) > 1
        ]

    activations = property(lambda self: self.kind("activations"))
    losses = property(lambda self: self.kind("losses"))
    initializers = property(lambda self: self.kind("initializers"))
    optimizers = property(lambda self: self.kind("optimizers"))
    schedulers = property(lambda self: self.kind("schedulers"))
    solvers = property(lambda self: self.kind("solvers"))
    datasets = property(lambda self: self.kind("datasets"))
    metrics = property(lambda self: self.kind("metrics"))
