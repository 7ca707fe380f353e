"""`nnrun new-plugin`: write a plugin package that installs and passes its own tests as generated.

The package (templates in `nnrun/templates/plugin/`, package data) holds a pyproject.toml with
the entry point, `src/<module>/__init__.py` with one working component of the kind and its hook,
`tests/test_<module>.py` calling the conformance kit and `nnrun verify`'s Python API, a README and
a CI workflow (`.github/workflows/test.yml`: install, pytest, `nnrun verify`).
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template

from nnrun.errors import NnrunError

#: --kind -> (registry kind, the kit function its test calls, the README's usage line).
KINDS: dict[str, tuple[str, str, str]] = {
    "optimizer": ("optimizers", "check_optimizer", 'optimizer = { name = "$name", lr = 0.01 }'),
    "activation": ("activations", "check_activation", 'activation = "$name"  # in [model]'),
    "loss": ("losses", "check_loss", 'loss = { name = "$name" }'),
    "initializer": ("initializers", "check_initializer", 'init = "$name"  # in [model]'),
    "scheduler": ("schedulers", "check_scheduler", 'scheduler = { name = "$name", decay = 0.1 }'),
    "solver": ("solvers", "check_solver", 'solver = { name = "$name", a = 1, b = -3, c = 2 }'),
    "dataset": ("datasets", "check_dataset", 'data = { kind = "$name", n = 128 }'),
    "metric": ("metrics", "check_metric", 'metrics = ["$name"]  # in [train]'),
}
#: A distribution name (PEP 508), compared case-insensitively.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


class ScaffoldError(NnrunError):
    """`nnrun new-plugin` cannot write the package asked for."""


def names(distribution: str) -> dict[str, str]:
    """The names derived from a distribution name: `nnrun-fancy-sgd` -> module `nnrun_fancy_sgd`,
    component `fancy_sgd`, class `FancySgd`."""
    if not _NAME.match(distribution):
        raise ScaffoldError(
            f"new-plugin: {distribution!r} is not a distribution name: use letters, digits and "
            f"'-', '_' or '.' between them, like 'nnrun-fancy-sgd'"
        )
    module = re.sub(r"[-_.]+", "_", distribution).lower()
    if module[0].isdigit() or keyword.iskeyword(module) or module in ("nnrun", "torch", "test"):
        raise ScaffoldError(
            f"new-plugin: {distribution!r} gives the module name {module!r}, which "
            f"{'cannot be imported' if module[0].isdigit() or keyword.iskeyword(module) else 'would shadow another package'}; "
            f"choose another name, like 'nnrun-{module}-plugin'"
        )
    component = module.removeprefix("nnrun_") or module
    return {
        "distribution": re.sub(r"[-_.]+", "-", distribution).lower(),
        "module": module,
        "name": component,
        "cls": "".join(part.capitalize() for part in component.split("_")),
        "title": " ".join(part.capitalize() for part in component.split("_")),
    }


def new_plugin(distribution: str, kind: str, directory: Path | None = None) -> Path:
    """Write the package for `distribution` with one `kind` component into `directory` (default:
    ./<distribution>), which must not exist or be empty; return the directory."""
    if kind not in KINDS:
        raise ScaffoldError(f"new-plugin: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    values = names(distribution)
    target = Path(directory) if directory is not None else Path(values["distribution"])
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"new-plugin: {target} already exists and is not an empty directory; nothing was "
            f"written (choose another --dir)"
        )
    registry_kind, check, usage = KINDS[kind]
    values.update(kind=kind, kinds=registry_kind, check=check)
    values["usage"] = "In an experiment file:\n\n```toml\n" + _fill(usage, values) + "\n```"
    values["kit_test"] = _fill(_template(f"tests/{registry_kind}.py"), values).strip()
    values["imports"] = "import torch\n" if "torch." in values["kit_test"] else ""
    files = {
        "pyproject.toml": _template("pyproject.toml"),
        "README.md": _template("README.md"),
        ".github/workflows/test.yml": _template("workflow.yml"),
        f"src/{values['module']}/__init__.py": _template(f"components/{registry_kind}.py"),
        f"tests/test_{values['module']}.py": _template("tests/common.py"),
    }
    for path, text in files.items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_fill(text, values), encoding="utf-8")
    return target


def _template(path: str) -> str:
    file = resources.files("nnrun") / "templates" / "plugin"
    for part in f"{path}.tmpl".split("/"):
        file = file / part
    return file.read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    return Template(text).substitute(values)
