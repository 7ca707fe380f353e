"""What sending a run to Ray or submitit costs, against the run itself: the first run of the seed
experiment (examples/x_squared.toml, `sgd_momentum`, cut to 5 epochs of 2000 steps) executed in
this process (the reference: the local executor, serial) and as one task on a private local Ray
instance (`address = "local"`, 2 CPUs; started for the experiment, its first task on a new
worker, later ones on a warm worker); and the same run cut to almost nothing, where what is left
is the overhead, on a warm Ray worker and as one submitit job on this machine (`cluster =
"local"`: a new process per run, as a SLURM job is). Each repeat does all of them in turn, so a
busy machine slows them alike; printed are the medians and, from them, what N runs on M
machines pay.

    python benchmarks/executor_overhead.py
    python benchmarks/executor_overhead.py --repeats 7

`rows(repeats)` returns the figures for `python -m benchmarks`.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "x_squared.toml"
#: The run: long enough (about half a second) that the overhead is seen next to real work.
RUN = ["train.epochs=5"]
#: The same run cut to almost nothing (one epoch of 20 samples): what is left is the overhead.
TINY = ["train.epochs=1", "data.n=20"]


def _timed(function: Any) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat: the run here, Ray's start, the run on a new and on a warm Ray worker,
    and the run as a local submitit job."""
    import ray
    import torch

    import nnrun
    from nnrun.executor import ExecutionContext, make_tasks
    from nnrun.experiment.execute import execute_run
    from nnrun.experiment.reporting import SilentReporter
    from nnrun.experiment.rundir import RunDirectory
    from nnrun.plugins.executors import Ray, Submitit

    torch.set_num_threads(1)
    registry = nnrun.load_registry()
    run = nnrun.load_experiment(EXAMPLE, RUN, registry=registry).runs[0]
    tiny = nnrun.load_experiment(EXAMPLE, TINY, registry=registry).runs[0]
    times: dict[str, list[float]] = {
        key: []
        for key in (
            "here",
            "ray_start",
            "ray_new_worker",
            "ray_warm",
            "tiny_here",
            "tiny_ray",
            "tiny_submitit",
        )
    }
    with tempfile.TemporaryDirectory() as temporary:
        for repeat in range(repeats):

            def directory(name: str, repeat: int = repeat) -> RunDirectory:
                return RunDirectory.create(Path(temporary) / f"{repeat}-{name}")

            def execute(executor: Any, name: str, run: Any = run) -> float:
                with directory(name) as out:
                    tasks = make_tasks([run], out.path, False, False)
                    context = ExecutionContext(out.path, registry, SilentReporter(), lambda: False)
                    started = time.perf_counter()
                    (outcome,) = list(executor.execute(tasks, context))
                    seconds = time.perf_counter() - started
                assert outcome.entry is not None and outcome.entry["status"] == "ok", outcome
                return seconds

            for key, which in (("here", run), ("tiny_here", tiny)):
                with directory(key) as out:
                    times[key].append(
                        _timed(
                            lambda which=which, out=out: execute_run(
                                which, out.path, registry, SilentReporter(), False
                            )
                        )
                    )
            times["ray_start"].append(
                _timed(
                    lambda: ray.init(
                        address="local",
                        num_cpus=2,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                )
            )
            try:
                times["ray_new_worker"].append(execute(Ray(), "ray-new"))
                times["ray_warm"].append(execute(Ray(), "ray-warm"))
                times["tiny_ray"].append(execute(Ray(), "ray-tiny", tiny))
            finally:
                ray.shutdown()
            folder = str(Path(temporary) / f"{repeat}-submitit-jobs")
            tiny_jobs = Submitit(cluster="local", folder=folder)
            times["tiny_submitit"].append(execute(tiny_jobs, "submitit-tiny", tiny))
    return times


def rows(repeats: int) -> list[dict[str, Any]]:
    """One row per way of executing the run: its median seconds against the run in this process."""
    times = measure(repeats)
    here = statistics.median(times["here"])
    note = (
        f"x_squared.toml sgd_momentum, {' '.join(RUN)}, median of {repeats}; "
        "reference: the same run in-process"
    )
    out = []
    for key, case in (
        ("ray_warm", "run as a Ray task, warm worker"),
        ("ray_new_worker", "run as a Ray task, new worker"),
    ):
        median = statistics.median(times[key])
        out.append(
            {
                "case": case,
                "nnrun": median,
                "reference": here,
                "unit": "s",
                "ratio": median / here,
                "limit": None,
                "note": f"{note}; overhead {median - here:+.2f} s per run",
            }
        )
    tiny_here = statistics.median(times["tiny_here"])
    for key, case in (
        ("tiny_ray", "tiny run as a Ray task, warm worker"),
        ("tiny_submitit", "tiny run as a submitit job (local cluster)"),
    ):
        median = statistics.median(times[key])
        out.append(
            {
                "case": case,
                "nnrun": median,
                "reference": tiny_here,
                "unit": "s",
                "ratio": median / tiny_here,
                "limit": None,
                "note": f"the run with {' '.join(TINY)}, median of {repeats}; "
                f"overhead {median - tiny_here:+.3f} s per run",
            }
        )
    start = statistics.median(times["ray_start"])
    out.append(
        {
            "case": "Ray local instance start (once per experiment)",
            "nnrun": start,
            "reference": here,
            "unit": "s",
            "ratio": start / here,
            "limit": None,
            "note": f"ray.init(address='local', num_cpus=2), median of {repeats}",
        }
    )
    return out


def break_even(run: float, start: float, overhead: float, slots: int, most: int = 100_000) -> int:
    """The fewest runs of `run` seconds that `slots` CPUs finish sooner, paying `start` once and
    `overhead` per run, than one CPU running them one after another (`most` if none does)."""
    for runs in range(1, most):
        if start + math.ceil(runs / slots) * (run + max(overhead, 0.0)) < runs * run:
            return runs
    return most


def reasoning(table: list[dict[str, Any]], runs: int = 600, slots: int = 2) -> list[str]:
    """What `runs` runs cost on M machines of `slots` CPUs each, against one CPU here."""
    by_case = {row["case"]: row for row in table}
    run = table[0]["reference"]
    # the overheads are measured on the tiny run, where they are not lost in the run's own noise
    warm = by_case["tiny run as a Ray task, warm worker"]["nnrun"]
    warm -= by_case["tiny run as a Ray task, warm worker"]["reference"]
    job = by_case["tiny run as a submitit job (local cluster)"]["nnrun"]
    job -= by_case["tiny run as a submitit job (local cluster)"]["reference"]
    start = by_case["Ray local instance start (once per experiment)"]["nnrun"]
    lines = [
        f"one run: {run:.2f} s here; a Ray task adds {warm:+.2f} s, a submitit job {job:+.2f} s "
        f"(measured on the tiny run), and Ray's start {start:.1f} s once"
    ]
    for machines in (1, 10, 50):
        waves = math.ceil(runs / (machines * slots))
        ray_wall = start + waves * (run + max(warm, 0.0))
        job_wall = waves * (run + max(job, 0.0))
        lines.append(
            f"from {runs} runs a cluster of {machines} machine(s) × {slots} CPUs pays: Ray "
            f"{ray_wall:,.0f} s, SLURM jobs {job_wall:,.0f} s (before queueing), against "
            f"{runs * run:,.0f} s one after another here"
        )
    for machines in (1, 10):
        ray_from = break_even(run, start, warm, machines * slots)
        job_from = break_even(run, 0.0, job, machines * slots)
        lines.append(
            f"a cluster of {machines} machine(s) × {slots} CPUs beats one CPU here from "
            f"{ray_from} runs with Ray (its start counted once) and from {job_from} runs as "
            f"SLURM jobs (before queueing)"
        )
    lines.append(
        f"a run must take longer than its overhead to gain from another machine: with runs of "
        f"{run:.1f} s a submitit job spends {max(job, 0.0) / (run + max(job, 0.0)):.0%} of its "
        f"time starting; group short runs (longer [train] epochs, fewer, larger runs) or use Ray"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    table = rows(args.repeats)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"2-core shared machine, under load from other jobs"
    )
    for row in table:
        print(
            f"{row['case']:44} {row['nnrun']:7.2f} {row['unit']}  "
            f"(in-process {row['reference']:.2f} s, {row['ratio']:.2f}x)  {row['note']}"
        )
    for line in reasoning(table):
        print(line)


if __name__ == "__main__":
    main()
