"""The run directory: a config that loads again into the same runs, the environment, metrics and
summary, checkpoints, plots that are real images, and writes that never leave half a file."""

from __future__ import annotations

import errno
import importlib.metadata
import json
import os
import platform
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import pytest
import torch
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.experiment.rundir import RunDirectory, RunDirectoryError, write_atomic
from nnrun.names import slug

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Two [[runs]] crossed with a two-value sweep, a nested scheduler, a run with its own seed and
# loss: everything config.toml has to carry. No seed: one is drawn and must be recorded.
RICH = """
[experiment]
name = "rich"

[data]
expr = "sin(x)"
n = 16
split = { val = 0.25 }

[model]
layers = [1, 3, 1]
activation = { name = "leaky_relu", negative_slope = 0.2 }
init = "xavier_uniform"

[optimizer]
name = "sgd"
lr = 0.1

[scheduler]
name = "linear_warmup"
warmup_epochs = 1
after = { name = "cosine", T_max = 2 }

[train]
epochs = 2
batch_size = 8
probes = [0.5]

[sweep]
"optimizer.name" = ["sgd", "adam"]

[[runs]]
name = "a"

[[runs]]
name = "b"
experiment = { seed = 11 }
loss = "huber"
"""

SOLVE = """
[experiment]
name = "roots"
task = "solve"

[solver]
name = "quadratic_descent"
a = 1.0
b = -6.0
c = 4.0
"""


def write(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """RICH with one override, run once: (experiment, summary, run directory)."""
    tmp_path = tmp_path_factory.mktemp("rich")
    experiment = nnrun.load_experiment(write(tmp_path, RICH), ["train.epochs=3"])
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    return experiment, summary, tmp_path / "out"


def test_config_toml_loads_again_into_the_same_runs_with_the_drawn_seed(finished):
    experiment, _, out = finished
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["experiment"]["seed"] == experiment.seed  # drawn, since the file had none
    again = nnrun.load_experiment(out / "config.toml")
    assert [r.name for r in again.runs] == [
        "a,optimizer=sgd",
        "a,optimizer=adam",
        "b,optimizer=sgd",
        "b,optimizer=adam",
    ]
    assert again.runs == experiment.runs
    assert (again.name, again.seed) == (experiment.name, experiment.seed)
    assert all(r.train.epochs == 3 for r in again.runs)  # the override is part of it
    assert again.runs[2].experiment.seed == 11 and again.runs[0].experiment.seed == experiment.seed


def test_overrides_txt_records_the_command_line_overrides(finished):
    _, _, out = finished
    assert (out / "overrides.txt").read_text().splitlines() == ["train.epochs=3"]


def installed_plugins() -> dict[str, str]:
    """Every installed distribution with entry points in the `nnrun` group, and its version:
    nnrun itself, and any extension package installed beside it (nnrun-extra-optim)."""
    return {
        ep.dist.name: ep.dist.version
        for ep in importlib.metadata.entry_points(group="nnrun")
        if ep.dist
    }


def test_environment_json_names_the_versions_that_produced_the_results(finished):
    _, _, out = finished
    environment = json.loads((out / "environment.json").read_text())
    assert environment["nnrun"] == nnrun.__version__
    assert environment["torch"] == torch.__version__
    assert environment["python"] == platform.python_version()
    assert environment["plugins"]["nnrun"] == nnrun.__version__
    assert environment["plugins"] == installed_plugins()


def test_environment_json_lists_a_third_party_plugins_distribution(tmp_path, install_plugin):
    install_plugin(
        "cube-plugin",
        {
            "cube_plugin": """
                import nnrun
                from nnrun.components import Activation

                class Cube(Activation):
                    def forward(self, z):
                        return z**3

                    def backward(self, z, out, grad):
                        return 3 * z**2 * grad

                @nnrun.hookimpl
                def register_activations(register):
                    register("cube", Cube)
            """
        },
        {"cube": "cube_plugin"},
        version="2.3",
    )
    text = RICH.replace('{ name = "leaky_relu", negative_slope = 0.2 }', '"cube"')
    experiment = nnrun.load_experiment(write(tmp_path, text), ["train.epochs=1"])
    nnrun.run_experiment(experiment, tmp_path / "out")
    plugins = json.loads((tmp_path / "out" / "environment.json").read_text())["plugins"]
    assert plugins["nnrun"] == nnrun.__version__ and plugins["cube-plugin"] == "2.3"
    assert plugins == installed_plugins()


def test_metrics_jsonl_holds_one_object_per_run_per_epoch(finished):
    experiment, _, out = finished
    records = metrics(out)
    assert [(r["run"], r["epoch"]) for r in records] == [
        (run.name, epoch) for run in experiment.runs for epoch in (1, 2, 3)
    ]
    assert all({"train_loss", "val_loss", "lr", "probes", "seconds"} <= set(r) for r in records)


def test_summary_json_lists_every_run_with_its_status(finished):
    experiment, summary, out = finished
    saved = json.loads((out / "summary.json").read_text())
    assert saved == summary
    assert saved["experiment"] == "rich"
    assert [r["name"] for r in saved["runs"]] == [r.name for r in experiment.runs]
    assert all(r["status"] == "ok" and r["epochs"] == 3 for r in saved["runs"])
    assert all({"final_loss", "final_val_loss", "probes"} <= set(r) for r in saved["runs"])


def test_a_finished_run_directory_leaves_no_temporary_files(finished):
    _, _, out = finished
    left = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(out)
        for name in names
        if (name.startswith(".") or name.endswith(".tmp"))
        and name not in (".nnrun-run", ".nnrun.lock")
    ]
    assert left == []


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_crash(stream):
        stream.write(b"new, but only ha")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        write_atomic(target, half_then_crash)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_metrics_are_appended_and_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    directory = RunDirectory.create(tmp_path / "out")
    directory.append_metrics({"run": "a", "epoch": 1})
    directory.append_metrics({"run": "a", "epoch": 2})
    with open(tmp_path / "out" / "metrics.jsonl", "a") as stream:
        stream.write('{"run": "a", "ep')  # killed mid-write
    assert directory.read_metrics() == [{"run": "a", "epoch": 1}, {"run": "a", "epoch": 2}]


