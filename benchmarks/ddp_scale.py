"""Data-parallel scaling: measured here at 1, 2 and 3 ranks (gloo on loopback), then on paper.

Measured, per network and number of ranks N: the median time of one training step (forward,
hand-written backward, bucketed all-reduce, Adam) of nnrun's `DataParallel`, and of the reference,
torch autograd + torch.optim.Adam under `DistributedDataParallel` (gloo, bucket_cap_mb = 25), timed
in turn within each repeat in the same rank processes; plus the bytes nnrun all-reduces per step
and the all-reduce's own share of the step. N = 1 is one plain process (no process group). Every
rank computes with one torch thread, as nnrun does below 1e9 batch x parameters (3 ranks on this
2-core machine share its cores). The global batch stays fixed (strong scaling, as `--nproc`
trains): each rank takes batch / N rows.

On paper: ring all-reduce time = 2(N-1)/N * bytes / bandwidth + latency * buckets * 2(N-1), and
compute per rank = the single process's measured step / N (for the 50 M-parameter network: 6 FLOPs
per parameter and row, at the matmul FLOP rate measured here), over a 100 Gb/s network, with a
latency of 5, 10 or 20 us per hop. The compute / N term ignores the per-step fixed cost (Python,
kernel launches), which does not shrink with N: for the tiny seed network the model is generous.

    python benchmarks/ddp_scale.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

#: name -> (layer widths, global batch, steps per repeat)
NETWORKS: dict[str, tuple[list[int], int, int]] = {
    "seed 1-100-1": ([1, 100, 1], 32, 200),
    "784-512-512-10": ([784, 512, 512, 10], 256, 20),
}
#: The network only modelled: 50.3 M parameters, global batch 1024.
BIG = ("50M 2048-4096x3-2048", [2048, 4096, 4096, 4096, 2048], 1024)
RANKS = (1, 2, 3)
ON_PAPER = (8, 64, 256)
BANDWIDTH = 100e9 / 8  # bytes/s: 100 Gb/s
LATENCIES = (5e-6, 10e-6, 20e-6)  # per hop
BUCKET_BYTES = 25 * 2**20


def _contenders(widths: list[int], rows: int, parallel: Any, ddp: bool) -> dict[str, Any]:
    """One step of nnrun and of the reference on this rank's `rows` rows, same data and init."""
    from nnrun.model import MLP
    from nnrun.plugins.activations import ReLU
    from nnrun.plugins.losses import MSE
    from nnrun.plugins.optimizers.adam import Adam

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, widths[0], generator=generator)
    y = torch.randn(rows, widths[-1], generator=generator)
    torch.manual_seed(0)
    model, loss = MLP(widths, ReLU()), MSE()
    optimizer = Adam(model.parameters(), lr=1e-3)
    reduce_seconds = [0.0]

    def nnrun_step() -> None:
        pred = model.forward(x)
        batch_loss = loss.forward(pred, y)
        model.backward(loss.backward(pred, y))
        if parallel is not None:
            started = time.perf_counter()
            parallel.weight = 1 / parallel.world.size  # even shards of the global batch
            parallel.all_reduce(optimizer.params, batch_loss)
            reduce_seconds[0] += time.perf_counter() - started
        optimizer.step()

    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    module: torch.nn.Module = torch.nn.Sequential(*layers[:-1])
    reference_optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    if ddp:
        module = torch.nn.parallel.DistributedDataParallel(module, bucket_cap_mb=25)

    def reference_step() -> None:
        reference_optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(module(x), y).backward()
        reference_optimizer.step()

    return {"nnrun": nnrun_step, "reference": reference_step, "reduce": reduce_seconds}


