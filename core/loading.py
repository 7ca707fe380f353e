"""Plugin discovery: entry points of the group `nnrun`, loaded one at a time so one broken plugin
cannot take the others down (pluggy's own `load_setuptools_entrypoints` stops at the first error).

A plugin's import and each of its hooks run behind a boundary: whatever they raise (`SystemExit`,
`KeyboardInterrupt` and `GeneratorExit` included) fails that plugin only, and what they print goes
to stderr, so that the `--json` output on stdout stays parseable. Only a SIGINT that really arrives
while plugin code runs still interrupts nnrun.

Which plugins load: every distribution's, less those `NNRUN_DISABLE_PLUGINS=dist1,dist2` names;
only the built-ins with `NNRUN_NO_PLUGINS=1` (`nnrun --no-plugins`). A plugin declaring a plugin
API (`nnrun_api = 1` in its module) that this nnrun does not support is skipped like a failure;
one declaring none is taken to be compatible. The switches are environment variables so that the
`--jobs` worker processes load exactly the parent's plugins.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import pluggy

from nnrun import hookspecs
from nnrun.errors import PluginError, PluginLoadError, PluginLoadWarning, suggest
from nnrun.registry import BUILTIN, PluginFailure, Provider, Registry, normalize

ENTRY_POINT_GROUP = hookspecs.PROJECT
#: What plugin code may raise and still fail only itself (a real Ctrl-C is told apart below).
CAUGHT = (Exception, SystemExit, KeyboardInterrupt, GeneratorExit)

P = TypeVar("P")

STRICT, NO_PLUGINS, DISABLE = "NNRUN_STRICT_PLUGINS", "NNRUN_NO_PLUGINS", "NNRUN_DISABLE_PLUGINS"


@dataclass(frozen=True)
class Switches:
    """Which installed plugins to load and how to treat their failures, from the environment."""

    strict: bool = False
    builtins_only: bool = False
    disabled: frozenset[str] = frozenset()  # normalised distribution names

    @classmethod
    def from_environment(cls) -> Switches:
        def on(variable: str) -> bool:
            return os.environ.get(variable, "").strip() not in ("", "0")

        names = os.environ.get(DISABLE, "").split(",")
        return cls(
            on(STRICT), on(NO_PLUGINS), frozenset(normalize(n.strip()) for n in names if n.strip())
        )


class PluginHost:
    """A pluggy plugin manager that remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.providers: dict[str, Provider] = {}
        self.failures: list[PluginFailure] = []

    def register(self, plugin: P, name: str | None = None, provider: Provider | None = None) -> P:
        """Register a plugin object or module in-process (tests, notebooks, embedding apps).

        Raise `PluginError` (and register nothing) if it implements a hook that does not exist, or
        a hook with arguments that the hook does not pass, or declares (`nnrun_api`) a plugin API
        this nnrun does not support.
        """
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        provider = provider or Provider(name, None, name)
        problem = _api_problem(plugin, provider)
        if problem:
            raise PluginError(problem, provider.describe())
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:  # pluggy validates before registering
            raise PluginError(_one_line(str(error)), provider.describe()) from None
        unknown = [c.name for c in self.manager.get_hookcallers(plugin) or () if not c.has_spec()]
        if unknown:
            self.manager.unregister(name=name)
            raise PluginError(_unknown_hooks(unknown), provider.describe())
        self.providers[name] = provider
        return plugin

    def load_entry_points(
        self,
        strict: bool = False,
        distribution: str | None = None,
        disabled: frozenset[str] = frozenset(),
    ) -> None:
        """Import and register every installed plugin, or only `distribution`'s, less the
        `disabled` distributions (names compared normalised; the built-ins cannot be disabled)."""
        disabled = frozenset(map(normalize, disabled))
        if BUILTIN in disabled:
            raise PluginLoadError(
                f"{DISABLE} names {BUILTIN!r}, the built-ins every experiment is made of: they "
                f"cannot be disabled (--no-plugins, or {NO_PLUGINS}=1, loads the built-ins alone)"
            )
        found = [(ep, _provider(ep)) for ep in entry_points(group=ENTRY_POINT_GROUP)]
        installed = {normalize(provider.distribution) for _, provider in found}
        for name in sorted(disabled - installed):
            hint = suggest(name, sorted(installed - {BUILTIN}))
            warnings.warn(
                f"{DISABLE} names {name!r}, which is no installed plugin distribution"
                f"{hint or '; it has no effect'}",
                PluginLoadWarning,
                stacklevel=2,
            )
        for entry_point, provider in found:
            if distribution is not None and normalize(provider.distribution) != normalize(
                distribution
            ):
                continue
            if normalize(provider.distribution) in disabled:
                continue
            name = f"{provider.distribution}:{entry_point.name}"
            if self.manager.has_plugin(name) or provider in {f.provider for f in self.failures}:
                continue  # the same distribution seen twice on sys.path
            interrupt = _Interrupt()
            try:
                with _plugin_code(interrupt):
                    plugin = entry_point.load()
                self.register(plugin, name=name, provider=provider)
            except CAUGHT as error:
                interrupt.reraise_if_real(error)
                self._fail(provider, error, strict)

    def registry(self, strict: bool = False) -> Registry:
        """Call every plugin's hooks and collect what they register."""
        registry = Registry(failures=list(self.failures))
        failed = {failure.provider for failure in self.failures}
        for kind, hook_name in hookspecs.HOOKS.items():
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                provider = self.providers[impl.plugin_name]
                if provider in failed:
                    continue

                def register(name: str, cls: type, kind=kind, provider=provider) -> None:
                    registry.add(kind, name, cls, provider)

                interrupt = _Interrupt()
                try:
                    with _plugin_code(interrupt):
                        returned = impl.function(**{arg: register for arg in impl.argnames})
                    if returned is not None:
                        raise PluginError(
                            f"{hook_name} returned a value of type {type(returned).__name__}: "
                            "hooks register components by calling register(name, cls) and "
                            "return None"
                        )
                except CAUGHT as error:
                    interrupt.reraise_if_real(error)
                    registry.discard(provider)
                    failed.add(provider)
                    registry.failures.append(self._fail(provider, error, strict))
        for component in registry.shadowed():
            warnings.warn(
                f"{component.provider.describe()} registers the {component.kind[:-1]} "
                f"{component.name!r}, the name of a built-in: {component.name!r} stays nnrun's, "
                f"and the plugin's is {component.qualified!r}",
                PluginLoadWarning,
                stacklevel=2,
            )
        return registry

    def _fail(self, provider: Provider, error: BaseException, strict: bool) -> PluginFailure:
        text = (
            error.reason if isinstance(error, PluginError) else f"{type(error).__name__}: {error}"
        )
        failure = PluginFailure(provider, _one_line(text))
        if strict:
            raise PluginLoadError(
                f"{failure} (NNRUN_STRICT_PLUGINS is set; unset it to skip the plugin instead)"
            ) from error
        if failure not in self.failures:
            self.failures.append(failure)
            message = failure.message("failed to load and was skipped")
            warnings.warn(message, PluginLoadWarning, stacklevel=3)
        return failure


