"""Whole-run checks (`nnrun.config.fit`): the device, the network's ends, the loss and the data
against each other, and the memory estimate, each reported on the line of the key to change."""

from __future__ import annotations

import functools

import pytest
import torch
from bad_experiments import BASE, SOLVE, edit

import nnrun
from nnrun.config import fit
from nnrun.errors import ConfigError


@functools.cache
def registry():
    return nnrun.load_registry()


def load(tmp_path, text, registry=None):
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return nnrun.load_experiment(path, registry=registry or globals()["registry"]())


def error_of(tmp_path, text, registry=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, registry)
    return str(caught.value)


def line_of(text: str, snippet: str) -> int:
    (number,) = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return number


@pytest.mark.parametrize(
    "layers, says",
    [
        ("[2, 4, 1]", "has 1 input(s) (x), so the first width must be 1"),
        ("[1, 4, 2]", "has 1 output(s) (y), so the last width must be 1"),
    ],
)
def test_a_network_whose_ends_do_not_fit_the_data_is_refused_on_its_layers_line(
    tmp_path, layers, says
):
    text = edit(BASE, "layers = [1, 4, 1]", f"layers = {layers}")
    error = error_of(tmp_path, text)
    assert error == (
        f"{tmp_path / 'experiment.toml'}:{line_of(text, 'layers =')}: [model] layers = {layers}: "
        f"[data] kind = 'function' {says} (e.g. layers = [1, 16, 1])"
    )


def test_a_loss_that_cannot_score_the_predictions_is_refused_on_its_name_line(
    tmp_path, nnrun_builtins_host
):
    class Picky(nnrun.Loss):
        def forward(self, pred, target):
            raise ValueError("targets must be class indices")

    class Plugin:
        @nnrun.hookimpl
        def register_losses(self, register):
            register("picky", Picky)

    nnrun_builtins_host.register(Plugin(), name="picky")
    text = BASE + '\n[loss]\nname = "picky"\n'
    error = error_of(tmp_path, text, nnrun.load_registry(nnrun_builtins_host))
    assert error == (
        f"{tmp_path / 'experiment.toml'}:{line_of(text, 'picky')}: [loss] 'picky' cannot score "
        "this run's predictions against regression targets: targets must be class indices"
    )


def test_an_expr_not_finite_inside_the_range_names_the_first_grid_point_where_it_fails(tmp_path):
    # range [0, 100000) in steps of 1: log(2.5 - x) is finite at 0, 1, 2 and not from 3 on
    text = edit(BASE, 'expr = "x**2"', 'expr = "log(2.5 - x)"\nrange = [0, 100000]')
    error = error_of(tmp_path, text)
    assert error == (
        f"{tmp_path / 'experiment.toml'}:{line_of(text, 'expr =')}: [data] expr = "
        "'log(2.5 - x)' is not finite on part of range = [0.0, 100000.0] (e.g. at x = 3); "
        "choose a range where it is defined"
    )


def fake_cuda(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_a_cuda_device_that_exists_is_accepted(tmp_path, monkeypatch, device):
    fake_cuda(monkeypatch, count=2)
    (run,) = load(tmp_path, edit(BASE, "seed = 0", f'seed = 0\ndevice = "{device}"')).runs
    assert run.experiment.device == device


@pytest.mark.parametrize("device", ["cuda:2", "cuda:3"])
def test_a_cuda_index_past_the_last_device_is_refused(tmp_path, monkeypatch, device):
    fake_cuda(monkeypatch, count=2)
    error = error_of(tmp_path, edit(BASE, "seed = 0", f'seed = 0\ndevice = "{device}"'))
    assert error.endswith(f":4: [experiment] device = '{device}', but there are 2 CUDA devices")


def test_check_fit_weighs_the_run_against_the_memory_it_is_given(tmp_path):
    (run,) = load(tmp_path, BASE).runs
    assert fit.check_fit(run, registry(), memory=1 << 30) == []
    ((where, message),) = fit.check_fit(run, registry(), memory=100)
    assert where == ("model", "layers")
    assert message.endswith("more than the 1 KiB this machine has")


def test_the_memory_message_splits_weights_data_and_a_batchs_activations(tmp_path):
    text = edit(BASE, "layers = [1, 4, 1]", "layers = [1, 1000, 1]")
    text = edit(edit(text, "n = 40", "n = 100000"), "epochs = 3", "epochs = 3\nbatch_size = 8")
    (run,) = load(tmp_path, text).runs
    parameters = 1000 + 1000 + 1000 + 1
    weights, data, activations = 4 * parameters * 4, 100_000 * 2 * 4, 2 * 8 * 1002 * 4
    assert (weights, data, activations) == (48_016, 800_000, 64_128)  # 47 KiB, 0.8 MiB, 63 KiB
    data_size = (100_000, 2 * 4)  # samples, bytes of x and y per sample
    assert fit.memory_bytes(run, data_size) == (parameters, weights + data + activations)
    assert fit.check_memory(run, 1 << 19, data_size) == (
        "[model] layers = [1, 1000, 1] has 3.0e+03 parameters (47 KiB of weights, gradients and "
        "optimizer state), the data (100000 samples) takes 0.8 MiB and the activations of a batch of 8 "
        "63 KiB: about 0.9 MiB in all, more than the 0.5 MiB this machine has"
    )


def test_a_solve_run_needs_no_memory_for_a_network(tmp_path):
    (run,) = load(tmp_path, SOLVE).runs
    assert fit.memory_bytes(run) == (0, 0)
    assert fit.check_memory(run, limit=0) is None


@pytest.mark.parametrize(
    "count,reads",
    [
        (3 * 2**30, "3.0 GiB"),
        (2**30 // 8, "0.1 GiB"),  # an eighth of a unit is shown in that unit
        (2**30 // 8 - 1, "128.0 MiB"),
        (5 * 2**20, "5.0 MiB"),
        (2**20 // 8, "0.1 MiB"),
        (2**20 // 8 - 1, "128 KiB"),
        (1025, "2 KiB"),  # rounded up: never "0 KiB"
        (1, "1 KiB"),
    ],
)
def test_byte_counts_read_in_the_unit_that_reads_best(count, reads):
    assert fit._gib(count) == reads


@pytest.mark.parametrize("dtype, refused", [("float32", True), ("float64", False)])
def test_an_expr_that_overflows_the_runs_dtype_is_refused(tmp_path, dtype, refused):
    # exp(100) ≈ 2.7e43 is finite in float64 but past float32's largest value (3.4e38)
    text = edit(BASE, 'expr = "x**2"', 'expr = "exp(100 * x)"')
    text = edit(text, "seed = 0", f'seed = 0\ndtype = "{dtype}"')
    if refused:
        assert "'exp(100 * x)' is not finite on part of range" in error_of(tmp_path, text)
    else:
        (run,) = load(tmp_path, text).runs
        assert run.experiment.dtype == "float64"


def test_the_memory_check_weighs_the_data_a_csv_file_loaded(tmp_path):
    """A CSV's size is known only once it is read: the check after loading counts its tensors."""
    from bad_experiments import CSV

    (run,) = load(tmp_path, CSV).runs
    # 150 samples of 4 inputs and 1 label, counted at the run's float32 size
    parameters, needed = fit.memory_bytes(run, (150, (4 + 1) * 4))
    assert parameters == 4 * 8 + 8 + 8 * 3 + 3
    problems = fit.check_fit(run, registry(), memory=needed - 1)
    ((where, message),) = problems
    assert where == ("model", "layers") and "the data (150 samples) takes 3 KiB" in message
    assert fit.check_fit(run, registry(), memory=needed) == []
