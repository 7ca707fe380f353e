"""Run the benchmark suite and print one table: case, nnrun, reference, ratio, limit, note.

    python -m benchmarks                        # every module, 7 repeats, CPU
    python -m benchmarks --markdown             # the table as the README shows it
    python -m benchmarks --only solver --repeats 9
    python -m benchmarks --device cuda

Run it from the repository root. Each module in `MODULES` exposes `rows(repeats)` (and takes a
`device` keyword where it can run on a GPU) returning one dict per case with the keys in `KEYS`;
`ratio` is nnrun / reference and `limit` the goal it must not exceed (None: no goal). A module
that is absent, has no `rows` yet, or cannot run on the device asked for is listed with a note,
so the suite runs whatever has been merged. torch's thread count is set to `--threads` before
each module (a case that times another count says so in its note).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: The suite, in the order of the table.
MODULES = [
    "train_step",
    "memory",
    "optimizer_step",
    "executor_overhead",
    "ddp_scale",
    "cli_overhead",
    "startup",
    "solver",
]
KEYS = ("case", "nnrun", "reference", "unit", "ratio", "limit", "note")
COLUMNS = ("case", "nnrun", "reference", "ratio", "limit", "note")


def collect(
    names: Iterable[str], repeats: int, device: str = "cpu", package: str = "benchmarks"
) -> list[dict[str, Any]]:
    """Every row of the modules `names` of `package`, a note row for each module that could not
    give any (absent, no `rows`, not for this device, or raised: its traceback goes to stderr)."""
    import torch

    threads = torch.get_num_threads()
    out: list[dict[str, Any]] = []
    for name in names:

        def note(text: str, name: str = name) -> None:
            out.append({**dict.fromkeys(KEYS), "case": name, "note": text})

        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{package}.{name}":
                raise  # the module exists but needs something that does not
            note("skipped: module not present")
            continue
        rows = getattr(module, "rows", None)
        if rows is None:
            note("skipped: the module has no rows() yet")
            continue
        kwargs: dict[str, Any] = {}
        if "device" in inspect.signature(rows).parameters:
            kwargs["device"] = device
        elif device != "cpu":
            note(f"skipped: CPU only (asked for {device})")
            continue
        torch.set_num_threads(threads)
        started = time.perf_counter()
        try:
            got = rows(repeats, **kwargs)
        except Exception:
            traceback.print_exc()
            note("failed: see the traceback on stderr")
            continue
        finally:
            torch.set_num_threads(threads)
            print(f"benchmarks.{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for row in got:
            missing = set(KEYS) - set(row)
            if missing:
                raise ValueError(f"benchmarks.{name}: a row lacks {sorted(missing)}: {row}")
            out.append(dict(row))
    return out


def _number(value: float | None) -> str:
    """Three significant figures without exponents for the magnitudes the suite prints."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
    return f"{value:.2e}"


def cells(row: dict[str, Any]) -> dict[str, str]:
    """One row as text: values with their unit, the ratio to two decimals, the limit with
    whether the ratio is within it."""
    unit = f" {row['unit']}" if row.get("unit") else ""
    ratio, limit = row.get("ratio"), row.get("limit")
    if ratio is None and row.get("nnrun") and row.get("reference"):
        ratio = row["nnrun"] / row["reference"]
    verdict = ""
    if limit is not None:
        verdict = f"≤ {limit:g} " + ("ok" if ratio is not None and ratio <= limit else "OVER")
    return {
        "case": str(row["case"]),
        "nnrun": "-" if row.get("nnrun") is None else _number(row["nnrun"]) + unit,
        "reference": "-" if row.get("reference") is None else _number(row["reference"]) + unit,
        "ratio": "-" if ratio is None else f"{ratio:.2f}",
        "limit": verdict or "-",
        "note": str(row.get("note") or ""),
    }


def table(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The rows as an aligned text table, or as a Markdown table."""
    texts = [cells(row) for row in rows]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += [
            "| " + " | ".join(t[c].replace("|", "\\|") for c in COLUMNS) + " |" for t in texts
        ]
        return "\n".join(lines)
    widths = {c: max([len(c), *(len(t[c]) for t in texts)]) for c in COLUMNS}
    right = {"nnrun", "reference", "ratio"}

    def line(values: dict[str, str]) -> str:
        return "  ".join(
            values[c].rjust(widths[c]) if c in right else values[c].ljust(widths[c])
            for c in COLUMNS
        ).rstrip()

    header = line({c: c for c in COLUMNS})
    return "\n".join([header, "-" * len(header), *(line(t) for t in texts)])


def machine(device: str) -> str:
    """What the figures were measured on: cores, CPU model, torch version and threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for text in cpuinfo.read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    where = f"{os.cpu_count()} cores ({cpu})"
    if device.startswith("cuda") and torch.cuda.is_available():
        where += f", {torch.cuda.get_device_name(device)}"
    return (
        f"{where}, python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, device {device}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=MODULES,
        metavar="NAME",
        help=f"run only this module (repeatable): {', '.join(MODULES)}",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case (default 7)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for every module (default 1: on a shared machine a second thread "
        "mostly adds waiting; see benchmarks/threads.py)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        print(f"note: {args.repeats} repeats; the README's figures use at least 7", file=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = collect(args.only or MODULES, args.repeats, args.device)
    elapsed = time.perf_counter() - started
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    print(f"$ {command}")
    print(f"{today}, {machine(args.device)}")
    print(f"median of {args.repeats} interleaved repeats after warm-up; {elapsed:.0f} s in all\n")
    print(table(rows, markdown=args.markdown))
    failed = [row["case"] for row in rows if str(row.get("note", "")).startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