@dataclass
class _Interrupt:
    """Whether a real SIGINT arrived while plugin code ran (then its KeyboardInterrupt is nnrun's)."""

    arrived: bool = False

    def reraise_if_real(self, error: BaseException) -> None:
        if self.arrived and isinstance(error, KeyboardInterrupt):
            raise error


@contextlib.contextmanager
def _plugin_code(interrupt: _Interrupt) -> Iterator[None]:
    """Run plugin code with its prints on stderr, noting in `interrupt` any SIGINT that arrives.

    The SIGINT handler in place is still called, so Ctrl-C behaves as it did; off the main thread
    (where handlers cannot be set) a plugin's KeyboardInterrupt is taken for its own.
    """
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        interrupt.arrived = True
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    if previous is not None:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _unknown_hooks(names: list[str]) -> str:
    hooks = sorted(hookspecs.HOOKS.values())
    parts = [f"unknown hook {name!r}{suggest(name, hooks) or '.'}" for name in names]
    return f"{' '.join(parts)} Hooks: {', '.join(hooks)}"


def _one_line(text: str) -> str:
    """A failure is reported in one line, whatever the plugin's message looked like."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _api_problem(plugin: object, provider: Provider) -> str | None:
    """Why `plugin` cannot be used with this nnrun's plugin API, or None (no `nnrun_api`: none)."""
    import nnrun

    declared = getattr(plugin, "nnrun_api", None)
    if declared is None or declared == hookspecs.PLUGIN_API:
        return None
    this = f"this nnrun {nnrun.__version__} supports plugin API {hookspecs.PLUGIN_API}"
    if not isinstance(declared, int) or isinstance(declared, bool):
        return (
            f"nnrun_api must be an int, the plugin API version it was written for, got {declared!r}"
        )
    if declared > hookspecs.PLUGIN_API:
        needs = repr(provider.requires_nnrun) if provider.requires_nnrun else "nnrun"
        return (
            f"written for plugin API {declared}, and {this}: it needs a newer nnrun "
            f"(pip install -U {needs})"
        )
    return f"written for plugin API {declared}, and {this}: upgrade {provider.distribution}"


def _provider(entry_point: EntryPoint) -> Provider:
    dist = entry_point.dist
    if dist is None:
        return Provider(entry_point.value, None, entry_point.name)
    name = dist.metadata["Name"] or dist.name
    return Provider(name, dist.version, entry_point.name, _requirement_on_nnrun(dist.requires))


def _requirement_on_nnrun(requires: list[str] | None) -> str | None:
    """`nnrun>=0.3` out of a distribution's Requires-Dist, markers and extras left out."""
    from packaging.requirements import InvalidRequirement, Requirement

    for text in requires or ():
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if normalize(requirement.name) == BUILTIN and requirement.specifier:
            return f"{BUILTIN}{requirement.specifier}"
    return None


def load_registry(host: PluginHost | None = None, strict: bool | None = None) -> Registry:
    """Discover every installed plugin (built-ins included) and return the registry.

    With `host`, use that host's plugins (for instance ones registered in-process) instead of the
    installed entry points. `strict` (or `NNRUN_STRICT_PLUGINS=1`) turns a plugin's failure into a
    `PluginLoadError` instead of a warning and skipping it. `NNRUN_NO_PLUGINS=1` loads only the
    built-ins, `NNRUN_DISABLE_PLUGINS=dist1,dist2` all but those distributions.
    """
    switches = Switches.from_environment()
    if strict is None:
        strict = switches.strict
    if host is None:
        host = PluginHost()
        host.load_entry_points(
            strict=strict,
            distribution=BUILTIN if switches.builtins_only else None,
            disabled=switches.disabled,
        )
    return host.registry(strict=strict)
