"""Data-parallel training: the bucketed all-reduce against one process's full-batch gradient, and
torchrun runs of 2 and 3 ranks against a single process (in float64 and float32), a resume with
another number of ranks, a rank that dies, and what `--nproc` refuses."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from click.testing import CliRunner

from nnrun.cli import main
from nnrun.config import load_experiment
from nnrun.config.distributed import distributed_problems
from nnrun.experiment.distributed import (
    EXIT_PEER_LOST,
    DataParallel,
    World,
    failure_report,
)
from nnrun.experiment.train import StopFlag
from nnrun.model import MLP
from plugins.activations import Tanh

SIZES = [3, 40, 30, 2]  # 1,562 float64 parameters in 6 tensors


def network() -> MLP:
    torch.manual_seed(0)
    return MLP(SIZES, Tanh(), dtype=torch.float64)


def batch(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(rows, SIZES[0], generator=generator, dtype=torch.float64)
    return x, torch.randn(rows, SIZES[-1], generator=generator, dtype=torch.float64)


def mse_step(model: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the rows (nan for none) and its hand-written gradient."""
    pred = model.forward(x)
    model.backward(2 * (pred - y) / pred.numel())
    return ((pred - y) ** 2).mean()


def _rank(rank: int, size: int, rendezvous: str, out: str, rows: int, stop_on: int) -> None:
    """One process: its shard of the batch, the all-reduce, everything it ends with saved."""
    dist.init_process_group(
        "gloo", init_method=rendezvous, rank=rank, world_size=size, timeout=timedelta(seconds=30)
    )
    try:
        # 3 KiB buckets: [40x3, 40] (1,280 B), [30x40] (9,600 B alone), [30, 2x30, 2] (736 B)
        parallel = DataParallel(World(rank, size, rank, size), 3 / 1024, dist.group.WORLD, None)
        model = network()
        StopFlag.requested = rank == stop_on
        loss = mse_step(model, *parallel.shard(*batch(rows)))
        loss = parallel.all_reduce(model.parameters(), loss)
        torch.save(
            {
                "grads": [p.grad for p in model.parameters()],
                "loss": loss,
                "calls": parallel.calls,
                "bytes": parallel.bytes,
                "stop": parallel.stop.requested,
            },
            f"{out}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def reduce_in_processes(tmp_path: Path, size: int, rows: int, stop_on: int = -1) -> list[dict]:
    mp.spawn(_rank, (size, f"file://{tmp_path}/rendezvous", str(tmp_path), rows, stop_on), size)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(size)]


