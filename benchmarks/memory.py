"""Peak memory of a training run at batch 4096: nnrun against torch autograd + torch.optim.

Each side trains a 784-2048-2048-10 relu network with cross-entropy and SGD (momentum 0.9) for a
few steps on the same random batch, in a fresh subprocess of its own, which then reports its
peak resident set (VmHWM from /proc/self/status). Both processes import the same modules and
hold the same data, so the difference is what the training step keeps alive. Linux only.

    python benchmarks/memory.py              # 3 repeats, 3 steps
    python benchmarks/memory.py --repeats 1 --steps 5
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys

SIZES, BATCH, LR, MOMENTUM = [784, 2048, 2048, 10], 4096, 0.01, 0.9


def vm_hwm_mib() -> float:
    """The process's peak resident set so far, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def train(side: str, steps: int) -> float:
    """Train `steps` steps in this process; return its peak memory in MiB."""
    import torch

    import nnrun

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, SIZES[0], generator=generator)
    y = torch.randint(0, SIZES[-1], (BATCH,), generator=generator)
    torch.manual_seed(0)
    if side == "nnrun":
        registry = nnrun.load_registry()
        model = nnrun.MLP(SIZES, activation=registry.activations["relu"]())
        optimizer = registry.optimizers["sgd"](model.parameters(), lr=LR, momentum=MOMENTUM)
        loss = registry.losses["cross_entropy"]()
        for _ in range(steps):  # the trainer's step body
            _, grad = loss.forward_backward(model.forward(x), y)
            model.backward(grad)
            optimizer.step()
    else:
        layers: list[torch.nn.Module] = []
        for n_in, n_out in itertools.pairwise(SIZES):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        reference = torch.nn.Sequential(*layers[:-1])
        torch_optimizer = torch.optim.SGD(reference.parameters(), lr=LR, momentum=MOMENTUM)
        for _ in range(steps):
            value = torch.nn.functional.cross_entropy(reference(x), y)
            torch_optimizer.zero_grad()
            value.backward()
            torch_optimizer.step()
    return vm_hwm_mib()


def peak_mib(side: str, steps: int) -> float:
    """Peak memory of one training run of `side` in a subprocess of its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", side, "--steps", str(steps)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.split()[-1])


#: Pairs of processes at most: a peak is not a timing, it moves by about 1 MiB between processes
#: (the note prints the range), so the suite's seven repeats would only add half a minute.
PAIRS = 3


def rows(repeats: int = PAIRS, steps: int = 3) -> list[dict]:
    """One row: median peak MiB of each side over `repeats` (at most `PAIRS`) interleaved pairs
    of processes."""
    repeats = min(repeats, PAIRS)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(peak_mib("nnrun", steps))
        theirs.append(peak_mib("torch", steps))
    a, b = statistics.median(ours), statistics.median(theirs)
    return [
        {
            "case": f"peak memory (VmHWM), {'-'.join(map(str, SIZES))} relu, CE, SGD-m, "
            f"batch {BATCH}, {steps} steps",
            "nnrun": round(a, 1),
            "reference": round(b, 1),
            "unit": "MiB",
            "ratio": round(a / b, 3),
            "limit": 1.0,
            "note": f"separate processes, median of {repeats} (range {min(ours):.0f}-{max(ours):.0f}"
            f" and {min(theirs):.0f}-{max(theirs):.0f} MiB)",
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--worker", choices=["nnrun", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(train(args.worker, args.steps))
        return
    print(f"$ python {' '.join(sys.argv)}")
    print(f"{'case':<70} {'nnrun':>8} {'torch':>8} {'ratio':>6}")
    for row in rows(args.repeats, args.steps):
        print(
            f"{row['case']:<70} {row['nnrun']:>8.1f} {row['reference']:>8.1f} {row['ratio']:>6.3f}"
        )


if __name__ == "__main__":
    main()
