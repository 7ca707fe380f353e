"""Plugin discovery: entry points of the group `nnrun`, loaded one at a time so one broken plugin
cannot take the others down (pluggy's own `load_setuptools_entrypoints` stops at the first error)."""

from __future__ import annotations

import os
import warnings
from importlib.metadata import EntryPoint, entry_points

import pluggy

from nnrun import hookspecs
from nnrun.errors import DuplicateComponentError, PluginLoadWarning
from nnrun.registry import PluginFailure, Provider, Registry

ENTRY_POINT_GROUP = hookspecs.PROJECT


class PluginHost:
    """A pluggy plugin manager that remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.providers: dict[str, Provider] = {}
        self.failures: list[PluginFailure] = []

    def register(self, plugin: object, name: str | None = None, provider: Provider | None = None):
        """Register a plugin object or module in-process (tests, notebooks, embedding apps)."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        provider = provider or Provider(name, None, name)
        self.manager.register(plugin, name=name)
        try:
            self.manager.check_pending()  # a misspelled hook name is an error, not a silent no-op
        except pluggy.PluginValidationError:
            self.manager.unregister(name=name)
            raise
        self.providers[name] = provider
        return plugin

    def load_entry_points(self, strict: bool = False) -> None:
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            provider = _provider(entry_point)
            name = f"{provider.distribution}:{entry_point.name}"
            if self.manager.has_plugin(name):
                continue  # the same distribution seen twice on sys.path
            try:
                self.register(entry_point.load(), name=name, provider=provider)
            except Exception as error:
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

                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except DuplicateComponentError:
                    raise
                except Exception as error:
                    registry.discard(provider)
                    failed.add(provider)
                    registry.failures.append(self._fail(provider, error, strict))
        return registry

    def _fail(self, provider: Provider, error: Exception, strict: bool) -> PluginFailure:
        failure = PluginFailure(provider, f"{type(error).__name__}: {error}")
        if strict:
            raise error
        if failure not in self.failures:
            self.failures.append(failure)
            warnings.warn(str(failure), PluginLoadWarning, stacklevel=3)
        return failure


def _provider(entry_point: EntryPoint) -> Provider:
    dist = entry_point.dist
    if dist is None:
        return Provider(entry_point.value, None, entry_point.name)
    return Provider(dist.metadata["Name"] or dist.name, dist.version, entry_point.name)


def load_registry(host: PluginHost | None = None, strict: bool | None = None) -> Registry:
    """Discover every installed plugin (built-ins included) and return the registry.

    With `host`, use that host's plugins (for instance ones registered in-process) instead of the
    installed entry points. `strict` (or `NNRUN_STRICT_PLUGINS=1`) re-raises a plugin's error instead
    of warning and skipping it.
    """
    if strict is None:
        strict = os.environ.get("NNRUN_STRICT_PLUGINS", "") not in ("", "0")
    if host is None:
        host = PluginHost()
        host.load_entry_points(strict=strict)
    return host.registry(strict=strict)
