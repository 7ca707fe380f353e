"""The one place components are built: from a spec (name and hyperparameters) to an object.

Nested specs (a warm-up scheduler's `after`, a wrapper optimizer's `inner`, marked with `Builds` in
their signature) become
`ComponentFactory`s before the constructor sees them, so a plugin receives what it needs and never
looks anything up in the registry itself. Specs are checked at load time
(`nnrun.config.resolve`); building trusts them and lets the constructor's own errors through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from nnrun.errors import ConfigError
from nnrun.hyperparameters import Builds, hyperparameters, validate
from nnrun.registry import Registry


class ComponentFactory:
    """Builds one component of `kind` from `spec` each time it is called with nnrun's arguments
    (an optimizer for a scheduler, parameters for an optimizer). `spec` is plain data."""

    def __init__(self, registry: Registry, kind: str, spec: Mapping[str, Any], where: str = ""):
        values = dict(spec)
        name = values.pop("name")
        cls = registry.kind(kind)[name]
        values = validate(cls, kind, name, values, where or f"[{kind}]")
        self.registry, self.kind, self.spec = registry, kind, {"name": name, **values}

    def __call__(self, *args: Any) -> Any:
        return build(self.registry, self.kind, self.spec, *args)

    def __repr__(self) -> str:
        return f"ComponentFactory({self.kind!r}, {self.spec!r})"


#: The annotation of a hyperparameter that names a scheduler: the constructor gets a factory.
SchedulerFactory = Annotated[ComponentFactory, Builds("schedulers")]

#: The annotation of a hyperparameter that names another optimizer, e.g. a wrapper's
#: `inner = { name = "adam", lr = 1e-3 }`: the constructor gets a factory to call on its parameters.
InnerOptimizer = Annotated[ComponentFactory, Builds("optimizers")]


def as_spec(spec: Any, what: str = "spec", kind: str = "component") -> dict[str, Any]:
    """`{"name": ..., **hyperparameters}` from a spec object, a table or a bare name; `what` and
    `kind` say what was expected in the message for anything else."""
    if isinstance(spec, str):
        return {"name": spec}
    if hasattr(spec, "to_dict"):
        return dict(spec.to_dict())
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return dict(spec)
    raise ConfigError(
        f"Invalid {what}: {spec!r} (expected a table naming a {kind}, "
        f'like {{ name = "cosine", T_max = 50 }})'
    )


def build(registry: Registry, kind: str, spec: Any, *args: Any) -> Any:
    """Instantiate the component `spec` describes; `args` are what nnrun supplies (an optimizer
    for a scheduler, the parameters for an optimizer)."""
    values = as_spec(spec)
    name = values.pop("name")
    if kind == "solvers":  # a solver's `optimizer` drives its solve(), see `factory`
        values.pop("optimizer", None)
    cls = registry.kind(kind)[name]
    for h in hyperparameters(cls, kind):
        if h.builds is not None and values.get(h.name) is not None:
            nested = as_spec(values[h.name], h.name, h.builds[:-1])
            values[h.name] = ComponentFactory(registry, h.builds, nested, f"[{h.name}]")
    return cls(*args, **values)


def factory(registry: Registry, kind: str, spec: Any) -> ComponentFactory:
    """A factory for `spec`, e.g. the optimizer a solver builds for each of its descents."""
    return ComponentFactory(registry, kind, as_spec(spec, kind=kind[:-1]))
