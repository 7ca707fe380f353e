"""Time nnrun's training step against torch autograd + torch.optim, side by side in one process:
the same network, initial weights, data, batches, dtype (float32) and optimizer settings.

Cases (the goals of issue 14 in the `limit` column, nnrun / torch time per step):

- batch 1, the seed network 1-100-1 sigmoid, MSE: SGD (momentum 0.99) and Adam, on 1 and on 2
  threads; a whole epoch through `Trainer.fit` against the equivalent torch loop (the same
  per-batch loss bookkeeping and epoch-end loss), divided by its steps;
- batch 256: 1-256-256-1 tanh + MSE, and 784-512-512-10 relu + cross-entropy, with Adam;
- batch 4096: 784-2048-2048-10 relu + cross-entropy, SGD (momentum 0.9), the step alone; and the
  same step against the bare addmm/mm calls of its shapes (the time ratio ≤ 1/0.95 means a FLOP
  rate ≥ 95% of theirs).

Each case is warmed up once, then timed over `repeats` interleaved pairs (nnrun, torch), so that
drifting machine load hits both alike; the figures are medians.

    python benchmarks/train_step.py                # 7 repeats
    python benchmarks/train_step.py --repeats 9
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

import nnrun
from nnrun.experiment.train import Trainer, TrainSettings


def regression_data(n: int, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, inputs, generator=generator) * 4 - 2
    return x, (x**2).sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=generator)


def class_data(n: int, inputs: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, inputs, generator=generator)
    return x, torch.randint(0, classes, (n,), generator=generator)


def torch_model(sizes: list[int], activation: str) -> torch.nn.Sequential:
    module = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
    layers: list[torch.nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out), module[activation]()]
    return torch.nn.Sequential(*layers[:-1])


class Case:
    """One network, data and optimizer, timed through nnrun and through torch."""

    def __init__(self, sizes, activation, loss, optimizer, options, batch, data, registry):
        self.sizes, self.activation, self.loss_name = sizes, activation, loss
        self.optimizer, self.options, self.batch = optimizer, options, batch
        self.x, self.y = data
        self.registry = registry
        self.steps = -(-len(self.x) // batch)

    def nnrun_parts(self):
        torch.manual_seed(0)
        activation = self.registry.activations[self.activation]()
        model = nnrun.MLP(self.sizes, activation=activation)
        optimizer = self.registry.optimizers[self.optimizer](model.parameters(), **self.options)
        return model, self.registry.losses[self.loss_name](), optimizer

    def torch_parts(self):
        torch.manual_seed(0)  # the same initial weights as nnrun's
        model = torch_model(self.sizes, self.activation)
        optimizer_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[self.optimizer]
        loss = {
            "mse": torch.nn.functional.mse_loss,
            "cross_entropy": torch.nn.functional.cross_entropy,
        }[self.loss_name]
        return model, loss, optimizer_class(model.parameters(), **self.options)

    def nnrun_epoch(self) -> float:
        """Seconds per step of one epoch of `Trainer.fit`."""
        model, loss, optimizer = self.nnrun_parts()
        settings = TrainSettings(epochs=1, batch_size=self.batch)
        data = (self.x, self.y)
        trainer = Trainer(model, loss, optimizer, None, settings, data, None, torch.Generator())
        started = time.perf_counter()
        trainer.fit()
        return (time.perf_counter() - started) / self.steps

    def torch_epoch(self) -> float:
        """Seconds per step of the same epoch written with autograd and torch.optim."""
        model, loss, optimizer = self.torch_parts()
        started = time.perf_counter()
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, len(self.x), self.batch):
            xb, yb = self.x[start : start + self.batch], self.y[start : start + self.batch]
            value = loss(model(xb), yb)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            total += value.detach()  # the trainer's per-batch bookkeeping
        with torch.no_grad():  # and its epoch-end loss of the final weights over the whole set
            loss(model(self.x), self.y).item()
        total.item()
        return (time.perf_counter() - started) / self.steps


def median_pair(ours: Callable[[], float], theirs: Callable[[], float], repeats: int):
    a, b = medians([ours, theirs], repeats)
    return a, b


def medians(timers: list[Callable[[], float]], repeats: int) -> list[float]:
    """Each timer's median over `repeats` interleaved rounds, after one warm-up round."""
    for timer in timers:
        timer()
    times: list[list[float]] = [[] for _ in timers]
    for _ in range(repeats):
        for timer, out in zip(timers, times):
            out.append(timer())
    return [statistics.median(out) for out in times]


def on_threads(threads: int, function: Callable[..., tuple[float, float]], *args) -> tuple:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return function(*args)
    finally:
        torch.set_num_threads(previous)


def row(case: str, ours: float, theirs: float, limit: float | None, note: str, unit="µs/step"):
    scale = 1e6 if unit == "µs/step" else 1e3
    return {
        "case": case,
        "nnrun": round(ours * scale, 1),
        "reference": round(theirs * scale, 1),
        "unit": unit,
        "ratio": round(ours / theirs, 3),
        "limit": limit,
        "note": note,
    }