@pytest.mark.parametrize(
    "size, rows, stop_on",
    [
        (3, 10, 1),
        pytest.param(2, 10, -1, marks=pytest.mark.slow),
        pytest.param(3, 2, -1, marks=pytest.mark.slow),
    ],
)
def test_all_reduce_gives_every_rank_the_whole_batch_mean_gradient(tmp_path, size, rows, stop_on):
    """10 rows over 3 ranks are 4, 3 and 3, weighted by rows; 2 rows over 3 leave one rank an
    empty shard, which counts nothing. rtol 1e-12 in float64: only the order in which the
    partial sums are added differs from the single process (a few ulp). The gradients travel
    in buckets of `bucket_mb`, with the loss and the stop flag: a stop requested on one rank
    stops them all after this step."""
    model = network()
    expected_loss = mse_step(model, *batch(rows))
    expected = [p.grad for p in model.parameters()]
    results = reduce_in_processes(tmp_path, size, rows, stop_on)
    for result in results:
        for got, want in zip(result["grads"], expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(result["loss"], expected_loss, rtol=1e-12, atol=0)
        assert result["stop"] is (stop_on >= 0)
        assert result["calls"] == 3  # not one call per tensor (6), nor one for all
        params = sum(p.data.numel() for p in model.parameters())
        assert result["bytes"] == (params + 2) * 8  # every gradient, the loss and the stop flag
    for other in results[1:]:  # the same bits everywhere: the ranks' weights never drift apart
        assert all(torch.equal(a, b) for a, b in zip(other["grads"], results[0]["grads"]))


def test_buckets_group_consecutive_tensors_up_to_the_cap():
    parallel = DataParallel(World(0, 2, 0, 2), 25, None, None)
    model = MLP([784, 512, 512, 10], Tanh())
    assert parallel._buckets(model.parameters()) == [(0, 6)]  # 2.7 MB: one bucket of 25 MiB
    parallel = DataParallel(World(0, 2, 0, 2), 2, None, None)  # 2 MiB: 1.6 MB, then 1.1 MB
    assert parallel._buckets(model.parameters()) == [(0, 2), (2, 6)]
    parallel = DataParallel(World(0, 2, 0, 2), 0.5, None, None)  # each weight alone
    assert parallel._buckets(model.parameters()) == [(0, 1), (1, 2), (2, 3), (3, 6)]


def test_shards_split_a_batch_as_evenly_as_it_goes():
    x, y = torch.arange(10.0)[:, None], torch.arange(10.0)[:, None]
    shards = [DataParallel(World(r, 3, r, 3), 25, None, None).shard(x, y)[0] for r in range(3)]
    assert [s[:, 0].tolist() for s in shards] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def failure(exitcode: int, pid: int = 100, timestamp: int = 0) -> SimpleNamespace:
    return SimpleNamespace(exitcode=exitcode, pid=pid, timestamp=timestamp)


def test_the_launcher_names_the_rank_that_died_not_those_that_lost_it():
    for stopped in (EXIT_PEER_LOST, -signal.SIGTERM):  # its own exit, or the agent's SIGTERM
        code, message = failure_report({0: failure(stopped), 1: failure(-9, pid=7)})
        assert code == 1 and message is not None
        assert message.startswith("rank 1 (pid 7) was killed by SIGKILL")
    # bad input, a failed run, an interruption: rank 0 printed it; the exit status is its own
    assert failure_report({0: failure(2), 1: failure(-15)}) == (2, None)
    assert failure_report({0: failure(130)}) == (130, None)


EXPERIMENT = """
[experiment]
name = "dp"
seed = 3
dtype = "{dtype}"

[data]
kind = "function"
expr = "sin(3 * x)"
n = 120
split = {{ val = 0.2 }}

[model]
layers = [1, 16, 1]
activation = "tanh"

[optimizer]
name = "adam"
lr = 0.01

[train]
epochs = {epochs}
batch_size = 10
shuffle = true
checkpoint_every = 1
metrics = ["r2"]
"""


def experiment(tmp_path: Path, dtype: str = "float64", epochs: int = 6, extra: str = "") -> Path:
    path = tmp_path / "dp.toml"
    path.write_text(EXPERIMENT.format(dtype=dtype, epochs=epochs) + textwrap.dedent(extra))
    return path


def check(path: Path, *args: str):
    return CliRunner().invoke(main, ["check", str(path), *args])


def test_check_with_nproc_accepts_what_ranks_can_train(tmp_path):
    result = check(experiment(tmp_path), "--nproc", "3")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "extra, args, expected",
    [
        ("", ["-o", "train.batch_size=2"], "batch_size = 2 is smaller than the 3 processes"),
        ("[distributed]\nbackend = 'nccl'\n", [], "backend = 'nccl' needs device = 'cuda'"),
        ("[tune]\ntrials = 2\n", [], "[tune] runs its trials in one process"),
        ("[distributed]\nbucket_mb = 0\n", [], "bucket_mb"),
        ("[executor]\nname = 'submitit'\n", [], "executor 'submitit' sends whole runs elsewhere"),
    ],
)
def test_check_with_nproc_refuses_what_ranks_cannot_do(tmp_path, extra, args, expected):
    result = check(experiment(tmp_path, extra=extra), "--nproc", "3", *args)
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "backend, device, expected",
    [
        ("gloo", "cuda", "backend = 'gloo' with device = 'cuda'"),
        ("auto", "cuda:1", "device = 'cuda:1' names one GPU"),
        ("auto", "mps", "device = 'mps' has no distributed backend"),
    ],
)
def test_devices_the_backend_cannot_serve_are_refused(tmp_path, backend, device, expected):
    """Checked on the resolved run, since a machine without CUDA refuses device = 'cuda' first."""
    path = experiment(tmp_path, extra=f"[distributed]\nbackend = '{backend}'\n")
    run = load_experiment(path).runs[0]
    run = run.model_copy(
        update={"experiment": run.experiment.model_copy(update={"device": device})}
    )
    problems = distributed_problems(path.read_text(), [run], 2)
    assert any(expected in message for (_, message), _ in problems), problems


def test_a_solve_cannot_be_split_over_processes(tmp_path):
    path = tmp_path / "solve.toml"
    path.write_text(
        '[experiment]\nname = "s"\nseed = 0\ntask = "solve"\n'
        '[solver]\nname = "quadratic_descent"\na = 1.0\nb = -3.0\nc = 2.0\n'
    )
    result = check(path, "--nproc", "2")
    assert result.exit_code == 2 and "task = 'solve' has no batches to split" in result.output


def test_nproc_with_jobs_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    args = [str(experiment(tmp_path)), "--nproc", "2", "--jobs", "2", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "drop --jobs" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["FILE", "--out", "OUT", "-o", "train.epochs=1", "--force", "-q", "--json"],
            ["FILE", "--out", "OUT", "-o", "train.epochs=1", "--force", "-q", "--json"],
        ),
        (["resume", "OUT", "--runs"], ["resume", "OUT", "--runs"]),
    ],
)
def test_nproc_starts_each_rank_with_the_command_as_given_less_nproc(
    tmp_path, monkeypatch, command, expected
):
    from nnrun.experiment import distributed

    path, out = experiment(tmp_path), tmp_path / "out"
    CliRunner().invoke(main, [str(path), "--out", str(out), "-q"])  # a run directory to resume
    started = []
    monkeypatch.setattr(distributed, "launch", lambda n, args: started.append((n, args)) or 0)
    paths = {"FILE": str(path), "OUT": str(out)}
    result = CliRunner().invoke(main, [paths.get(a, a) for a in command] + ["--nproc", "2"])
    assert result.exit_code == 0, result.output
    assert started == [(2, [paths.get(a, a) for a in expected])]


