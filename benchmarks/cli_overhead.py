"""What the whole command line adds on top of nnrun's training loop, and the seed experiment's
wall time against the plain autograd loop it replaces.

    python -m benchmarks.cli_overhead                 # the suite's cases, 7 repeats
    python -m benchmarks.cli_overhead --epochs 20 --repeats 3   # x_squared in full

Three cases, each interleaved per repeat, on one torch thread (what nnrun picks for the seed
network):

- per step: the seed run (x_squared's first run: 1-100-1 sigmoid, SGD momentum 0.99, batch 1,
  2000 samples) through `nnrun FILE.toml -q` called in this process, against nnrun's `Trainer`
  built from the same config and called from Python. Both are timed at 1 and 4 epochs and the
  difference is divided by the 6000 steps between them, so the fixed costs drop out and what
  remains is everything the CLI does per step and per epoch (metrics lines, their syncs, the
  reporter). The run within the command (`execute_run`) is what is compared, as the config,
  plots and report around it cost a fixed ±0.3 s here that would swamp the difference; the
  whole command's slope is printed beside it. Goal: within 1.05x.
- per epoch, 400 one-step epochs (32 samples, batch 32) against 200 of them, likewise.
- whole experiment: `nnrun examples/x_squared.toml -q` (four runs, `--epochs` each; the file
  says 20, 160,000 steps) and the same four runs as the plain loop (torch.nn + torch.optim,
  autograd, the probes predicted every epoch), each in a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
X_SQUARED = ROOT / "examples" / "x_squared.toml"
LIMIT = 1.05


def seed_run_file(folder: Path, overrides: str = "") -> Path:
    """x_squared.toml's tables without its [[runs]]: its first run, `sgd_momentum`, alone."""
    text = X_SQUARED.read_text().split("[[runs]]")[0]
    path = folder / "seed.toml"
    path.write_text(text + overrides)
    return path


def cli_seconds(file: Path, out: Path, epochs: int) -> tuple[float, float]:
    """Wall seconds of `nnrun FILE -q -o train.epochs=E` in this process (imports warm), and of
    the run within it (`execute_run`: data, model, the loop with its per-epoch metrics lines,
    syncs and reporter, the final checkpoint and model file; not the config, plots, report)."""
    from nnrun.cli import main
    from nnrun.experiment import execute

    run_seconds = 0.0
    original = execute.execute_run

    def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal run_seconds
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            run_seconds += time.perf_counter() - started

    execute.execute_run = timed  # the runner imports it from the module at each call
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(
                [str(file), "-q", "--out", str(out), "-o", f"train.epochs={epochs}"],
                standalone_mode=False,
            )
    except SystemExit as exit:
        if exit.code:
            raise RuntimeError(f"nnrun {file} exited with {exit.code}") from None
    finally:
        execute.execute_run = original
    wall = time.perf_counter() - started
    if not run_seconds:
        raise RuntimeError("the CLI did not call execute_run: the benchmark needs updating")
    return wall, run_seconds


def library_seconds(file: Path, epochs: int) -> float:
    """Wall seconds of nnrun's Trainer on the same run, built and called from Python."""
    import nnrun
    from nnrun.experiment.assemble import make_data, make_model, shuffle_generator
    from nnrun.experiment.execute import train_settings
    from nnrun.experiment.train import Trainer
    from nnrun.factory import build

    started = time.perf_counter()
    registry = nnrun.load_registry()
    (run,) = nnrun.load_experiment(file, [f"train.epochs={epochs}"]).runs
    data = make_data(run, registry)
    model = make_model(run, registry)
    optimizer = build(registry, "optimizers", run.optimizer, model.parameters())
    assert run.train is not None
    trainer = Trainer(
        model,
        build(registry, "losses", run.loss),
        optimizer,
        None,
        train_settings(run.train),
        data.train,
        data.val,
        shuffle_generator(run),
    )
    trainer.fit()
    return time.perf_counter() - started


def slopes(file: Path, low: int, high: int, repeats: int) -> dict[str, float]:
    """Median seconds per epoch between `low` and `high` epochs, each repeat's own difference:
    the whole command, the run within it, and the library loop."""
    samples: dict[str, list[float]] = {"cli": [], "run": [], "library": []}
    counter = iter(range(10**6))
    for repeat in range(repeats + 1):  # the first round warms up
        cli = [cli_seconds(file, file.parent / f"run{next(counter)}", e) for e in (low, high)]
        library = [library_seconds(file, e) for e in (low, high)]
        if repeat:
            span = high - low
            samples["cli"].append((cli[1][0] - cli[0][0]) / span)
            samples["run"].append((cli[1][1] - cli[0][1]) / span)
            samples["library"].append((library[1] - library[0]) / span)
    return {name: statistics.median(values) for name, values in samples.items()}


