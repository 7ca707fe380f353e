"""Load a large numeric CSV through the `csv` dataset and measure its time and peak memory, next to
a reference reader, numpy.loadtxt over the whole file (the vectorised reader nnrun builds on).

    python benchmarks/csv_load.py              # about 200 MB
    python benchmarks/csv_load.py --mb 1000    # the 1 GB claim in the README

The file (random numbers, `--columns` per row, the last the target) is written to a temporary
folder. Each load runs in a fresh process, so that its peak resident memory (VmHWM, from
/proc/self/status; Linux only) is its own; the baseline is the same process's peak after importing
torch and nnrun, before the file is read. Prints, per reader, the median seconds over `--repeats`
loads, and the peak memory above the baseline as a multiple of the bytes of the resulting tensors.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, sys, time
import numpy as np, torch
import nnrun
from nnrun.dataset import DataContext
from nnrun.plugins.datasets import CsvData

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

path, reader, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
baseline = peak()
started = time.perf_counter()
if reader == "nnrun":
    data = CsvData(path).load(DataContext(torch.Generator(), dtype))
    tensors = data.x.nbytes + data.y.nbytes
else:  # the reference: one np.loadtxt call over the whole file
    array = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str(dtype).split(".")[1], ndmin=2)
    tensors = array.nbytes
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "baseline": baseline, "peak": peak(), "bytes": tensors}))
"""


def write_csv(path: Path, megabytes: float, columns: int) -> int:
    """A header and rows of random numbers until the file has `megabytes`; returns the rows."""
    rng = np.random.default_rng(0)
    block = io.StringIO()
    np.savetxt(block, rng.normal(size=(10_000, columns)), fmt="%.7g", delimiter=",")
    text = block.getvalue()
    rows_per_block, target = 10_000, int(megabytes * 1e6)
    rows = 0
    with path.open("w") as file:
        file.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        while file.tell() < target:
            file.write(text)
            rows += rows_per_block
    return rows


def load(path: Path, reader: str, dtype: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), reader, dtype],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="size of the CSV file in MB")
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--readers",
        nargs="+",
        choices=["nnrun", "numpy.loadtxt"],
        default=["nnrun", "numpy.loadtxt"],
    )
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.csv"
        rows = write_csv(path, args.mb, args.columns)
        size = path.stat().st_size
        print(
            f"{path.name}: {size / 1e6:.0f} MB, {rows} rows of {args.columns} columns, {args.dtype}"
        )
        for reader in args.readers:
            runs = [load(path, reader, args.dtype) for _ in range(args.repeats)]
            seconds = statistics.median(r["seconds"] for r in runs)
            above = statistics.median(r["peak"] - r["baseline"] for r in runs)
            tensors = runs[0]["bytes"]
            print(
                f"{reader:>14}: {seconds:6.2f} s ({size / 1e6 / seconds:5.1f} MB/s), "
                f"result {tensors / 2**20:7.1f} MiB, peak memory above baseline "
                f"{above / 2**20:7.1f} MiB = {above / tensors:4.2f}x the result "
                f"(baseline {runs[0]['baseline'] / 2**20:.0f} MiB)"
            )


if __name__ == "__main__":
    main()
