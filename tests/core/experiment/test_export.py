"""`nnrun export`: every table read back with its own library (pandas, pyarrow) and compared value
for value with metrics.jsonl, summary.json and the experiment file's hyperparameters."""

from __future__ import annotations

import json
import math
import textwrap

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from experiments import two_optimizers

from nnrun.cli import main

SEEDED = two_optimizers("exported", 11, [0, 1], 3)
#: What the experiment file says each group's optimizer is: the independent reference.
EXPECTED = {"sgd": ("sgd", 0.1), "adam": ("adam", 0.01)}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    (folder / "e.toml").write_text(textwrap.dedent(SEEDED))
    result = invoke(folder / "e.toml", "--out", folder / "out", "-q")
    assert result.exit_code == 0, result.output
    return folder / "out"


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def read_csv(path):
    return pd.read_csv(path)


def read_parquet(path):
    return pq.read_table(path).to_pandas()


@pytest.mark.parametrize("to, read", [("csv", read_csv), ("parquet", read_parquet)])
def test_the_epochs_table_holds_every_metrics_record_value_for_value(run_dir, tmp_path, to, read):
    result = invoke("export", run_dir, "--to", to, "--out", tmp_path / to)
    assert result.exit_code == 0, result.output
    table = read(tmp_path / to / f"epochs.{to}")
    expected = records(run_dir)
    assert len(table) == len(expected) == 4 * 3
    for row, record in zip(table.to_dict("records"), expected, strict=True):
        assert row["run"] == record["run"]
        group, seed = record["run"].split("/seed=")
        assert (row["group"], row["seed"]) == (group, int(seed))
        for key, value in record.items():
            if key != "run":  # csv round-trips floats exactly (repr), parquet stores doubles
                assert row[key] == value, (key, row[key], value)
        assert (row["optimizer.name"], row["optimizer.lr"]) == EXPECTED[group]
        assert row["model.layers"] == "[1, 4, 1]"  # a list is one cell: its JSON text


@pytest.mark.parametrize("to, read", [("csv", read_csv), ("parquet", read_parquet)])
def test_the_runs_table_has_one_row_per_run_with_its_final_figures(run_dir, tmp_path, to, read):
    assert invoke("export", run_dir, "--to", to, "--out", tmp_path).exit_code == 0
    table = read(tmp_path / f"runs.{to}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(table["run"]) == [r["name"] for r in summary["runs"]]
    last = {r["run"]: r for r in records(run_dir)}  # the last epoch of each run
    for row, entry in zip(table.to_dict("records"), summary["runs"], strict=True):
        assert row["status"] == entry["status"] == "ok"
        assert row["final_loss"] == entry["final_loss"]
        assert math.isclose(row["final_val_loss"], last[entry["name"]]["val_loss"])
        assert row["epochs"] == 3
        assert row["optimizer.lr"] == EXPECTED[row["group"]][1]


def test_export_writes_beside_the_run_directory_by_default(run_dir):
    result = invoke("export", run_dir, "--to", "csv")
    assert result.exit_code == 0, result.output
    target = run_dir.parent / f"{run_dir.name}-csv"
    assert sorted(p.name for p in target.iterdir()) == ["epochs.csv", "runs.csv"]


def test_export_of_a_folder_that_is_no_run_directory_is_a_one_line_error(tmp_path):
    result = invoke("export", tmp_path, "--to", "csv")
    assert result.exit_code == 2
    assert "not an nnrun run directory" in result.output or "summary.json" in result.output
    assert "Traceback" not in result.output


def test_tensorboard_event_files_hold_every_scalar_and_the_hyperparameters(run_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from nnrun.names import slug

    result = invoke("export", run_dir, "--to", "tensorboard", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    expected = records(run_dir)
    runs = dict.fromkeys(r["run"] for r in expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(slug(r) for r in runs)
    for run in runs:
        events = EventAccumulator(str(tmp_path / slug(run)))
        events.Reload()
        mine = [r for r in expected if r["run"] == run]
        for key in ("train_loss", "val_loss", "lr", "seconds"):
            got = [(s.step, s.value) for s in events.Scalars(key)]
            # event files store float32: 1e-6 relative is float32's resolution
            assert [step for step, _ in got] == [r["epoch"] for r in mine]
            for (_, value), record in zip(got, mine, strict=True):
                assert math.isclose(value, record[key], rel_tol=1e-6)
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        name, lr = EXPECTED[run.split("/")[0]]
        assert hparams["optimizer.name"].string_value == name
        assert math.isclose(hparams["optimizer.lr"].number_value, lr)


def test_mlflow_holds_one_run_per_run_with_params_tags_and_metric_histories(run_dir, tmp_path):
    mlflow = pytest.importorskip("mlflow")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = invoke("export", run_dir, "--to", "mlflow", "--uri", uri)
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("exported")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    expected = records(run_dir)
    assert sorted(runs) == sorted({r["run"] for r in expected})
    for name, run in runs.items():
        group = name.split("/")[0]
        assert run.data.tags["status"] == "ok" and run.data.tags["group"] == group
        assert run.data.tags["seed"] == name.split("seed=")[1]
        assert run.data.params["optimizer.name"] == EXPECTED[group][0]
        assert float(run.data.params["optimizer.lr"]) == EXPECTED[group][1]
        mine = [r for r in expected if r["run"] == name]
        for key in ("train_loss", "val_loss", "lr"):
            history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in mine]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "run_directory")}
        assert {"run_directory/summary.json", "run_directory/metrics.jsonl"} <= artifacts
    again = invoke("export", run_dir, "--to", "mlflow", "--uri", uri)
    assert again.exit_code == 2 and "already exported" in again.output


LIVE = SEEDED.replace(
    '[[runs]]\nname = "sgd"', '[report]\ntensorboard = true\n\n[[runs]]\nname = "sgd"', 1
)


def test_report_tensorboard_writes_each_epoch_live_and_force_clears_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nnrun.names import slug

    (tmp_path / "e.toml").write_text(textwrap.dedent(LIVE))
    out = tmp_path / "out"
    assert invoke(tmp_path / "e.toml", "--out", out, "-q").exit_code == 0
    expected = records(out)
    for run in dict.fromkeys(r["run"] for r in expected):
        events = EventAccumulator(str(out / "tensorboard" / slug(run)))
        events.Reload()
        mine = [r for r in expected if r["run"] == run]
        got = [(s.step, s.value) for s in events.Scalars("val_loss")]
        assert [step for step, _ in got] == [r["epoch"] for r in mine]
        for (_, value), record in zip(got, mine, strict=True):
            assert math.isclose(value, record["val_loss"], rel_tol=1e-6)  # float32 events
    again = invoke(tmp_path / "e.toml", "--out", out, "-q", "--force")
    assert again.exit_code == 0, again.output  # the event files are nnrun's to delete


def test_report_tensorboard_without_the_package_is_refused_by_check(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    (tmp_path / "e.toml").write_text(textwrap.dedent(LIVE))
    result = invoke("check", tmp_path / "e.toml")
    assert result.exit_code == 2
    line = textwrap.dedent(LIVE).splitlines().index("tensorboard = true") + 1
    assert f"e.toml:{line}: [report] tensorboard = true needs TensorBoard" in result.output
    assert "pip install 'nnrun[tensorboard]'" in result.output
