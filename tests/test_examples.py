"""Every experiment in examples/ runs through the CLI, shortened where it would take long, and
leaves its plots and strictly valid JSON (no NaN or Infinity) behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnrun.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: What shortens each example to a second or two; a new example must be added here.
SHORTEN = {
    "x_squared.toml": ["-o", "data.n=200", "-o", "train.epochs=2"],
    "optimizer_sweep.toml": ["-o", "data.n=64", "-o", "train.epochs=1"],
    "optimizer_shootout.toml": [
        *("-o", "train.epochs=2", "-o", "tune.trials=2", "-o", "tune.final_seeds=1"),
    ],
    "roots.toml": [],
    "roots_lr_sweep.toml": ["-o", "solver.max_iter=1000"],
    "iris_csv.toml": ["-o", "train.epochs=5"],
    "seeds.toml": ["-o", "train.epochs=2", "-o", "experiment.seeds=[0, 1, 2]"],
    "digits.toml": ["-o", "train.epochs=2"],
}
PLOTS = {"train": ["loss.png", "fit.png"], "solve": ["descent.png"]}
#: Examples whose data has no curve of one input to draw (fit.png) draw only these.
OWN_PLOTS = {
    "iris_csv.toml": ["loss.png", "confusion.png"],
    "digits.toml": ["loss.png", "confusion.png"],
}


def strict(text: str):
    """json.loads that refuses NaN and ±Infinity, which are not JSON."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def run(name: str, out, *extra: str):
    args = [str(EXAMPLES / name), "--out", str(out), "--json", *SHORTEN[name], *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return strict(result.stdout)


def test_every_example_is_listed_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == sorted(SHORTEN)


#: Twelve runs, even shortened: 1 s on a quiet machine, 10 s on a busy one.
SLOW = {"optimizer_sweep.toml"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in sorted(SHORTEN)],
)
def test_example_runs_and_draws_its_plots(name, tmp_path):
    summary = run(name, tmp_path / "out")
    tasks = {r["task"] for r in summary["runs"]}
    for task in tasks:
        # a tuned experiment draws its final seeds' losses and its trials, not their fits
        plots = (
            ["loss.png", "tune.png"] if summary.get("tune") else OWN_PLOTS.get(name, PLOTS[task])
        )
        for plot in plots:
            assert (tmp_path / "out" / plot).stat().st_size > 0, plot
    strict((tmp_path / "out" / "summary.json").read_text())
    for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines():
        strict(line)
    assert all(r["status"] in ("ok", "diverged") for r in summary["runs"])


def test_roots_lr_sweep_tells_diverged_descents_from_found_roots(tmp_path):
    summary = run("roots_lr_sweep.toml", tmp_path / "out")
    runs = {r["name"]: r for r in summary["runs"]}
    far = [r for name, r in runs.items() if "starts=[-1000,1000]" in name and "lr=" in name]
    assert far and all(r["status"] == "diverged" for r in far)
    assert all(r["roots"] == [] and not r["converged"] and "diverged" in r["reason"] for r in far)
    found = runs["curvature,starts=[-1000,1000]"]
    assert found["status"] == "ok" and found["converged"]
    assert found["roots"] == [0.7639320225002103, 5.23606797749979]
    # max_iter = 1000 is too few for lr = 0.005: not converged, and so not "no roots"
    slow = runs["lr=0.005,starts=[2,4]"]
    assert slow["status"] == "ok" and not slow["converged"] and "not within tol" in slow["reason"]


