"""Where the time of a batch-1 training step goes (issue 14): 1-100-1 sigmoid, MSE, SGD momentum
0.99, 400 samples, inside `Trainer.fit`, on 1 and 2 threads. Not part of the benchmark suite.

It prints, per step (µs, medians of `repeats` interleaved epochs):

- the layers: `Trainer.fit`; the same nnrun calls in a plain loop over `minibatches`; the same
  over batches sliced beforehand; and the floor, the same aten calls written out in a plain loop
  (what is left when every Python layer of nnrun is gone). The differences are each layer's cost;
- the epoch-end pass of `fit` (the loss of the final weights over the whole set, 400×100
  activations: above `nnrun.threads.LARGE`, so on every thread), per step;
- the parts of the step, timed one by one with `time.perf_counter` around each (its own ~0.1 µs
  per call is in them);
- the aten calls of one `fit` step under torch.profiler (top-level calls only, their CPU time with
  the profiler's overhead), and the Python functions under cProfile (tottime, inflated by it).

    python benchmarks/profile_step.py              # 7 repeats
    python benchmarks/profile_step.py --repeats 9
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from train_step import Case, regression_data

import nnrun
from nnrun.experiment.data import minibatches
from nnrun.experiment.train import Trainer, TrainSettings

OPTIONS = {"lr": 1e-3, "momentum": 0.99}


def seed_case() -> Case:
    registry = nnrun.load_registry()
    return Case([1, 100, 1], "sigmoid", "mse", "sgd", OPTIONS, 1, regression_data(400, 1), registry)


def fit(case: Case) -> Trainer:
    model, loss, optimizer = case.nnrun_parts()
    settings = TrainSettings(epochs=1, batch_size=1)
    return Trainer(
        model, loss, optimizer, None, settings, (case.x, case.y), None, torch.Generator()
    )


def per_step(case: Case, body: Callable[[], object]) -> float:
    started = time.perf_counter()
    body()
    return (time.perf_counter() - started) / case.steps


def layer_timers(case: Case) -> dict[str, Callable[[], float]]:
    """One epoch per call, each peeling off one layer of nnrun's Python."""

    def trainer() -> float:
        t = fit(case)
        return per_step(case, t.fit)

    def nnrun_loop(batches: Callable[[], object]) -> Callable[[], float]:
        def timer() -> float:
            model, loss, optimizer = case.nnrun_parts()

            def body() -> None:
                total = torch.zeros((), dtype=torch.float64)
                for xb, yb in batches():  # type: ignore[attr-defined]
                    value, grad = loss.forward_backward(model.forward(xb), yb)
                    model.backward(grad)
                    optimizer.step()
                    total += value
                total.item()

            return per_step(case, body)

        return timer

    sliced = [(case.x[i : i + 1], case.y[i : i + 1]) for i in range(len(case.x))]

    def floor() -> float:
        """The aten calls of nnrun's step (torch.profiler's list), with no Python around them."""
        torch.manual_seed(0)
        w1, b1 = torch.randn(100, 1), torch.randn(100)
        w2, b2 = torch.randn(1, 100) * 0.1, torch.randn(1)
        w1t, w2t = w1.t(), w2.t()
        params = [w1, b1, w2, b2]
        buffers = [torch.zeros_like(p) for p in params]
        x, y = case.x, case.y

        def body() -> None:
            total = torch.zeros((), dtype=torch.float64)
            for i in range(len(x)):
                xb, yb = x[i : i + 1], y[i : i + 1]
                h = torch.sigmoid(torch.addmm(b1, xb, w1t))
                d = torch.addmm(b2, h, w2t) - yb
                value, g = (d * d).mean(), d.mul_(2.0)
                gw2, gb2, gh = g.t().mm(h), g.sum(0), g.mm(w2)
                gz = torch.ops.aten.sigmoid_backward(gh, h)
                grads = [gz.t().mm(xb), gz.sum(0), gw2, gb2]
                torch._fused_sgd_(
                    params, grads, buffers, weight_decay=0.0, momentum=0.99, lr=1e-3,
                    dampening=0.0, nesterov=False, maximize=False, is_first_step=False,
                )  # fmt: skip
                total += value
            total.item()

        return per_step(case, body)

    return {
        "Trainer.fit": trainer,
        "nnrun calls over minibatches()": nnrun_loop(
            lambda: minibatches(case.x, case.y, 1, False, None)
        ),
        "nnrun calls over pre-sliced batches": nnrun_loop(lambda: sliced),
        "floor: the same aten calls, plain loop": floor,
    }