def _rank(rank: int, size: int, rendezvous: str, out: str, repeats: int, quick: bool) -> None:
    import torch.distributed as dist

    from nnrun.experiment.distributed import DataParallel, World

    torch.set_num_threads(1)  # what nnrun picks for networks this size (README, Performance)
    parallel = None
    if size > 1:
        dist.init_process_group(
            "gloo",
            init_method=rendezvous,
            rank=rank,
            world_size=size,
            timeout=timedelta(seconds=120),
        )
        parallel = DataParallel(World(rank, size, rank, size), 25, dist.group.WORLD, None)
    results = {}
    for name, (widths, batch, steps) in NETWORKS.items():
        steps = max(5, steps // 5) if quick else steps
        rows = len(range(rank, batch, size))  # batch / N, the first ranks one more if uneven
        step = _contenders(widths, rows, parallel, ddp=size > 1)
        samples: dict[str, list[float]] = {"nnrun": [], "reference": []}
        for label in samples:  # warm-up
            for _ in range(3):
                step[label]()
        calls_before, bytes_before = (parallel.calls, parallel.bytes) if parallel else (0, 0)
        step["reduce"][0] = 0.0
        for _ in range(repeats):
            for label in samples:
                if parallel is not None:
                    dist.barrier()
                started = time.perf_counter()
                for _ in range(steps):
                    step[label]()
                samples[label].append((time.perf_counter() - started) / steps)
        per_step = repeats * steps
        fixed = None
        if size == 1:  # the per-step cost that does not shrink with rows: a step of one row
            one_row = _contenders(widths, 1, None, ddp=False)["nnrun"]
            for _ in range(3):
                one_row()
            fixed = statistics.median(_timed(one_row, steps) for _ in range(repeats))
        results[name] = {
            "fixed": fixed,
            "nnrun": statistics.median(samples["nnrun"]),
            "reference": statistics.median(samples["reference"]),
            "bytes": (parallel.bytes - bytes_before) // per_step if parallel else 0,
            "calls": (parallel.calls - calls_before) / per_step if parallel else 0,
            "reduce": step["reduce"][0] / per_step,
        }
    if rank == 0:
        torch.save(results, f"{out}/results.pt")
    if parallel is not None:
        dist.destroy_process_group()


def _timed(step: Any, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def measure(
    repeats: int, quick: bool = False, ranks: tuple[int, ...] = RANKS
) -> dict[int, dict[str, dict[str, float]]]:
    """{N: {network: figures}} for N in `ranks` (1, 2, 3) on this machine."""
    import torch.multiprocessing as mp

    measured = {}
    for size in ranks:
        with tempfile.TemporaryDirectory() as folder:
            rendezvous = f"file://{folder}/rendezvous"
            mp.spawn(_rank, (size, rendezvous, folder, repeats, quick), size)
            measured[size] = torch.load(Path(folder) / "results.pt")
    return measured


def matmul_flops(repeats: int) -> float:
    """FLOP/s of a 1024x1024 float32 matrix product on one thread, median of repeats."""
    torch.set_num_threads(1)  # one rank's rate
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        times.append((time.perf_counter() - started) / 10)
    return 2 * 1024**3 / statistics.median(times)


def parameters(widths: list[int]) -> int:
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))


def ring_seconds(nbytes: int, ranks: int, latency: float) -> float:
    """One ring all-reduce of `nbytes` in 25 MiB buckets over `ranks` ranks."""
    buckets = max(1, math.ceil(nbytes / BUCKET_BYTES))
    hops = 2 * (ranks - 1)
    return hops / ranks * nbytes / BANDWIDTH + latency * buckets * hops


def model_rows(measured: dict[int, dict[str, dict[str, float]]], flops: float) -> list[dict]:
    """Speed-up over one process at 8, 64 and 256 ranks, per network and latency."""
    cases = [
        (name, widths, batch, measured[1][name]["nnrun"], measured[1][name]["fixed"])
        for name, (widths, batch, _) in NETWORKS.items()
    ]
    name, widths, batch = BIG
    cases.append((name, widths, batch, 6 * parameters(widths) * batch / flops, None))
    rows = []
    for name, widths, batch, single, fixed in cases:
        nbytes = 4 * (parameters(widths) + 2)  # float32 gradients, the loss and the stop flag
        for ranks in ON_PAPER:
            row: dict[str, Any] = {"network": name, "ranks": ranks, "single_ms": single * 1e3}
            row["bytes"] = nbytes
            if batch < ranks:
                row["note"] = f"batch {batch} < {ranks} ranks: nnrun refuses"
                rows.append(row)
                continue
            row["compute_ms"] = single / ranks * 1e3
            for latency in LATENCIES:
                step = single / ranks + ring_seconds(nbytes, ranks, latency)
                row[f"speedup_{latency * 1e6:.0f}us"] = single / step
            if fixed is not None:  # compute per rank = fixed + (single - fixed) / N, at 10 us
                compute = fixed + max(single - fixed, 0.0) / ranks
                row["speedup_fixed"] = single / (compute + ring_seconds(nbytes, ranks, 10e-6))
            best = row["speedup_5us"]
            row["note"] = (
                "pays off"
                if row["speedup_20us"] > 1
                else ("pays off only at low latency" if best > 1 else "does not pay off")
            )
            if row.get("speedup_fixed", 2.0) <= 1:
                row["note"] += ", but not once the fixed per-step cost is counted"
            rows.append(row)
    return rows


