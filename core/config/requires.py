"""`[experiment] requires`: the distributions an experiment depends on, checked before it starts.

Each entry is a PEP 508 requirement (`"nnrun-extra-optim>=0.2"`), held against what is installed
and against the plugin switches (`NNRUN_DISABLE_PLUGINS`, `--no-plugins`); a requirement whose
marker does not apply here is skipped. The versions found go into the run's `environment.json`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import InvalidRequirement, Requirement

from nnrun.registry import BUILTIN, normalize

#: The key path of the list, for the line of its problems.
WHERE: tuple[str, ...] = ("experiment", "requires")


def parse_requirement(text: str) -> Requirement:
    """`text` as a requirement, or a `ValueError` saying what one looks like."""
    try:
        return Requirement(text)
    except InvalidRequirement as error:
        reason = str(error).splitlines()[0]
        raise ValueError(
            f'{text!r} is not a requirement like "nnrun-extra-optim>=0.2" (PEP 508): {reason}'
        ) from None


def installed_version(requirement: Requirement) -> str | None:
    try:
        return version(requirement.name)
    except PackageNotFoundError:
        return None


def requirement_problems(requires: list[str]) -> list[str]:
    """Why each requirement is not met here, with the pip command that meets it."""
    from nnrun.loading import DISABLE, Switches

    switches = Switches.from_environment()
    problems = []
    for text in requires:
        requirement = parse_requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        found = installed_version(requirement)
        name = normalize(requirement.name)
        head = f"[experiment] requires {text!r}"
        if found is None:
            problems.append(f"{head}, which is not installed: pip install {str(requirement)!r}")
        elif not requirement.specifier.contains(found, prereleases=True):
            problems.append(
                f"{head}, and {requirement.name} {found} is installed: "
                f"pip install -U {str(requirement)!r}"
            )
        elif name != BUILTIN and switches.builtins_only:
            problems.append(f"{head}, and --no-plugins (NNRUN_NO_PLUGINS=1) leaves it out")
        elif name in switches.disabled:
            problems.append(f"{head}, and {DISABLE} disables it")
    return problems


def required_versions(requires: list[str]) -> dict[str, str | None]:
    """Requirement as written -> the version installed, for `environment.json`."""
    return {text: installed_version(parse_requirement(text)) for text in requires}