def large_batch_rows(registry, repeats: int) -> list[dict]:
    """Batch 4096, 784-2048-2048-10 relu, CE, SGD-m: the step, torch's, and the bare matmuls."""
    sizes, batch = [784, 2048, 2048, 10], 4096
    case = Case(
        sizes, "relu", "cross_entropy", "sgd", {"lr": 0.01, "momentum": 0.9}, batch,
        class_data(batch, sizes[0], sizes[-1]), registry,
    )  # fmt: skip
    x, y = case.x, case.y
    model, loss, optimizer = case.nnrun_parts()
    reference, torch_loss, torch_optimizer = case.torch_parts()

    def ours() -> float:
        started = time.perf_counter()
        _, grad = loss.forward_backward(model.forward(x), y)  # the trainer's step body
        model.backward(grad)
        optimizer.step()
        return time.perf_counter() - started

    def theirs() -> float:
        started = time.perf_counter()
        value = torch_loss(reference(x), y)
        torch_optimizer.zero_grad()
        value.backward()
        torch_optimizer.step()
        return time.perf_counter() - started

    weights = [torch.randn(n_out, n_in) for n_in, n_out in itertools.pairwise(sizes)]
    biases = [torch.randn(n_out) for n_out in sizes[1:]]
    inputs = [x] + [torch.randn(batch, n) for n in sizes[1:-1]]
    grads = [torch.randn(batch, n) for n in sizes[1:]]

    def bare() -> float:
        """The step's matrix products alone: forward, weight gradients, input gradients."""
        started = time.perf_counter()
        for w, b, a in zip(weights, biases, inputs):
            torch.addmm(b, a, w.t())
        for index, (w, a, g) in enumerate(zip(weights, inputs, grads)):
            g.t().mm(a)
            if index > 0:
                g.mm(w)
        return time.perf_counter() - started

    step, reference_step, products = medians([ours, theirs, bare], repeats)
    flops = 2 * batch * sum(n_in * n_out for n_in, n_out in itertools.pairwise(sizes)) * 3
    flops -= 2 * batch * sizes[0] * sizes[1]  # no input gradient for the first layer
    threads = torch.get_num_threads()
    name = f"batch {batch}, 784-2048-2048-10 relu, CE, SGD-m, {threads} threads"
    return [
        row(name, step, reference_step, 0.95, "the step alone", unit="ms/step"),
        row(
            f"{name}: step vs its bare addmm/mm",
            step,
            products,
            round(1 / 0.95, 3),
            f"FLOP rate {flops / step / 1e9:.1f} vs {flops / products / 1e9:.1f} GFLOP/s "
            f"({products / step:.0%}); goal ≥ 95%",
            unit="ms/step",
        ),
    ]


def rows(repeats: int = 7) -> list[dict]:
    """Every case of the module docstring, one dict each (see README "The training step")."""
    registry = nnrun.load_registry()
    out = []
    seed = regression_data(400, 1)
    for optimizer, options in (("sgd", {"lr": 1e-3, "momentum": 0.99}), ("adam", {"lr": 1e-3})):
        case = Case([1, 100, 1], "sigmoid", "mse", optimizer, options, 1, seed, registry)
        for threads in (1, 2):
            a, b = on_threads(threads, median_pair, case.nnrun_epoch, case.torch_epoch, repeats)
            name = f"batch 1, 1-100-1 sigmoid, MSE, {optimizer}, {threads} thread"
            out.append(row(name + "s" * (threads > 1), a, b, 0.2, f"{case.steps} steps, fit()"))
    threads = torch.get_num_threads()
    batch_256 = [
        (Case([1, 256, 256, 1], "tanh", "mse", "adam", {"lr": 1e-3}, 256,
              regression_data(256 * 20, 1), registry), "1-256-256-1 tanh, MSE", 0.5),
        (Case([784, 512, 512, 10], "relu", "cross_entropy", "adam", {"lr": 1e-3}, 256,
              class_data(256 * 6, 784, 10), registry), "784-512-512-10 relu, CE", 0.8),
    ]  # fmt: skip
    for case, name, limit in batch_256:
        a, b = median_pair(case.nnrun_epoch, case.torch_epoch, repeats)
        label = f"batch 256, {name}, adam, {threads} threads"
        out.append(row(label, a, b, limit, f"{case.steps} steps, fit()", unit="ms/step"))
    out += large_batch_rows(registry, repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"$ python {' '.join(sys.argv)}")
    print(
        f"nnrun {nnrun.__version__}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, median of {args.repeats} repeats"
    )
    print(f"{'case':<62} {'nnrun':>9} {'torch':>9} {'unit':>8} {'ratio':>6} {'goal':>6}  note")
    for r in rows(args.repeats):
        goal = "" if r["limit"] is None else f"≤{r['limit']}"
        print(
            f"{r['case']:<62} {r['nnrun']:>9} {r['reference']:>9} {r['unit']:>8} "
            f"{r['ratio']:>6.3f} {goal:>6}  {r['note']}"
        )


if __name__ == "__main__":
    main()