def rows(repeats: int) -> list[dict]:
    """The measured step times, for `python -m benchmarks`: nnrun against torch DDP, at most one
    rank per core (more measure the cores' sharing, which the script alone still shows)."""
    cores = os.cpu_count() or 1
    measured = measure(repeats, repeats < 7, tuple(n for n in RANKS if n <= max(cores, 1)))
    out = []
    for size, networks in measured.items():
        for name, figures in networks.items():
            note = (
                "one process"
                if size == 1
                else (
                    f"{figures['bytes']} B/step all-reduced in {figures['calls']:.0f} call(s), "
                    f"{figures['reduce'] * 1e3:.3f} ms of it; gloo loopback"
                )
            )
            out.append(
                {
                    "case": f"ddp_scale {name} N={size}",
                    "nnrun": figures["nnrun"] * 1e3,
                    "reference": figures["reference"] * 1e3,
                    "unit": "ms/step",
                    "ratio": figures["nnrun"] / figures["reference"],
                    "limit": None,
                    "note": note,
                }
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer steps per repeat")
    args = parser.parse_args(argv)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores (2-core shared machine here, under load from other jobs)"
    )
    measured = measure(args.repeats, args.quick)
    print("\nmeasured (median of interleaved repeats; reference = torch autograd + Adam + DDP)")
    print(
        f"{'network':<16} {'N':>2} {'nnrun ms':>9} {'torch ms':>9} {'ratio':>6} "
        f"{'B/step':>9} {'calls':>5} {'reduce ms':>9}"
    )
    for size, networks in measured.items():
        for name, f in networks.items():
            print(
                f"{name:<16} {size:>2} {f['nnrun'] * 1e3:>9.3f} {f['reference'] * 1e3:>9.3f} "
                f"{f['nnrun'] / f['reference']:>6.2f} {f['bytes']:>9} {f['calls']:>5.0f} "
                f"{f['reduce'] * 1e3:>9.3f}"
            )
    flops = matmul_flops(args.repeats)
    print(f"\non paper: 100 Gb/s ring, 25 MiB buckets, matmul {flops / 1e9:.1f} GFLOP/s measured")
    fixed = {name: f["fixed"] * 1e3 for name, f in measured[1].items()}
    print(f"fixed per-step cost (a one-row step), ms: {fixed}; 'x fixed' counts it, at 10 us")
    print(
        f"{'network':<22} {'N':>4} {'1 proc ms':>10} {'B/step':>10} {'compute ms':>10} "
        f"{'x @5us':>7} {'x @10us':>7} {'x @20us':>7} {'x fixed':>7}  verdict"
    )
    for row in model_rows(measured, flops):
        figures = [
            f"{row[key]:>7.2f}" if key in row else f"{'-':>7}"
            for key in ("speedup_5us", "speedup_10us", "speedup_20us", "speedup_fixed")
        ]
        compute = f"{row['compute_ms']:>10.4f}" if "compute_ms" in row else f"{'-':>10}"
        print(
            f"{row['network']:<22} {row['ranks']:>4} {row['single_ms']:>10.3f} "
            f"{row['bytes']:>10} {compute} {' '.join(figures)}  {row['note']}"
        )


if __name__ == "__main__":
    main()
