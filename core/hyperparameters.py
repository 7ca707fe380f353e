"""A component's hyperparameters, read from its constructor's signature and validated by pydantic.

The signature is the single source of truth: the names and defaults `nnrun plugins` shows, the keys
an experiment file may set, and their types all come from it. Types are strict, like the rest of
the experiment file (`lr = "0.01"` or `nesterov = 0` is a mistake, not a value to coerce); an int
passes where a float is annotated, and a hyperparameter without an annotation takes the type of
its default. Value rules (`lr > 0`) belong to the constructor, which nnrun calls once at load time.
"""

from __future__ import annotations

import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any

import pydantic

from nnrun.errors import ConfigError, suggest

#: Leading positional arguments that nnrun passes itself, by kind of component.
_SUPPLIED = {"optimizers": 1, "schedulers": 1}


@dataclass(frozen=True)
class Builds:
    """Marks a hyperparameter whose value is another component's spec, e.g. a warm-up's `after`:
    `Annotated[ComponentFactory, Builds("schedulers")]`. nnrun checks the nested spec like any
    other and hands the constructor a factory for it (see `nnrun.factory`)."""

    kind: str


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    annotation: Any
    default: Any  # inspect.Parameter.empty when required
    builds: str | None = None  # the kind of component this hyperparameter's spec names

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def __str__(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"


def hyperparameters(cls: type[Any], kind: str) -> list[Hyperparameter]:
    """The keyword hyperparameters of `cls(...)`, in signature order."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception:  # unresolvable string annotations: infer from the defaults
        hints = {}
    params = list(signature.parameters.values())[1 + _SUPPLIED.get(kind, 0) :]
    return [
        Hyperparameter(p.name, _annotation(hints, p), p.default, _builds(hints.get(p.name)))
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _annotation(hints: dict[str, Any], parameter: inspect.Parameter) -> Any:
    """The declared type, else the type of a plain default (`momentum=0.0` means float)."""
    if parameter.name in hints:
        return hints[parameter.name]
    default = parameter.default
    if isinstance(default, (bool, int, float, str)):
        return type(default)
    return Any


def _builds(annotation: Any) -> str | None:
    """The kind named by a `Builds` marker in `annotation` (also inside `X | None`)."""
    if annotation is None:
        return None
    for marker in getattr(annotation, "__metadata__", ()):
        if isinstance(marker, Builds):
            return marker.kind
    for arg in typing.get_args(annotation):
        kind = _builds(arg) if arg is not type(None) else None
        if kind:
            return kind
    return None


def accepts_any_keyword(cls: type[Any]) -> bool:
    if cls.__init__ is object.__init__:  # no constructor of its own: takes nothing
        return False
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def validate(cls: type, kind: str, name: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the types of `values` against `cls`'s signature; return them, tuples as tuples.

    `where` names the place in the experiment (e.g. "[optimizer]") for the error message. Nested
    component specs (`Builds`) are left as they are: the caller checks them against their kind.
    """
    known = hyperparameters(cls, kind)
    names = [h.name for h in known]
    if not accepts_any_keyword(cls):
        for key in values:
            if key not in names:
                takes = ", ".join(str(h) for h in known) or "no hyperparameters"
                raise ConfigError(
                    f"{where}: {kind[:-1]} {name!r} does not take {key!r}{suggest(key, names)}; "
                    f"it takes {takes}",
                    key=key,
                )
    missing = [h.name for h in known if h.required and h.name not in values]
    if missing:
        raise ConfigError(f"{where}: {kind[:-1]} {name!r} needs {', '.join(map(repr, missing))}")
    out = dict(values)
    for key in set(values) - set(names):  # taken by **kwargs: no type to check, but finite
        if not _finite(values[key]):
            raise ConfigError(f"{where}: {key} = {values[key]!r}: must be finite", key=key)
    for h in known:
        if h.name in values and h.builds is None:
            out[h.name] = _check(h, values[h.name], f"{where}: {h.name} = {values[h.name]!r}")
    return out


def _check(h: Hyperparameter, value: Any, said: str) -> Any:
    value = _tuples(h.annotation, value)
    length = _fixed_length(h.annotation)
    if length is not None and isinstance(value, tuple) and len(value) != length:
        raise ConfigError(f"{said}: {h.name} takes {length} values", key=h.name)
    try:
        value = pydantic.TypeAdapter(
            h.annotation, config=pydantic.ConfigDict(arbitrary_types_allowed=True, strict=True)
        ).validate_python(value)
    except pydantic.PydanticSchemaGenerationError:
        pass  # a type pydantic cannot check: the constructor will
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        index = "".join(f"[{part}]" for part in first["loc"] if isinstance(part, int))
        raise ConfigError(f"{said}: {h.name}{index}: {first['msg']}", key=h.name) from None
    if not _finite(value):
        raise ConfigError(f"{said}: {h.name} must be a finite number", key=h.name)
    return value


def _tuples(annotation: Any, value: Any) -> Any:
    """TOML has arrays only: make one a tuple where the annotation asks for a tuple."""
    if isinstance(value, list) and _has_tuple(annotation):
        return tuple(value)
    return value


def _has_tuple(annotation: Any) -> bool:
    if typing.get_origin(annotation) is tuple or annotation is tuple:
        return True
    return any(_has_tuple(arg) for arg in typing.get_args(annotation))


def _fixed_length(annotation: Any) -> int | None:
    """n for `tuple[X, Y, ...]` of n fixed items (also inside `X | None`), else None."""
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        return None if not args or Ellipsis in args else len(args)
    for arg in typing.get_args(annotation):
        length = _fixed_length(arg)
        if length is not None:
            return length
    return None


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    return True
