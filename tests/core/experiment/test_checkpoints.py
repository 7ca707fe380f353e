"""Checkpoints read back as untrusted input: only a training state loads, never code, whatever
torch's defaults say, and the fallback to earlier checkpoints goes newest first."""

from __future__ import annotations

import pytest
import torch

from nnrun.experiment.checkpoints import earlier_checkpoints, load_checkpoint
from nnrun.experiment.safefiles import RunDirectoryError


def training_state(**changes):
    """The shape `Trainer.state_dict` saves, with `changes` applied (None deletes a key)."""
    state = {
        "model": {"weight": torch.ones(2, 2)},
        "optimizer": {"state": {}, "param_groups": []},
        "scheduler": None,
        "generator": torch.Generator().get_state(),
        "trainer": {"epoch": 3, "step": 0, "status": "running"},
        "best_model": None,
    }
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None or k in ("scheduler", "best_model")}


class RunsCode:
    """Unpickling this would create a file: what a hostile checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_training_state_loads_as_saved(tmp_path):
    torch.save(training_state(), tmp_path / "epoch0003.pt")
    loaded = load_checkpoint(tmp_path / "epoch0003.pt")
    assert loaded["trainer"] == {"epoch": 3, "step": 0, "status": "running"}
    assert torch.equal(loaded["model"]["weight"], torch.ones(2, 2))


def test_a_crafted_checkpoint_runs_no_code_even_when_torch_is_told_to_unpickle_freely(
    tmp_path, monkeypatch
):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns torch's safe default off for every load that does
    not ask for `weights_only` itself: nnrun asks."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    proof = tmp_path / "code-ran"
    torch.save(training_state(model=RunsCode(proof)), tmp_path / "epoch0001.pt")
    with pytest.raises(
        RunDirectoryError, match=r"does not load as a checkpoint .*\(UnpicklingError\)"
    ):
        load_checkpoint(tmp_path / "epoch0001.pt")
    assert not proof.exists()


def test_a_checkpoint_written_on_a_gpu_loads_onto_the_cpu(tmp_path, monkeypatch):
    """Resuming on another machine: storages tagged with a CUDA device are mapped to the CPU
    (without a GPU, torch would refuse them)."""
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(training_state(), tmp_path / "epoch0003.pt")
    monkeypatch.undo()
    loaded = load_checkpoint(tmp_path / "epoch0003.pt")
    assert loaded["model"]["weight"].device == torch.device("cpu")
    assert loaded["generator"].device == torch.device("cpu")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(torch.ones(3), id="a tensor"),
        pytest.param([1, 2, 3], id="a list"),
        pytest.param(training_state(generator=None), id="no generator"),
        pytest.param(training_state(optimizer=None), id="no optimizer"),
        pytest.param(training_state(generator=[1, 2]), id="generator not a tensor"),
        pytest.param(training_state(trainer=None), id="no trainer state"),
        pytest.param(training_state(trainer=[3, 0]), id="trainer state not a table"),
        pytest.param(training_state(trainer={"epoch": 3}), id="no step"),
        pytest.param(training_state(trainer={"epoch": 3.0, "step": 0}), id="epoch not an integer"),
    ],
)
def test_a_file_of_tensors_that_is_not_a_training_state_is_refused(tmp_path, content):
    path = tmp_path / "epoch0003.pt"
    torch.save(content, path)
    with pytest.raises(RunDirectoryError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == f"{path}: not an nnrun checkpoint (it lacks the training state)"


def test_earlier_checkpoints_are_the_older_ones_newest_first(tmp_path):
    """Order by (epochs done, step in the next epoch): epoch0002-step000003 comes after
    epoch0002 (step 0) and epoch0002-step000001, though its name sorts before epoch0002.pt."""
    names = [
        "epoch0001.pt",
        "epoch0002.pt",
        "epoch0002-step000001.pt",
        "epoch0002-step000003.pt",
        "epoch0003.pt",
        "epoch0004.pt",  # newer than the one asked about
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "epoch0000.pt").symlink_to("epoch0001.pt")  # a link is never followed
    (tmp_path / "last").symlink_to("epoch0004.pt")

    def earlier(name):
        return [p.name for p in earlier_checkpoints(tmp_path / name)]

    assert earlier("epoch0003.pt") == [
        "epoch0002-step000003.pt",
        "epoch0002-step000001.pt",
        "epoch0002.pt",
        "epoch0001.pt",
    ]
    assert earlier("epoch0002-step000001.pt") == ["epoch0002.pt", "epoch0001.pt"]
    assert earlier("epoch0001.pt") == []