# -- torchrun end to end ------------------------------------------------------------------------

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
HANG = 120  # seconds after which a run counts as hung (a guard, not a measurement)


def torchrun(nproc: int, *args: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"),
        *("-m", "nnrun", *args),
    ]


def epochs(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "epoch" in r]


def single_process(path: Path, out: Path) -> list[dict]:
    result = CliRunner().invoke(main, [str(path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return epochs(out)


FIGURES = ("train_loss", "mean_batch_loss", "val_loss", "val_r2")


def assert_same_trajectory(got: list[dict], want: list[dict], rtol: float) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for mine, theirs in zip(got, want):
        for figure in FIGURES:
            assert math.isclose(mine[figure], theirs[figure], rel_tol=rtol), (figure, mine)


@pytest.mark.slow
@pytest.mark.parametrize("nproc, dtype, rtol", [(2, "float64", 1e-13), (3, "float32", 1e-5)])
def test_ranks_follow_the_single_process_trajectory(tmp_path, nproc, dtype, rtol):
    """The same seed and global batch on N ranks: every epoch's figures equal the single
    process's to float tolerance, not bitwise (the shards' partial gradients are summed in
    another order). Only rank 0 writes, and prints the table."""
    path = experiment(tmp_path, dtype)
    want = single_process(path, tmp_path / "one")
    out = tmp_path / "ranks"
    done = subprocess.run(
        torchrun(nproc, str(path), "--out", str(out), "--json"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[done.stdout.index("{") :])["runs"][0]["status"] == "ok"
    assert_same_trajectory(epochs(out), want, rtol)


def rank_pids(agent: int, timeout: float = HANG) -> dict[int, int]:
    """{rank: pid} of the processes torchrun's agent `agent` started (Linux /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        for pid in _descendants(agent):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for entry in environ:
                if entry.startswith(b"RANK="):
                    found[int(entry[5:])] = pid
        if len(found) >= 2:
            return found
        time.sleep(0.05)
    raise AssertionError("the ranks did not start")


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children] + [d for c in children for d in _descendants(int(c))]


def wait_for_epochs(out: Path, count: int, process: subprocess.Popen) -> None:
    while process.poll() is None:
        if (out / "metrics.jsonl").exists() and len(epochs(out)) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run ended before epoch {count}: {process.stderr.read()}")


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.mark.slow
@linux_only
def test_an_interrupted_run_resumes_on_another_number_of_ranks(tmp_path):
    """SIGTERM to rank 0 alone: every rank stops after the same step, rank 0 checkpoints; the
    resume on 3 ranks ends on the single process's trajectory (float64, rtol 1e-11)."""
    path = experiment(tmp_path, epochs=40)
    want = single_process(path, tmp_path / "one")
    out = tmp_path / "ranks"
    process = subprocess.Popen(
        torchrun(2, str(path), "--out", str(out), "-q"),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_epochs(out, 2, process)
    os.kill(rank_pids(process.pid)[0], signal.SIGTERM)
    _, stderr = process.communicate(timeout=HANG)
    assert process.returncode != 0
    assert "interrupted" in stderr
    assert len(epochs(out)) < 40
    resumed = subprocess.run(
        [sys.executable, "-m", "nnrun", "resume", str(out), "--nproc", "3", "-q"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_trajectory(epochs(out), want, 1e-11)


@pytest.mark.slow
@linux_only
def test_a_rank_that_dies_ends_the_others_with_one_clear_error(tmp_path):
    """The killed rank's peers see the broken connection (or `timeout_s`), stop, and the
    launcher prints one line naming the rank; the exit status is 1, and what was checkpointed
    stays resumable."""
    path = experiment(tmp_path, epochs=2000, extra="[distributed]\ntimeout_s = 5\n")
    out = tmp_path / "ranks"
    process = subprocess.Popen(
        [sys.executable, "-m", "nnrun", str(path), "--out", str(out), "-q", "--nproc", "2"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_epochs(out, 1, process)
    pids = rank_pids(process.pid)
    os.kill(pids[1], signal.SIGKILL)
    _, stderr = process.communicate(timeout=HANG)
    assert process.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert errors == [errors[0]] and f"rank 1 (pid {pids[1]}) was killed by SIGKILL" in errors[0]
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"][0]["status"] == "pending"  # nnrun resume continues it
