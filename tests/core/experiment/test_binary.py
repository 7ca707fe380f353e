"""Two classes with one output: `bce_with_logits` on int64 0/1 targets end to end, the metrics
thresholding the logit at 0, and `predict` giving σ(logit) as class 1's probability."""

from __future__ import annotations

import csv
import io
import textwrap

import pytest
import torch
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.experiment.assemble import make_data
from nnrun.experiment.predict import load_network

pytest.importorskip("sklearn")

BINARY = """
[experiment]
name = "cancer"
seed = 0

[data]
kind = "sklearn"
dataset = "breast_cancer"
split = { val = 0.2, test = 0.2 }
standardize = true

[model]
layers = [30, 8, 1]
activation = "relu"

[loss]
name = "bce_with_logits"

[optimizer]
name = "adam"
lr = 0.01

[train]
epochs = 15
batch_size = 32
metrics = ["accuracy", "f1_macro"]
early_stopping = { patience = 5, metric = "f1_macro" }
"""


def test_one_logit_trains_on_class_indices_and_scores_like_sklearn(tmp_path):
    from sklearn.metrics import accuracy_score, f1_score

    (tmp_path / "b.toml").write_text(textwrap.dedent(BINARY))
    experiment = nnrun.load_experiment(tmp_path / "b.toml")
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    (entry,) = summary["runs"]
    assert entry["status"] == "ok"
    model = nnrun.experiment.rundir.RunDirectory(tmp_path / "out").load_model("cancer")
    assert model["classes"] == ["malignant", "benign"]  # sklearn's target_names, in index order
    network = load_network(model, nnrun.load_registry())
    data = make_data(experiment.runs[0])
    x, y = data.test
    predicted = (network.forward(x)[:, 0] > 0).long().numpy()
    assert entry["test_metrics"]["accuracy"] == pytest.approx(
        accuracy_score(y, predicted), rel=1e-12
    )
    assert entry["test_metrics"]["f1_macro"] == pytest.approx(
        f1_score(y, predicted, average="macro"), rel=1e-12
    )
    assert entry["test_metrics"]["accuracy"] > 0.9  # chance is about 0.63

    # predict: class 1's probability is σ(logit), class 0's its complement
    raw = torch.tensor([[1.0] * 30, [-1.0] * 30], dtype=torch.float64)
    header = ",".join(model["inputs"])
    rows = "\n".join(",".join(str(v) for v in r.tolist()) for r in raw)
    (tmp_path / "in.csv").write_text(f"{header}\n{rows}\n")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "out"), str(tmp_path / "in.csv")])
    assert result.exit_code == 0, result.output
    table = list(csv.reader(io.StringIO(result.stdout)))
    classes = model["classes"]
    assert table[0] == ["prediction", *(f"probability_{c}" for c in classes)]
    logits = network.forward(data.standardization.apply(raw).float())[:, 0].double()
    for row, logit in zip(table[1:], logits):
        p1 = torch.sigmoid(logit).item()
        assert [float(v) for v in row[1:]] == pytest.approx([1 - p1, p1], rel=1e-6)
        assert row[0] == classes[int(logit > 0)]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            'name = "bce_with_logits"',
            r"\[loss\] 'cross_entropy' cannot score .* classification targets: .*; use 'bce_with_logits'$",
        ),
        ("layers = [30, 8, 1]", r"the last width must be 2, one output \(logit\) per class \(or 1"),
        (
            'metrics = ["accuracy", "f1_macro"]',
            r"\[train\] metrics: 'r2' is a metric for regression",
        ),
    ],
)
def test_what_does_not_fit_two_classes_is_refused_at_load(tmp_path, edit, message):
    text = textwrap.dedent(BINARY)
    replacement = {
        'name = "bce_with_logits"': 'name = "cross_entropy"',
        "layers = [30, 8, 1]": "layers = [30, 8, 3]",
        'metrics = ["accuracy", "f1_macro"]': 'metrics = ["accuracy", "f1_macro", "r2"]',
    }[edit]
    (tmp_path / "b.toml").write_text(text.replace(edit, replacement))
    with pytest.raises(nnrun.ConfigError, match=message):
        nnrun.load_experiment(tmp_path / "b.toml")
