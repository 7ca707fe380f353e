"""A component's hyperparameters, read from its constructor's signature and validated by pydantic.

The signature is the single source of truth: the names and defaults `nnrun plugins` shows, the keys
an experiment file may set, and their types all come from it.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

import pydantic

from nnrun.errors import ConfigError, suggest

#: Leading positional arguments that nnrun passes itself, by kind of component.
_SUPPLIED = {"optimizers": 1, "schedulers": 1}
#: Keyword-only arguments that nnrun passes itself when a component asks for them.
SUPPLIED_KEYWORDS = ("registry",)


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    annotation: Any
    default: Any  # inspect.Parameter.empty when required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def __str__(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"


def hyperparameters(cls: type, kind: str) -> list[Hyperparameter]:
    """The keyword hyperparameters of `cls(...)`, in signature order."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable string annotations: validate as Any
        hints = {}
    params = list(signature.parameters.values())[1 + _SUPPLIED.get(kind, 0) :]
    return [
        Hyperparameter(p.name, hints.get(p.name, Any), p.default)
        for p in params
        if p.kind is p.POSITIONAL_OR_KEYWORD
        or (p.kind is p.KEYWORD_ONLY and p.name not in SUPPLIED_KEYWORDS)
    ]


def supplied_keywords(cls: type, registry: object) -> dict[str, object]:
    """The keyword arguments nnrun supplies to `cls` (for now: the registry, for components that
    build other components, like a warm-up wrapping another scheduler)."""
    parameters = inspect.signature(cls.__init__).parameters
    return {"registry": registry} if "registry" in parameters else {}


def accepts_any_keyword(cls: type) -> bool:
    if cls.__init__ is object.__init__:  # no constructor of its own: takes nothing
        return False
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def validate(cls: type, kind: str, name: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check `values` against `cls`'s signature; return them with pydantic's coercions applied.

    `where` names the place in the experiment (e.g. "[optimizer]") for the error message.
    """
    known = hyperparameters(cls, kind)
    names = [h.name for h in known]
    if not accepts_any_keyword(cls):
        for key in values:
            if key not in names:
                takes = ", ".join(str(h) for h in known) or "no hyperparameters"
                raise ConfigError(
                    f"{where}: {kind[:-1]} {name!r} does not take {key!r}{suggest(key, names)}; "
                    f"it takes {takes}"
                )
    fields = {
        h.name: (h.annotation, ... if h.required else h.default) for h in known if h.name in values
    }
    missing = [h.name for h in known if h.required and h.name not in values]
    if missing:
        raise ConfigError(f"{where}: {kind[:-1]} {name!r} needs {', '.join(map(repr, missing))}")
    model = pydantic.create_model(
        f"{name}_hyperparameters",
        __config__=pydantic.ConfigDict(arbitrary_types_allowed=True, strict=False),
        **fields,
    )
    try:
        checked = model(**{k: v for k, v in values.items() if k in fields})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"{where}: {key} = {first.get('input')!r} is not valid for {kind[:-1]} {name!r}: "
            f"{first['msg']}"
        ) from None
    out = dict(values)
    out.update({k: getattr(checked, k) for k in fields})
    return out