def test_a_non_empty_directory_is_refused_unless_resuming_a_run_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(nnrun.ConfigError, match=r"not empty.*--resume.*--force"):
        RunDirectory.create(out)
    with pytest.raises(nnrun.ConfigError, match="not an nnrun run directory"):
        RunDirectory.create(out, resume=True)
    with pytest.raises(nnrun.ConfigError, match="not an nnrun run directory"):
        RunDirectory.create(tmp_path / "missing", resume=True)
    assert not (tmp_path / "missing").exists()
    (out / "config.toml").write_text("")
    RunDirectory.create(out, resume=True)
    assert (out / "notes.txt").exists()  # resuming keeps what is there
    with pytest.raises(nnrun.ConfigError, match="not a directory"):
        RunDirectory.create(out / "notes.txt")


def test_runs_whose_names_differ_only_in_unsafe_characters_keep_separate_checkpoints(tmp_path):
    text = RICH.split("[sweep]")[0] + (
        '[[runs]]\nname = "lr 0.1"\n\n[[runs]]\nname = "lr_0.1"\noptimizer = { lr = 0.5 }\n'
    )
    experiment = nnrun.load_experiment(write(tmp_path, text), ["experiment.seed=0"])
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    registry = nnrun.load_registry()
    from nnrun.experiment.assemble import make_data, make_model

    directory = RunDirectory(tmp_path / "out")
    for run, entry in zip(experiment.runs, summary["runs"]):
        model = make_model(run, registry)
        model.load_state_dict(directory.load_last_checkpoint(run.name)["model"])
        x, y = make_data(run).train
        assert torch.nn.functional.mse_loss(model.forward(x), y).item() == entry["final_loss"]
    assert len(list((tmp_path / "out" / "checkpoints").iterdir())) == 2


# ------------------------------------------------------------------------------------------------
# plots


