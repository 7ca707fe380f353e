"""Time one training step (forward, hand-written backward, SGD step) of a 1-W-W-1 tanh network at
1 and 2 torch threads, for a few widths W and batch sizes, to place `[experiment] threads`' default:
below some work per step, a second thread costs more in synchronisation than it saves.

    python benchmarks/threads.py
    python benchmarks/threads.py --widths 100 1000 --batches 1 256 --steps 200

Prints, per (width, batch), the work per step (batch × parameters, the multiply-adds of a forward
pass), the median time per step at each thread count and the ratio 2 threads / 1 thread.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import nnrun
from nnrun.loading import load_registry


def step_seconds(width: int, batch: int, threads: int, steps: int, repeats: int, registry) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nnrun.MLP([1, width, width, 1], activation=registry.activations["tanh"]())
    optimizer = registry.optimizers["sgd"](model.parameters(), lr=1e-3)
    loss = registry.losses["mse"]()
    x = torch.rand(batch, 1) * 4 - 2
    y = x**2
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            pred = model.forward(x)
            loss.forward(pred, y)
            model.backward(loss.backward(pred, y))
            optimizer.step()
        times.append((time.perf_counter() - started) / steps)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 100, 300, 1000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256, 1024])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    registry = load_registry()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'width':>6} {'batch':>6} {'work':>12} {'1 thread':>11} {'2 threads':>11} {'2/1':>6}")
    for width in args.widths:
        params = 2 * width + width * width + width + width + 1
        for batch in args.batches:
            one, two = (
                step_seconds(width, batch, t, args.steps, args.repeats, registry) for t in (1, 2)
            )
            print(
                f"{width:>6} {batch:>6} {batch * params:>12,} {one * 1e6:>9.0f}us "
                f"{two * 1e6:>9.0f}us {two / one:>6.2f}"
            )


if __name__ == "__main__":
    main()
