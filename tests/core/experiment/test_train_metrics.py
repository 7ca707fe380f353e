"""[train] metrics in the training loop: computed each epoch from the forward pass the validation
loss already made, recorded in metrics.jsonl and summary.json, and watched by early stopping."""

from __future__ import annotations

import io
import json
import textwrap

import pytest
import torch

import nnrun
from nnrun.experiment.assemble import make_data, make_model
from nnrun.experiment.train import Trainer, TrainSettings
from nnrun.model import MLP

F64 = torch.float64

REGRESSION = """
[experiment]
name = "metrics"
seed = 3
dtype = "float64"

[data]
expr = "sin(3*x)"
n = 60
noise = 0.05
split = { val = 0.25 }

[model]
layers = [1, 12, 1]
activation = "tanh"

[optimizer]
name = "adam"
lr = 0.02

[train]
epochs = 6
batch_size = 8
metrics = ["mse", "mae", "r2"]
"""


@pytest.fixture(scope="module")
def registry():
    return nnrun.load_registry()


def run(tmp_path, text, *overrides):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(text))
    experiment = nnrun.load_experiment(path, overrides)
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    return experiment, summary, [json.loads(line) for line in lines]


def test_each_epoch_records_the_metrics_of_the_validation_split(tmp_path):
    _, _, records = run(tmp_path, REGRESSION)
    assert len(records) == 6
    for record in records:
        assert {"val_mse", "val_mae", "val_r2"} <= set(record)
        assert not any(key.startswith("train_m") or key == "train_r2" for key in record)
        # the mse metric and the mse loss: two implementations of one number (float64)
        assert record["val_mse"] == pytest.approx(record["val_loss"], rel=1e-12)


def test_final_metrics_are_the_final_weights_scored_like_sklearn(tmp_path, registry):
    skm = pytest.importorskip("sklearn.metrics")
    experiment, summary, records = run(tmp_path, REGRESSION)
    (config,) = experiment.runs
    (entry,) = summary["runs"]
    model = make_model(config, registry)
    model.load_state_dict(
        torch.load(tmp_path / "out" / "checkpoints" / "metrics" / "last")["model"]
    )
    x_val, y_val = make_data(config).val
    pred = model.forward(x_val).numpy()
    assert entry["metrics_split"] == "val"
    expected = {
        "mse": skm.mean_squared_error(y_val.numpy(), pred),
        "mae": skm.mean_absolute_error(y_val.numpy(), pred),
        "r2": skm.r2_score(y_val.numpy(), pred),
    }
    assert entry["final_metrics"] == pytest.approx(expected, rel=1e-12)
    assert entry["final_metrics"] == {
        k[4:]: records[-1][k] for k in ("val_mse", "val_mae", "val_r2")
    }
    assert "test_metrics" not in entry  # no test split


def test_without_a_validation_split_the_metrics_are_the_training_splits(tmp_path):
    _, summary, records = run(tmp_path, REGRESSION, "data.split.val=0.0")
    assert all(r["train_mse"] == pytest.approx(r["train_loss"], rel=1e-12) for r in records)
    assert not any(key.startswith("val_") for r in records for key in r)
    assert summary["runs"][0]["metrics_split"] == "train"


class Counting(MLP):
    calls = 0

    def forward(self, x):
        Counting.calls += 1
        return super().forward(x)


class Scripted(nnrun.Metric):
    """Returns the given values, one per call, so early stopping sees a known sequence."""

    mode = "max"

    def __init__(self, values):
        self.values = list(values)

    def compute(self, pred, target):
        return self.values.pop(0)


def trainer(registry, metrics, epochs=10, batch_size=4, **settings):
    torch.manual_seed(0)
    model = Counting([1, 3, 1], activation=registry.activations["tanh"](), dtype=F64)
    x = torch.linspace(0, 1, 8, dtype=F64)[:, None]
    return Trainer(
        model,
        registry.losses["mse"](),
        registry.optimizers["sgd"](model.parameters(), lr=0.1),
        None,
        TrainSettings(epochs=epochs, batch_size=batch_size, **settings),
        (x, x),
        (x[:4], x[:4]),
        torch.Generator().manual_seed(0),
        metrics=metrics,
    )