PLAIN_LOOP = """
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
n, epochs = 2000, {epochs}
x = torch.rand(n, 1) * 4 - 2
y = x**2 + 0.1 * torch.randn(n, 1)
probes = torch.tensor([[1.0], [2.0], [-1.0], [-2.0]])
optimizers = {{
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.001, momentum=0.99),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.05),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.001),
    "adam": lambda p: torch.optim.Adam(p, lr=0.001),
}}
for name, make in optimizers.items():
    model = torch.nn.Sequential(torch.nn.Linear(1, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 1))
    optimizer = make(model.parameters())
    loss_fn = torch.nn.MSELoss()
    for epoch in range(epochs):
        for i in range(n):
            optimizer.zero_grad()
            loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            train_loss = loss_fn(model(x), y).item()
            predictions = model(probes)[:, 0].tolist()
        print(name, epoch + 1, train_loss, predictions)
"""


def experiment_seconds(work: Path, epochs: int, repeats: int) -> tuple[float, float]:
    """Median wall seconds of x_squared's four runs: `nnrun ... -q`, and the plain loop."""
    nnrun = [sys.executable, "-m", "nnrun"]
    commands = {
        "nnrun": lambda out: [
            *nnrun,
            str(X_SQUARED),
            "-q",
            "--out",
            str(out),
            "-o",
            f"train.epochs={epochs}",
        ],
        "plain": lambda out: [sys.executable, "-c", PLAIN_LOOP.format(epochs=epochs)],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            done = subprocess.run(command(work / f"x{repeat}"), capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
            samples[name].append(time.perf_counter() - started)
    return statistics.median(samples["nnrun"]), statistics.median(samples["plain"])


def rows(repeats: int, epochs: int = 1, experiment_repeats: int | None = None) -> list[dict]:
    """The suite's rows: CLI per step and per one-step epoch against the library loop (limit
    1.05 per step), and x_squared's wall time against the plain autograd loop."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            seed = seed_run_file(work)
            step = slopes(seed, 1, 4, repeats)
            (work / "tiny").mkdir()
            tiny = seed_run_file(work / "tiny")
            one_step = tiny.read_text().replace("n = 2000", "n = 32")
            tiny.write_text(one_step.replace("batch_size = 1", "batch_size = 32"))
            epoch = slopes(tiny, 200, 400, repeats)
            ours, plain = experiment_seconds(work, epochs, experiment_repeats or repeats)
    finally:
        torch.set_num_threads(previous)
    steps = 2000
    return [
        {
            "case": "CLI per step vs library loop (seed run)",
            "nnrun": step["run"] / steps * 1e6,
            "reference": step["library"] / steps * 1e6,
            "unit": "µs/step",
            "ratio": step["run"] / step["library"],
            "limit": LIMIT,
            "note": f"the run in `nnrun FILE -q`, 4 minus 1 epochs; whole command "
            f"{step['cli'] / steps * 1e6:.1f} µs/step; 1 thread",
        },
        {
            "case": "CLI per one-step epoch vs library loop",
            "nnrun": epoch["run"] * 1e6,
            "reference": epoch["library"] * 1e6,
            "unit": "µs/epoch",
            "ratio": epoch["run"] / epoch["library"],
            "limit": None,
            "note": f"32 samples, batch 32; 400 minus 200 epochs; whole command (report, "
            f"plots) {epoch['cli'] * 1e6:,.0f} µs/epoch",
        },
        {
            "case": f"x_squared, 4 runs x {epochs} epoch(s) vs plain autograd loop",
            "nnrun": ours,
            "reference": plain,
            "unit": "s",
            "ratio": ours / plain,
            "limit": None,
            "note": f"{4 * 2000 * epochs:,} steps; fresh processes, wall incl. startup",
        },
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of x_squared's runs")
    parser.add_argument("--experiment-repeats", type=int, default=None)
    args = parser.parse_args(argv)
    from benchmarks.__main__ import machine, table

    print(f"$ python -m benchmarks.cli_overhead {' '.join(sys.argv[1:] if argv is None else argv)}")
    torch.set_num_threads(1)
    print(machine("cpu"))
    print(f"median of {args.repeats} interleaved repeats after warm-up\n")
    print(table(rows(args.repeats, args.epochs, args.experiment_repeats)))


if __name__ == "__main__":
    main()
