"""confusion.png from a run directory: the counts are the final model's on the test split, laid
out as sklearn's confusion_matrix lays them out (true class down, predicted across)."""

from __future__ import annotations

import textwrap

import matplotlib.image
import pytest
import torch

import nnrun
from nnrun.experiment.run_plots import confusion_counts


@pytest.mark.parametrize("seed", range(3))
def test_confusion_counts_equal_sklearns_confusion_matrix(seed):
    skm = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(4, (60,), generator=generator)
    predicted = torch.where(torch.rand(60, generator=generator) < 0.6, target, (target + 1) % 4)
    expected = skm.confusion_matrix(target.numpy(), predicted.numpy(), labels=range(4))
    assert confusion_counts(predicted, target, 4).tolist() == expected.tolist()


def test_a_classification_run_directory_gets_confusion_png_and_a_regression_one_does_not(
    tmp_path, monkeypatch
):
    pytest.importorskip("sklearn")
    from nnrun.experiment import figures

    drawn = {}
    original = figures.confusion_figure

    def spy(matrices):
        drawn.update(matrices)
        return original(matrices)

    monkeypatch.setattr(figures, "confusion_figure", spy)
    text = textwrap.dedent(
        """
        [experiment]
        name = "wine"
        seed = 0
        [data]
        kind = "sklearn"
        dataset = "wine"
        split = { val = 0.2, test = 0.25 }
        standardize = true
        [model]
        layers = [13, 8, 3]
        [loss]
        name = "cross_entropy"
        [optimizer]
        name = "adam"
        lr = 0.05
        [train]
        epochs = 5
        metrics = ["accuracy"]
        """
    )
    (tmp_path / "wine.toml").write_text(text)
    summary = nnrun.run_experiment(nnrun.load_experiment(tmp_path / "wine.toml"), tmp_path / "out")
    counts, classes, split = drawn["wine"]
    assert split == "test" and len(classes) == 3
    test_size = 45  # a quarter of 178, stratified
    assert int(counts.sum()) == test_size
    accuracy = summary["runs"][0]["test_metrics"]["accuracy"]
    assert counts.trace().item() / test_size == pytest.approx(accuracy, abs=1e-12)
    assert matplotlib.image.imread(tmp_path / "out" / "confusion.png").shape[-1] == 4
    regression = text.replace('"wine"', '"diabetes"').replace("[13, 8, 3]", "[10, 8, 1]")
    regression = regression.replace('name = "cross_entropy"', 'name = "mse"').replace(
        '["accuracy"]', '["r2"]'
    )
    (tmp_path / "diabetes.toml").write_text(regression)
    nnrun.run_experiment(nnrun.load_experiment(tmp_path / "diabetes.toml"), tmp_path / "reg")
    assert not (tmp_path / "reg" / "confusion.png").exists()