def test_metrics_reuse_the_epochs_forward_passes(registry):
    t = trainer(registry, {"mse": registry.metrics["mse"](), "r2": registry.metrics["r2"]()}, 3)
    Counting.calls = 0
    t.fit()
    # per epoch: 2 batches, then one pass over the training split and one over the validation split
    assert Counting.calls == 3 * (2 + 2)


@pytest.mark.parametrize(
    ("values", "settings", "stop", "best"),
    [
        # mode "max" from the metric: best 0.5 at epoch 2, then 2 epochs without a higher one
        ([0.1, 0.5, 0.4, 0.5], {}, 4, 2),
        # min_delta: 0.55 is not more than 0.1 above 0.5, 0.7 is
        ([0.1, 0.5, 0.55, 0.7, 0.7, 0.7], {"min_delta": 0.1}, 6, 4),
        # mode "min" given: lower is better
        ([0.5, 0.4, 0.45, 0.41], {"mode": "min"}, 4, 2),
    ],
)
def test_early_stopping_watches_a_metric_in_its_mode(registry, values, settings, stop, best):
    t = trainer(registry, {"score": Scripted(values)}, early_stopping=2, watch="score", **settings)
    assert t.fit() == "ok"
    assert (t.state.epoch, t.state.best_epoch, t.state.stopped_early) == (stop, best, True)
    assert t.state.best_val == values[best - 1]


def test_early_stopping_on_r2_restores_the_best_epochs_weights(tmp_path):
    pytest.importorskip("sklearn")
    text = REGRESSION.replace('metrics = ["mse", "mae", "r2"]', 'metrics = ["r2"]') + (
        'early_stopping = { patience = 2, metric = "r2" }\n'
    )
    _, summary, records = run(tmp_path, text, "train.epochs=40", "optimizer.lr=0.2")
    (entry,) = summary["runs"]
    best = max(records, key=lambda r: r["val_r2"])
    assert entry["best_epoch"] == best["epoch"] and entry["stopped_early"]
    assert entry["final_metrics"]["r2"] == best["val_r2"]


def test_a_resumed_run_watching_a_metric_continues_bit_identically(registry):
    def make():
        return trainer(
            registry,
            {"r2": registry.metrics["r2"]()},
            epochs=12,
            batch_size=3,
            early_stopping=3,
            watch="r2",
            checkpoint_every=2,
        )

    straight, saved = make(), []

    def keep():
        buffer = io.BytesIO()
        torch.save(straight.state_dict(), buffer)
        saved.append(buffer.getvalue())

    straight.fit(on_checkpoint=keep)
    resumed = make()
    resumed.load_state_dict(torch.load(io.BytesIO(saved[0]), weights_only=True))
    resumed.fit()
    assert vars(resumed.state) == vars(straight.state)
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.model.state_dict(), straight.model.state_dict())
    )


def test_a_watched_metric_the_trainer_does_not_compute_is_an_error(registry):
    with pytest.raises(ValueError, match="not among the metrics"):
        trainer(registry, {}, early_stopping=2, watch="r2")


def test_check_names_each_metrics_provider(tmp_path):
    from click.testing import CliRunner

    from nnrun.cli import main

    (tmp_path / "e.toml").write_text(textwrap.dedent(REGRESSION))
    result = CliRunner().invoke(main, ["check", str(tmp_path / "e.toml")])
    assert result.exit_code == 0, result.output
    for name in ("mse", "mae", "r2"):
        assert f"#   [train] metrics {name!r} <- nnrun " in result.stdout
    assert 'metrics = [\n    { name = "mse" },' in result.stdout  # in the resolved config too
