"""Time one optimizer step: nnrun's built-ins against torch.optim, in the same process.

Two regimes:

- wide: 20 parameters of 512×512 float32 with fixed random gradients, for every optimizer: nnrun,
  torch.optim's default (per-tensor loop) and, where torch has one, `fused=True`;
- tiny: the training benchmark's 1-100-1 network at batch size 1 (parameters 100×1, 100, 1×100, 1)
  with SGD(momentum=0.99), where the per-step Python overhead is the whole cost; timed with torch's
  default number of threads and with one (where nnrun hands small tensors to the fused kernel).

The contenders are timed in turn within each repeat and the median over repeats is reported, so a
noisy shared machine slows all of them alike. Usage:

    python benchmarks/optimizer_step.py [--quick] [--device cpu|cuda] [--repeats 5] [--steps 50]
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import torch

from nnrun import Parameter
from nnrun.plugins.optimizers import BUILTINS

#: nnrun name -> (torch.optim class or None, torch has fused=True, hyperparameters for both).
CASES: dict[str, tuple[type | None, bool, dict]] = {
    "sgd": (torch.optim.SGD, True, {"momentum": 0.9}),
    "adagrad": (torch.optim.Adagrad, True, {}),
    "rmsprop": (torch.optim.RMSprop, False, {}),
    "adam": (torch.optim.Adam, True, {}),
    "adamw": (torch.optim.AdamW, True, {}),
    "nadam": (torch.optim.NAdam, False, {}),
    "radam": (torch.optim.RAdam, False, {}),
    "adamax": (torch.optim.Adamax, False, {}),
    "adadelta": (torch.optim.Adadelta, False, {}),
    "lion": (None, False, {}),
}

TINY_SHAPES = [(100, 1), (100,), (1, 100), (1,)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_in_turn(
    contenders: dict[str, Callable[[], None]], steps: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each contender, timing them one after another in each repeat."""
    for step in contenders.values():  # warm-up: state allocation, kernel selection, caches
        for _ in range(max(3, steps // 10)):
            step()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, step in contenders.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(times) for name, times in samples.items()}


def contenders_for(
    name: str, shapes: list[tuple[int, ...]], device: torch.device, overrides: dict | None = None
) -> dict[str, Callable[[], None]]:
    """nnrun's, torch's default and torch's fused step for one optimizer, each on its own copy."""
    torch_cls, has_fused, hyperparameters = CASES[name]
    hyperparameters = {**hyperparameters, **(overrides or {})}
    generator = torch.Generator().manual_seed(0)
    values = [torch.randn(shape, generator=generator).to(device) for shape in shapes]
    grads = [torch.randn(shape, generator=generator).to(device) for shape in shapes]

    params = [Parameter(v.clone(), g.clone()) for v, g in zip(values, grads)]
    out = {"nnrun": BUILTINS[name](params, **hyperparameters).step}
    if torch_cls is None:
        return out
    variants = {"torch": {}, "fused": {"fused": True}} if has_fused else {"torch": {}}
    for label, extra in variants.items():
        tensors = [torch.nn.Parameter(v.clone()) for v in values]
        for tensor, g in zip(tensors, grads):
            tensor.grad = g.clone()
        out[label] = torch_cls(tensors, **hyperparameters, **extra).step
    return out


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return f"{numerator / denominator:.2f}" if numerator and denominator else "-"


def _ms(seconds: float | None, scale: float = 1e3) -> str:
    return f"{seconds * scale:.3f}" if seconds else "-"


#: The README's goals: nnrun's step at most torch's default's time and within 1.2x of fused.
LIMIT_TORCH, LIMIT_FUSED = 1.0, 1.2


def rows(repeats: int, device: str = "cpu", steps: int = 20) -> list[dict]:
    """The suite's rows (`python -m benchmarks`): every optimizer on 20 parameters of 512x512
    against torch's default and fused steps, and SGD on the 1-100-1 network at one thread."""
    dev = torch.device(device)
    out = []
    for name in CASES:
        times = time_in_turn(contenders_for(name, [(512, 512)] * 20, dev), steps, repeats, dev)
        for label, limit in (("torch", LIMIT_TORCH), ("fused", LIMIT_FUSED)):
            if label in times:
                out.append(
                    {
                        "case": f"optimizer {name}, 20x512x512 vs {label}",
                        "nnrun": times["nnrun"] * 1e3,
                        "reference": times[label] * 1e3,
                        "unit": "ms/step",
                        "ratio": times["nnrun"] / times[label],
                        "limit": limit,
                        "note": f"torch.optim.{CASES[name][0].__name__}"
                        + (", fused=True" if label == "fused" else ", its default"),
                    }
                )
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sgd = {"lr": 1e-3, "momentum": 0.99}
        times = time_in_turn(contenders_for("sgd", TINY_SHAPES, dev, sgd), 2000, repeats, dev)
    finally:
        torch.set_num_threads(previous)
    out.append(
        {
            "case": "optimizer sgd, 1-100-1 net vs torch",
            "nnrun": times["nnrun"] * 1e6,
            "reference": times["torch"] * 1e6,
            "unit": "µs/step",
            "ratio": times["nnrun"] / times["torch"],
            "limit": LIMIT_TORCH,
            "note": "momentum 0.99, 1 thread",
        }
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 5)
    steps = args.steps or (10 if args.quick else 50)
    tiny_steps = 500 if args.quick else 5000

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}, {platform.machine()}"
    )
    print(f"median of {repeats} repeats of {steps} steps after warm-up\n")

    print("20 parameters of 512×512 float32 (ms per step)")
    header = f"{'optimizer':<10}{'nnrun':>9}{'torch':>9}{'fused':>9}{'nnrun/torch':>13}{'nnrun/fused':>13}"
    print(header)
    print("-" * len(header))
    for name in CASES:
        times = time_in_turn(
            contenders_for(name, [(512, 512)] * 20, device), steps, repeats, device
        )
        ours, theirs, fused = times["nnrun"], times.get("torch"), times.get("fused")
        print(
            f"{name:<10}{_ms(ours):>9}{_ms(theirs):>9}{_ms(fused):>9}"
            f"{_ratio(ours, theirs):>13}{_ratio(ours, fused):>13}"
        )

    print("\n1-100-1 network, batch 1: SGD(lr=1e-3, momentum=0.99) (µs per step)")
    print(header.replace("optimizer", "threads  "))
    print("-" * len(header))
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(
            threads
        )  # on one thread nnrun sends small tensors to the fused kernel
        times = time_in_turn(
            contenders_for("sgd", TINY_SHAPES, device, {"lr": 1e-3, "momentum": 0.99}),
            tiny_steps,
            repeats,
            device,
        )
        ours, theirs, fused = times["nnrun"], times["torch"], times["fused"]
        print(
            f"{threads:<10}{_ms(ours, 1e6):>9}{_ms(theirs, 1e6):>9}{_ms(fused, 1e6):>9}"
            f"{_ratio(ours, theirs):>13}{_ratio(ours, fused):>13}"
        )
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
