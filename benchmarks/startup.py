"""Time `nnrun --help` against `python -c "import click"` with 20 dummy plugin distributions
installed, each of which imports torch: help must not import any plugin, so the installed plugins
must not slow it down. `nnrun --version`, `nnrun check --help` and `nnrun plugins` (which does load
them all, once) are timed beside it.

    python benchmarks/startup.py
    python benchmarks/startup.py --plugins 20 --repeats 21

The plugins are `*.dist-info` folders with an `entry_points.txt` in a temporary directory put on
PYTHONPATH, which importlib.metadata finds as pip-installed distributions. Every command runs in a
fresh interpreter, the commands interleaved in each round so that a busy machine slows them alike;
printed are each command's median wall time and its ratio to `import click` (goal: at most 1.5×).
`rows()` (the suite's `python -m benchmarks --only startup`) times `--help`, `show`, `compare`,
`check` and the roots example (`examples/roots.toml`) against its own solve time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ROOTS = EXAMPLES / "roots.toml"

PLUGIN = """import torch

import nnrun


class Identity{index}(nnrun.Activation):
    def forward(self, x):
        return x

    def backward(self, x, y, grad_y):
        return grad_y


@nnrun.hookimpl
def register_activations(register):
    register("identity{index}", Identity{index})
"""


def install_dummy_plugins(site: Path, count: int) -> None:
    for index in range(count):
        module = f"nnrun_dummy{index}"
        (site / f"{module}.py").write_text(PLUGIN.format(index=index))
        info = site / f"nnrun_dummy{index}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: nnrun-dummy{index}\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(f"[nnrun]\ndummy{index} = {module}\n")


def nnrun_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m nnrun`."""
    script = shutil.which("nnrun", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "nnrun"]


def time_commands(
    commands: dict[str, list[str]], env: dict[str, str], repeats: int, warmup: int = 0
) -> dict[str, float]:
    """Median wall seconds of each command, each run in a fresh process, interleaved per round;
    the first `warmup` rounds are not counted."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(warmup):
        for command in commands.values():
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
    for _ in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def plugin_env(site: str, count: int, nnrun: list[str]) -> dict[str, str]:
    """The environment with `count` dummy plugin distributions installed in `site`, checked."""
    install_dummy_plugins(Path(site), count)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([site, os.environ.get("PYTHONPATH", "")])}
    listing = subprocess.run([*nnrun, "plugins", "--json"], env=env, capture_output=True, text=True)
    found = sum(
        c["distribution"].startswith("nnrun-dummy")
        for c in json.loads(listing.stdout)["components"]["activations"]
    )
    assert found == count, f"{found} of {count} dummy plugins listed"
    return env


def rows(repeats: int, plugins: int = 20) -> list[dict]:
    """The suite's rows: `--help` against `import click` (limit 1.5), `show`, `compare` and
    `check` (with what each imports), and the roots example's wall time against its solve."""
    nnrun = nnrun_command()
    with tempfile.TemporaryDirectory() as work:
        site, out = Path(work) / "site", Path(work) / "runs"
        site.mkdir()
        env = plugin_env(str(site), plugins, nnrun)
        run_dir = out / "shown"
        subprocess.run(
            [*nnrun, str(ROOTS), "-q", "--out", str(run_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        fresh = iter(range(10**6))

        def roots() -> None:  # a new run directory each time
            subprocess.run(
                [*nnrun, str(ROOTS), "-q", "--out", str(out / str(next(fresh)))],
                env=env,
                capture_output=True,  # its "run directory:" line would clutter the table
                check=True,
            )

        commands = {
            "click": [sys.executable, "-c", "import click"],
            "torch": [sys.executable, "-c", "import torch"],
            "help": [*nnrun, "--help"],
            "show": [*nnrun, "show", str(run_dir)],
            "compare": [*nnrun, "compare", str(run_dir), str(run_dir)],
            "check": [*nnrun, "check", str(EXAMPLES / "x_squared.toml")],
        }
        times = time_commands(commands, env, repeats, warmup=1)
        roots()  # warm-up
        roots_times = []
        for _ in range(repeats):
            started = time.perf_counter()
            roots()
            roots_times.append(time.perf_counter() - started)
        solves = [
            json.loads((d / "summary.json").read_text())["runs"][0]["seconds"]
            for d in out.iterdir()
            if d != run_dir
        ]
    roots_wall, solve = statistics.median(roots_times), statistics.median(solves)
    click_ms, torch_ms = times["click"] * 1e3, times["torch"] * 1e3
    free = "torch not imported (a test checks)"
    return [
        _row(
            "startup: nnrun --help vs import click",
            times["help"] * 1e3,
            click_ms,
            1.5,
            f"{plugins} plugin distributions installed, none imported",
        ),
        _row("startup: nnrun show RUN vs import click", times["show"] * 1e3, click_ms, None, free),
        _row(
            "startup: nnrun compare vs import click", times["compare"] * 1e3, click_ms, None, free
        ),
        _row(
            "startup: nnrun check x_squared vs import torch",
            times["check"] * 1e3,
            torch_ms,
            None,
            "validation builds each component: needs torch",
        ),
        _row(
            "roots example: wall vs its solve",
            roots_wall * 1e3,
            solve * 1e3,
            None,
            f"summary.json seconds; import torch alone {torch_ms:.0f} ms",
        ),
    ]


def _row(case: str, ours: float, reference: float, limit: float | None, note: str) -> dict:
    ratio = ours / reference if reference else None
    return {
        "case": case,
        "nnrun": ours,
        "reference": reference,
        "unit": "ms",
        "ratio": ratio,
        "limit": limit,
        "note": note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    nnrun = nnrun_command()
    commands = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "nnrun --help": [*nnrun, "--help"],
        "nnrun --version": [*nnrun, "--version"],
        "nnrun check --help": [*nnrun, "check", "--help"],
        "nnrun plugins": [*nnrun, "plugins", "--json"],
    }
    with tempfile.TemporaryDirectory() as site:
        env = plugin_env(site, args.plugins, nnrun)
        times = time_commands(commands, env, args.repeats)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {args.plugins} plugin "
        f"distributions importing torch, median of {args.repeats} fresh processes each"
    )
    baseline = times['python -c "import click"']
    for name, median in times.items():
        print(f"{name:28} {median * 1000:8.1f} ms  {median / baseline:5.2f}x import click")


if __name__ == "__main__":
    main()