def test_the_seed_example_shortened_still_learns(tmp_path):
    """The full seed example (20 epochs of 2000 batches of one, four optimizers) is the slow test
    in tests/core/test_cli.py; this one checks the same run in a few seconds."""
    summary = run("x_squared.toml", tmp_path / "out", "-o", "data.n=300", "-o", "train.epochs=3")
    records = [
        strict(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    ]
    for entry in summary["runs"]:
        history = [r for r in records if r["run"] == entry["name"]]
        assert [r["epoch"] for r in history] == [1, 2, 3]
        assert entry["final_loss"] == history[-1]["train_loss"] < history[0]["train_loss"]
        assert set(entry["probes"]) == {"1.0", "2.0", "-1.0", "-2.0"}


def test_the_iris_example_learns_the_species_from_its_csv(tmp_path):
    """150 rows, stratified 60/20/20: after 100 epochs the network separates the species well
    (a linear model reaches about 97% on iris; chance is 33%), measured by the loss here."""
    summary = run("iris_csv.toml", tmp_path / "out", "-o", "train.epochs=100")
    (entry,) = summary["runs"]
    assert entry["status"] == "ok"
    # cross-entropy of a uniform guess over 3 classes is log 3 ≈ 1.10
    assert entry["final_loss"] < 0.2 and entry["final_val_loss"] < 0.3

    # and the metrics: accuracy on the held-out test split, a fraction in [0, 1]
    assert 0.8 < entry["test_metrics"]["accuracy"] <= 1.0


def test_the_seeds_example_has_a_group_per_optimizer_and_compares_them(tmp_path):
    summary = run("seeds.toml", tmp_path / "out")
    assert [(g["name"], g["n"]) for g in summary["groups"]] == [("sgd", 3), ("adam", 3)]
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    (pair,) = strict(result.stdout)["pairs"]
    assert (pair["a"], pair["b"], pair["test"], pair["n"]) == ("sgd", "adam", "paired", 3)


@pytest.mark.slow
def test_the_digits_yardstick_reaches_97_percent_test_accuracy(tmp_path):
    """The README's yardstick, as the file stands: 60 epochs on the stratified 70/10/20 split.
    (Its training time is measured by benchmarks/digits.py, not asserted here: no test times.)"""
    summary = run("digits.toml", tmp_path / "out", "-o", "train.epochs=60")
    (entry,) = summary["runs"]
    assert entry["status"] == "ok" and entry["epochs"] == 60
    assert entry["test_metrics"]["accuracy"] >= 0.97


def test_predict_on_the_iris_training_file_reuses_its_standardization_and_class_names(tmp_path):
    """The round trip of the README's predict example: the CSV the model was trained on, header
    and all, gives back the species names; its test-split accuracy is the summary's."""
    import csv
    import io

    import torch

    import nnrun
    from nnrun.experiment.assemble import make_data

    summary = run("iris_csv.toml", tmp_path / "out", "-o", "train.epochs=60")
    result = CliRunner().invoke(
        main, ["predict", str(tmp_path / "out"), str(EXAMPLES / "data" / "iris.csv")]
    )
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    truth = list(csv.DictReader((EXAMPLES / "data" / "iris.csv").open()))
    assert len(table) == len(truth) == 150
    assert set(table[0]) == {
        "prediction",
        "probability_setosa",
        "probability_versicolor",
        "probability_virginica",
    }
    for row in table:
        assert sum(float(row[k]) for k in row if k != "prediction") == pytest.approx(1.0)
    right = sum(p["prediction"] == t["species"] for p, t in zip(table, truth))
    assert right / 150 > 0.9
    # the test split, predicted from raw rows, scores what training reported
    (config,) = nnrun.load_experiment(EXAMPLES / "iris_csv.toml").runs
    data = make_data(config)
    columns = [c for c in truth[0] if c != "species"]
    raw = torch.tensor([[float(r[c]) for c in columns] for r in truth], dtype=torch.float64)
    scaled = data.standardization.apply(raw).to(data.test[0].dtype)
    index = [int(torch.isclose(scaled, x, atol=1e-6).all(dim=1).nonzero()[0]) for x in data.test[0]]
    accuracy = sum(
        table[i]["prediction"] == data.classes[int(y)] for i, y in zip(index, data.test[1])
    ) / len(index)
    assert accuracy == pytest.approx(summary["runs"][0]["test_metrics"]["accuracy"], abs=1e-12)
