"""Time the seed experiment's training step: nnrun's hand-written backward vs torch autograd +
torch.optim, on the same 1-100-1 sigmoid network, data and optimizer (SGD, momentum 0.99), in one
process run. Prints the median time per step over repeats and the ratio nnrun / torch.

    python benchmarks/train_step.py            # batch sizes 1 and 256
    python benchmarks/train_step.py --repeats 9 --epochs 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

import nnrun
from nnrun.experiment.train import Trainer, TrainSettings

N, LR, MOMENTUM = 2000, 0.001, 0.99


def data(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(N, 1, generator=generator, dtype=torch.float64) * 4 - 2
    y = x**2 + 0.1 * torch.randn(N, 1, generator=generator, dtype=torch.float64)
    return x.float().to(device), y.float().to(device)


def nnrun_epoch_seconds(x, y, batch_size: int, epochs: int, registry) -> float:
    torch.manual_seed(0)
    model = nnrun.MLP([1, 100, 1], activation=registry.activations["sigmoid"](), device=x.device)
    optimizer = registry.optimizers["sgd"](model.parameters(), lr=LR, momentum=MOMENTUM)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size)
    trainer = Trainer(
        model, registry.losses["mse"](), optimizer, None, settings, (x, y), None, torch.Generator()
    )
    started = time.perf_counter()
    trainer.fit()
    _sync(x)
    return (time.perf_counter() - started) / epochs


def torch_epoch_seconds(x, y, batch_size: int, epochs: int) -> float:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 1)
    ).to(x.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    epoch_losses: list[float] = []
    started = time.perf_counter()
    for _ in range(epochs):
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach()  # the same per-batch bookkeeping nnrun's trainer does
        with torch.no_grad():  # and the epoch-end loss of the final weights on the whole set
            epoch_losses.append(torch.nn.functional.mse_loss(model(x), y).item())
    _sync(x)
    return (time.perf_counter() - started) / epochs


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    registry = nnrun.load_registry()
    x, y = data(args.device)
    print(f"$ python {' '.join(sys.argv)}")
    print(
        f"nnrun {nnrun.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, device {args.device}; median of {args.repeats} repeats"
    )
    print(
        f"{'batch':>6} {'steps':>6} {'nnrun µs/step':>14} {'torch µs/step':>14} {'nnrun/torch':>12}"
    )
    for batch_size in args.batch_sizes:
        steps = -(-N // batch_size)
        nnrun_epoch_seconds(x, y, batch_size, 1, registry)  # warm-up
        torch_epoch_seconds(x, y, batch_size, 1)
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved so drifting machine load hits both alike
            ours.append(nnrun_epoch_seconds(x, y, batch_size, args.epochs, registry))
            theirs.append(torch_epoch_seconds(x, y, batch_size, args.epochs))
        a, b = statistics.median(ours) / steps * 1e6, statistics.median(theirs) / steps * 1e6
        print(f"{batch_size:>6} {steps:>6} {a:>14.1f} {b:>14.1f} {a / b:>12.2f}")


if __name__ == "__main__":
    main()