def assert_image(path):
    assert path.stat().st_size > 10_000, path  # an empty figure is a few kB
    image = matplotlib.image.imread(path)
    height, width, channels = image.shape
    assert height > 200 and width > 200 and channels in (3, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_a_training_run_directory_has_a_loss_and_a_fit_plot(finished):
    _, _, out = finished
    assert_image(out / "loss.png")
    assert_image(out / "fit.png")
    assert not (out / "descent.png").exists()


def test_a_solve_run_directory_has_a_descent_plot(tmp_path):
    nnrun.run_experiment(nnrun.load_experiment(write(tmp_path, SOLVE)), tmp_path / "out")
    assert_image(tmp_path / "out" / "descent.png")
    assert not (tmp_path / "out" / "loss.png").exists()


# ------------------------------------------------------------------------------------------------
# nnrun resume


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_resume_on_a_finished_directory_reruns_nothing(finished):
    _, summary, out = finished
    before = (out / "metrics.jsonl").read_bytes()
    result = invoke("resume", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {**summary, "run_dir": str(out)}
    assert (out / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_resume_on_a_directory_that_is_not_a_run_directory_exits_2(tmp_path, content):
    if content:
        (tmp_path / content).write_text("mine")
    result = invoke("resume", tmp_path)
    assert result.exit_code == 2
    assert "not an nnrun run directory" in result.stderr and "Traceback" not in result.output


def test_the_run_directory_writes_strict_json_and_refuses_a_non_finite_number(tmp_path):
    """JSON has no NaN or infinity: a value that slipped through unconverted is a bug to surface,
    never `Infinity` in summary.json (which strict parsers reject)."""
    from nnrun.experiment.rundir import RunDirectory

    directory = RunDirectory(tmp_path)
    for write in (
        lambda: directory.write_json("summary.json", {"runs": [], "x": float("inf")}),
        lambda: directory.append_metrics({"run": "a", "loss": float("nan")}),
        lambda: directory.rewrite_metrics([{"run": "a", "loss": float("-inf")}]),
    ):
        with pytest.raises(ValueError, match="JSON compliant"):
            write()


# ------------------------------------------------------------------------------------------------
# what nnrun wrote, what --force deletes, studies, models, failures, the lock, taken names

TMP = "0123456789ab"  # the hex tag of write_atomic's temporary names (`.NAME.TAG.tmp`)


def nnruns_files(out):
    """Every kind of file an experiment can leave in `out`, leftovers of a crash included."""
    for name in ("summary.json", f".summary.json.{TMP}.tmp", "failures.log"):
        (out / name).write_text("{}")
    run = out / "checkpoints" / "a"
    run.mkdir(parents=True)
    (run / "epoch0001.pt").write_bytes(b"checkpoint")
    (run / f".epoch0002.pt.{TMP}.tmp").write_bytes(b"half a checkpoint")
    (run / "last").symlink_to("epoch0001.pt")
    (run / ".last.4242").symlink_to("epoch0001.pt")  # a crash between making and renaming it
    (out / "tune").mkdir()
    (out / "tune" / "a.log").write_text("journal")
    (out / "tune" / "a.log.lock").write_text("")
    (out / "tensorboard" / "a").mkdir(parents=True)
    (out / "tensorboard" / "a" / "events.out.tfevents.1700000000.host").write_bytes(b"events")
    (out / "models").mkdir()
    (out / "models" / "a.pt").write_bytes(b"model")
    (out / "models" / f".a.pt.{TMP}.tmp").write_bytes(b"half a model")


def test_force_deletes_everything_nnrun_wrote_in_every_folder_and_keeps_the_lock(tmp_path):
    out = tmp_path / "out"
    RunDirectory.create(out).close()
    nnruns_files(out)
    assert RunDirectory(out).foreign_entries() == []
    with RunDirectory.create(out, force=True):
        assert sorted(os.listdir(out)) == [".nnrun-run", ".nnrun.lock"]


def test_force_names_every_file_nnrun_did_not_write_wherever_it_lies(tmp_path):
    out = tmp_path / "out"
    RunDirectory.create(out).close()
    nnruns_files(out)
    theirs = [
        "notes.txt",
        f".notes.txt.{TMP}.tmp",  # a temporary name, but of no file nnrun writes
        "extra",  # a folder nnrun does not make, whatever it holds
        "checkpoints/0-stray.txt",  # not a run's folder
        "checkpoints/a/notes.txt",
        "checkpoints/a/.last.7",  # nnrun's `.last.PID` is a link, never a file
        "tune/notes.txt",
        "tune/b.log",  # a folder, not a study's journal
        "tensorboard/0-stray.txt",
        "tensorboard/a/notes.txt",
        "models/notes.txt",
        "models/b.pt",  # a folder, not a model file
    ]
    for name in theirs:
        path = out / name
        if name in ("extra", "tune/b.log", "models/b.pt"):
            path.mkdir()
        else:
            path.write_text("mine")
    (out / "extra" / "x.pt").write_text("mine")
    (out / "config.toml").symlink_to(tmp_path / "elsewhere.toml")  # a link, even by nnrun's name
    foreign = RunDirectory(out).foreign_entries()
    assert sorted(str(p.relative_to(out)) for p in foreign) == sorted([*theirs, "config.toml"])
    with pytest.raises(nnrun.ConfigError, match=r"also holds .* and 8 more; move them out first"):
        RunDirectory.create(out, force=True)
    assert (out / "summary.json").exists() and (out / "checkpoints" / "a" / "last").is_symlink()


def test_a_file_force_cannot_delete_is_a_one_line_error_naming_it(tmp_path, monkeypatch):
    out = tmp_path / "out"
    RunDirectory.create(out).close()
    (out / "summary.json").write_text("{}")

    def refused(self, missing_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(RunDirectoryError) as error:
        RunDirectory.create(out, force=True)
    assert str(error.value) == (
        f"--out {out}: cannot delete {out / 'summary.json'}: Permission denied"
    )


def test_a_study_lives_in_tune_under_its_runs_safe_name_and_never_through_a_link(tmp_path):
    directory = RunDirectory(tmp_path)
    path = directory.study_file("lr 0.1")
    assert path.parent == tmp_path / "tune" and path.parent.is_dir()
    assert path.name == f"{slug('lr 0.1')}.log" and not path.exists()
    path.write_text("journal")
    assert directory.study_file("lr 0.1") == path  # an existing journal is resumed
    (tmp_path / "tune" / "b.log").symlink_to(tmp_path / "elsewhere.log")
    with pytest.raises(RunDirectoryError, match=r"tune/b\.log: is a symbolic link; nnrun does"):
        directory.study_file("b")
    (tmp_path / "tune" / "c.log").mkdir()
    with pytest.raises(RunDirectoryError) as error:
        directory.study_file("c")
    assert str(error.value) == (
        f"{tmp_path / 'tune' / 'c.log'}: not a plain file; nnrun keeps a tuning study there"
    )


class Payload:
    """What a crafted model file could carry: an object whose unpickling runs code."""

    def __reduce__(self):
        return (print, ("unpickled",))


def test_a_saved_model_loads_onto_the_cpu_and_anything_else_is_refused(tmp_path, monkeypatch):
    from nnrun.experiment.execute import MODEL_FORMAT

    directory = RunDirectory(tmp_path)
    model = {"format": MODEL_FORMAT, "state": {"weight": torch.ones(2)}}
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    assert directory.save_model("lr 0.1", model) == tmp_path / "models" / f"{slug('lr 0.1')}.pt"
    monkeypatch.undo()  # written on a GPU, read where there is none
    loaded = directory.load_model("lr 0.1")
    assert loaded["format"] == MODEL_FORMAT and torch.equal(
        loaded["state"]["weight"], torch.ones(2)
    )
    assert loaded["state"]["weight"].device == torch.device("cpu")

    def refused(run):
        with pytest.raises(RunDirectoryError) as error:
            directory.load_model(run)
        return str(error.value)

    models = tmp_path / "models"
    assert refused("b") == (
        f"{tmp_path}: run 'b' has no saved model (models/b.pt); a model is saved when a run "
        f"finishes with status ok"
    )
    (models / "c.pt").write_bytes(b"not a torch file")
    assert refused("c") == (
        f"{models / 'c.pt'}: damaged or not written by nnrun: it does not load as a model of "
        f"tensors and plain data (UnpicklingError)"
    )
    torch.save({"format": MODEL_FORMAT, "payload": Payload()}, models / "d.pt")
    assert refused("d").startswith(f"{models / 'd.pt'}: damaged or not written by nnrun")
    for run, content in (("e", {"format": "nnrun-model-0"}), ("f", [torch.ones(1)])):
        torch.save(content, models / f"{run}.pt")
        assert refused(run) == f"{models / f'{run}.pt'}: not an nnrun model file ({MODEL_FORMAT})"
    (models / "g.pt").symlink_to(models / "e.pt")
    assert refused("g").startswith(f"{models / 'g.pt'}: is a symbolic link")

    def unreadable(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("nnrun.experiment.rundir.open_nofollow", unreadable)
    assert refused("e") == f"{models / 'e.pt'}: cannot read it: Permission denied"


def test_failures_log_gets_each_failed_runs_traceback_under_its_name(tmp_path):
    directory = RunDirectory(tmp_path)
    directory.log_failure("a", "Traceback: boom")
    directory.log_failure("b/seed=1", "Traceback: bang")
    text = (tmp_path / "failures.log").read_text()
    assert text == "--- a\nTraceback: boom\n--- b/seed=1\nTraceback: bang\n"


def test_metrics_rewritten_read_back_as_written(tmp_path):
    directory = RunDirectory(tmp_path)
    records = [{"run": "a", "epoch": 1, "train_loss": 0.5}, {"run": "é", "epoch": 1}]
    directory.rewrite_metrics(records)
    assert directory.read_metrics() == records


def test_a_workers_shared_lock_keeps_a_newcomer_out_until_every_holder_closes(tmp_path):
    parent = RunDirectory.create(tmp_path)
    worker = RunDirectory(tmp_path)
    worker.share_lock()
    worker.share_lock()  # again: still one hold, released by one close
    parent.close()  # the parent is gone, its worker still writes
    with pytest.raises(RunDirectoryError, match="another nnrun process is writing"):
        RunDirectory(tmp_path).lock()
    worker.close()
    newcomer = RunDirectory(tmp_path)
    newcomer.lock()
    newcomer.close()


def test_a_worker_never_waits_for_a_lock_held_exclusively(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    fd = os.open(tmp_path / ".nnrun.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a newcomer in the middle of `lock()`
        with pytest.raises(RunDirectoryError, match="another nnrun process is writing"):
            RunDirectory(tmp_path).share_lock()
    finally:
        os.close(fd)


def test_a_taken_name_gets_the_next_free_number_and_a_parent_that_is_a_file_is_an_error(
    tmp_path,
):
    first = RunDirectory.create_new(tmp_path / "runs" / "exp")
    second = RunDirectory.create_new(tmp_path / "runs" / "exp")
    (tmp_path / "runs" / "exp-3").mkdir()  # taken by someone else
    fourth = RunDirectory.create_new(tmp_path / "runs" / "exp")
    assert [d.path.name for d in (first, second, fourth)] == ["exp", "exp-2", "exp-4"]
    assert all((d.path / ".nnrun-run").is_file() for d in (first, second, fourth))
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirectoryError) as error:
        RunDirectory.create_new(tmp_path / "file" / "exp")
    assert str(error.value) == f"{tmp_path / 'file' / 'exp'}: cannot write it: File exists"


def test_a_folder_inside_that_cannot_be_listed_is_named_in_the_error(tmp_path, monkeypatch):
    out = tmp_path / "out"
    RunDirectory.create(out).close()
    nnruns_files(out)
    listed = Path.iterdir

    def iterdir(self):
        if self.name == "checkpoints":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return listed(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(RunDirectoryError) as error:
        RunDirectory.create(out, force=True)
    assert str(error.value) == f"--out {out}: cannot read {out / 'checkpoints'}: Permission denied"