def part_times(case: Case) -> dict[str, float]:
    """µs per step of each part of the step body, `perf_counter` around each."""
    model, loss, optimizer = case.nnrun_parts()
    clock = time.perf_counter
    spent: dict[str, float] = collections.defaultdict(float)
    total = torch.zeros((), dtype=torch.float64)
    batches = iter(minibatches(case.x, case.y, 1, False, None))
    for _ in range(case.steps):
        t0 = clock()
        xb, yb = next(batches)
        t1 = clock()
        pred = model.forward(xb)
        t2 = clock()
        value, grad = loss.forward_backward(pred, yb)
        t3 = clock()
        model.backward(grad)
        t4 = clock()
        optimizer.step()
        t5 = clock()
        total += value
        t6 = clock()
        for name, a, b in (
            ("next batch (minibatches)", t0, t1),
            ("model.forward", t1, t2),
            ("loss.forward_backward", t2, t3),
            ("model.backward", t3, t4),
            ("optimizer.step", t4, t5),
            ("loss_sum += batch_loss", t5, t6),
        ):
            spent[name] += b - a
    return {name: seconds / case.steps * 1e6 for name, seconds in spent.items()}


def aten_calls(case: Case) -> list[tuple[str, float, float]]:
    """(aten op, calls per step, µs per step) of one fit epoch, top-level ops, by time."""
    trainer = fit(case)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        trainer.fit()
    calls: dict[str, int] = collections.Counter()
    micros: dict[str, float] = collections.defaultdict(float)
    for event in prof.events():
        if event.cpu_parent is None and event.name.startswith("aten::"):
            shapes = ",".join("x".join(map(str, s)) for s in event.input_shapes if s)
            key = f"{event.name} [{shapes}]"
            calls[key] += 1
            micros[key] += event.cpu_time_total
    return sorted(
        ((k, calls[k] / case.steps, micros[k] / case.steps) for k in calls), key=lambda r: -r[2]
    )


def python_functions(case: Case, top: int) -> list[tuple[str, float, float]]:
    """(function, calls per step, tottime µs per step) of one fit epoch under cProfile."""
    trainer = fit(case)
    profiler = cProfile.Profile()
    profiler.runcall(trainer.fit)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    out = []
    for (file, line, name), (_, calls, tottime, _, _) in stats.items():
        where = f"{Path(file).name}:{line} {name}" if line else name
        out.append((where, calls / case.steps, tottime / case.steps * 1e6))
    return sorted(out, key=lambda r: -r[2])[:top]


def report(threads: int, repeats: int) -> None:
    torch.set_num_threads(threads)
    case = seed_case()
    timers = layer_timers(case)
    for timer in timers.values():  # warm-up
        timer()
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            times[name].append(timer())
    layers = {name: statistics.median(t) * 1e6 for name, t in times.items()}
    floor = layers["floor: the same aten calls, plain loop"]
    print(f"\n## {threads} thread{'s' * (threads > 1)}: per step, median of {repeats} epochs")
    previous = None
    for name, micros in layers.items():
        extra = "" if previous is None else f"  ({previous - micros:+.1f} µs peeled off)"
        print(f"  {name:<42} {micros:7.1f} µs  {micros / floor:4.2f}× floor{extra}")
        previous = micros
    ends = []
    for _ in range(repeats):  # timed inside fit: after 400 steps on one thread, as it runs there
        trainer = fit(case)
        end_epoch = trainer._end_epoch

        def timed(mean_batch_loss: float, end_epoch=end_epoch) -> dict:
            started = time.perf_counter()
            record = end_epoch(mean_batch_loss)
            ends.append((time.perf_counter() - started) * 1e6)
            return record

        trainer._end_epoch = timed  # type: ignore[method-assign]
        trainer.fit()
    end = statistics.median(ends)
    print(
        f"  of Trainer.fit's, the epoch-end pass over the training set: {end / case.steps:.1f} µs "
        f"a step ({end:.0f} µs once an epoch)"
    )
    print("  parts of the step (perf_counter around each, median of the repeats):")
    parts = [part_times(case) for _ in range(repeats)]
    for name in parts[0]:
        print(f"    {name:<40} {statistics.median(p[name] for p in parts):7.1f} µs")
    print("  aten calls of a fit() step (torch.profiler, top level, with its overhead):")
    rows = aten_calls(case)
    for name, calls, micros in rows[:16]:
        print(f"    {name:<52} {calls:5.2f}/step {micros:7.1f} µs")
    print(
        f"    all {sum(r[1] for r in rows):.1f} top-level aten calls/step: "
        f"{sum(r[2] for r in rows):.1f} µs"
    )
    print("  Python functions of a fit() step (cProfile tottime, inflated by it):")
    functions = python_functions(case, 14)
    for name, calls, micros in functions:
        print(f"    {name:<62} {calls:5.2f}/step {micros:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"$ python {' '.join(sys.argv)}")
    print(f"nnrun {nnrun.__version__}, torch {torch.__version__}")
    for threads in (1, 2):
        report(threads, args.repeats)


if __name__ == "__main__":
    main()
