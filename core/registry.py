"""The registry: every loaded component, by kind and name, with the distribution that provides it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from nnrun.errors import DuplicateComponentError, UnknownComponentError
from nnrun.hookspecs import HOOKS


@dataclass(frozen=True)
class Provider:
    """Where a plugin came from: a distribution (with version) and its entry point, or in-process."""

    distribution: str
    version: str | None
    entry_point: str

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.distribution}{version}"


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
        return (
            f"plugin {self.provider.entry_point!r} from {self.provider} failed to load "
            f"and was skipped: {self.error}"
        )


class ComponentMap(Mapping[str, type]):
    """A read-only name -> class mapping whose missing keys raise `UnknownComponentError`."""

    def __init__(self, kind: str, components: dict[str, Component]):
        self._kind, self._components = kind, components

    def __getitem__(self, name: str) -> type:
        try:
            return self._components[name].cls
        except KeyError:
            raise UnknownComponentError(self._kind, name, self._components) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._components))

    def __len__(self) -> int:
        return len(self._components)

    def __repr__(self) -> str:
        return f"<{self._kind}: {', '.join(self)}>"


@dataclass
class Registry:
    """What `nnrun.load_registry()` returns: `.activations`, `.losses`, `.optimizers`, ... ."""

    _components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in HOOKS}
    )
    failures: list[PluginFailure] = field(default_factory=list)

    def add(self, kind: str, name: str, cls: type, provider: Provider) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{provider}: component names are non-empty strings, got {name!r}")
        if not isinstance(cls, type):
            raise TypeError(
                f"{provider}: {kind} {name!r} must be registered as a class, got {cls!r}"
            )
        existing = self._components[kind].get(name)
        if existing is not None and existing.provider != provider:
            raise DuplicateComponentError(
                f"two plugins register the {kind[:-1]} {name!r}: "
                f"{existing.provider} (entry point {existing.provider.entry_point!r}) and "
                f"{provider} (entry point {provider.entry_point!r}); uninstall one of them"
            )
        self._components[kind][name] = Component(kind, name, cls, provider)

    def discard(self, provider: Provider) -> None:
        """Forget everything `provider` registered (used when its hook fails halfway)."""
        for by_name in self._components.values():
            for name in [n for n, c in by_name.items() if c.provider == provider]:
                del by_name[name]

    def kind(self, kind: str) -> ComponentMap:
        if kind not in self._components:
            raise UnknownComponentError("kinds", kind, self._components)
        return ComponentMap(kind, self._components[kind])

    def component(self, kind: str, name: str) -> Component:
        """The full record (class and provider) of one component."""
        self.kind(kind)[name]  # raises UnknownComponentError with suggestions
        return self._components[kind][name]

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(self._components)
        return [self._components[k][n] for k in kinds for n in sorted(self._components[k])]

    activations = property(lambda self: self.kind("activations"))
    losses = property(lambda self: self.kind("losses"))
    initializers = property(lambda self: self.kind("initializers"))
    optimizers = property(lambda self: self.kind("optimizers"))
    schedulers = property(lambda self: self.kind("schedulers"))
    solvers = property(lambda self: self.kind("solvers"))
