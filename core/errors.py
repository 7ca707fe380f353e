"""Exceptions nnrun raises on purpose.

Everything a user can cause by what they wrote (a file, a flag, a plugin) is an `NnrunError`; the CLI
prints its message as one paragraph and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class NnrunError(Exception):
    """A problem with the user's input; its message is meant to be read, not debugged."""


class ConfigError(NnrunError, ValueError):
    """An experiment file, override or hyperparameter that cannot be used as written.

    `key` names the offending key inside its table, when the raiser knows it, so that the caller
    who knows the table can point at the key's line.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class MissingDependencyError(ConfigError):
    """A component needs an optional package that is not installed; the message names the extra
    to install. `nnrun verify` reports the component's checks as skipped, not failed."""


class UnknownComponentError(NnrunError, KeyError):
    """A component name that no loaded plugin registered. `also` are names to suggest beyond
    those listed as available (the qualified names of components reachable by their plain name)."""

    def __init__(
        self, kind: str, name: str, available: Iterable[str], also: Iterable[str] = ()
    ) -> None:
        self.kind, self.name, self.available = kind, name, sorted(available)
        self.also = sorted(set(also) - set(self.available))
        super().__init__(self._message())

    def _message(self) -> str:
        singular = self.kind[:-1] if self.kind.endswith("s") else self.kind
        choices = [*self.available, *self.also]
        # `other-dist:sgd` when sgd is another distribution's: that one, not a near spelling
        plain = self.name.rpartition(":")[2]
        same = sorted(
            (c for c in choices if ":" in self.name and c.rpartition(":")[2] == plain),
            key=lambda c: ":" not in c,
        )
        hint = suggest(self.name, choices)
        if same:  # the closest spelling among them, else the first qualified one
            hint = suggest(self.name, same) or f"; did you mean {same[0]!r}?"
        return (
            f"unknown {singular} {self.name!r}{hint}{' ' if hint else '. '}"
            f"Available {self.kind}: {', '.join(self.available) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.args[0]


class DuplicateComponentError(NnrunError):
    """A plain name that two third-party plugins register under one kind: ambiguous until it is
    written qualified (`DIST:NAME`)."""


class PluginLoadWarning(UserWarning):
    """A third-party plugin failed to load, or gives up a name to a built-in; nnrun carries on."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest of `choices`, or an empty string.

    Case is ignored in the comparison (`SGD` -> 'sgd', `Relu` -> 'relu'); the choice is given as
    it is spelt."""
    import difflib  # here, not at the top: `nnrun --help` imports this module and needs no difflib

    spelt = {choice.lower(): choice for choice in reversed(list(choices))}
    close = difflib.get_close_matches(word.lower(), list(spelt), n=1, cutoff=0.6)
    return f"; did you mean {spelt[close[0]]!r}?" if close else ""


class PluginError(NnrunError):
    """A plugin that breaks the plugin contract: an unknown hook, or a registration that is not a
    class of the kind's base class. Raised where the plugin is registered; while loading, that
    plugin is reported as failed and skipped like one that raised."""

    def __init__(self, reason: str, plugin: str = ""):
        self.reason = reason
        super().__init__(f"{plugin}: {reason}" if plugin else reason)


class PluginLoadError(NnrunError):
    """A plugin failed to load with `NNRUN_STRICT_PLUGINS=1`: the one line that is otherwise a
    warning, now an error (the plugin's own exception is its `__cause__`). Also raised for plugin
    switches that cannot be obeyed (disabling the built-ins)."""
