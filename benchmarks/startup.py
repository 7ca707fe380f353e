"""Time `nnrun --help` against `python -c "import click"` with 20 dummy plugin distributions
installed, each of which imports torch: help must not import any plugin, so the installed plugins
must not slow it down. `nnrun --version`, `nnrun check --help` and `nnrun plugins` (which does load
them all, once) are timed beside it.

    python benchmarks/startup.py
    python benchmarks/startup.py --plugins 20 --repeats 21

The plugins are `*.dist-info` folders with an `entry_points.txt` in a temporary directory put on
PYTHONPATH, which importlib.metadata finds as pip-installed distributions. Every command runs in a
fresh interpreter, the commands interleaved in each round so that a busy machine slows them alike;
printed are each command's median wall time and its ratio to `import click` (goal: at most 1.3×).
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
        install_dummy_plugins(Path(site), args.plugins)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([site, os.environ.get("PYTHONPATH", "")]),
        }
        listing = subprocess.run(commands["nnrun plugins"], env=env, capture_output=True, text=True)
        found = sum(
            c["distribution"].startswith("nnrun-dummy")
            for c in json.loads(listing.stdout)["components"]["activations"]
        )
        assert found == args.plugins, f"{found} of {args.plugins} dummy plugins listed"
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - started)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {args.plugins} plugin "
        f"distributions importing torch, median of {args.repeats} fresh processes each"
    )
    baseline = statistics.median(times['python -c "import click"'])
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:28} {median * 1000:8.1f} ms  {median / baseline:5.2f}x import click")


if __name__ == "__main__":
    main()
