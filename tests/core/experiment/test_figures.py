"""The plots are real PNGs of the promised size, written atomically, and survive zeros and NaN."""

from __future__ import annotations

import math

import matplotlib.image
import pytest
import torch

from nnrun.experiment import figures
from nnrun.experiment.safefiles import RunDirectoryError
from nnrun.solver import Descent

# A glyph missing from the font or a log axis fed a zero shows up as a warning: make it fail.
pytestmark = pytest.mark.filterwarnings("error")

NAN, INF = float("nan"), float("inf")


def history(losses, val=None):
    val = val if val is not None else [None] * len(losses)
    return [
        {"epoch": i, "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(zip(losses, val))
    ]


def assert_png(path):
    image = matplotlib.image.imread(path)
    assert image.shape == (500, 800, 4)  # 8×5 inches at 100 dpi, RGBA
    assert image[..., :3].std() > 0.01  # something is drawn, not a blank canvas
    assert path.stat().st_size > 5_000
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_plot_losses_writes_a_png(tmp_path):
    runs = {
        "adam": history([1.0, 0.5, 0.2, 0.1], [1.1, 0.6, 0.3, 0.2]),
        "sgd": history([1.0, 0.9, 0.8, 0.7]),
    }
    path = figures.plot_losses(runs, tmp_path / "losses.png")
    assert path == tmp_path / "losses.png"
    assert_png(path)


def test_train_is_solid_and_val_dashed_in_the_same_colour():
    fig = figures.loss_figure({"a": history([1.0, 0.5], [1.2, 0.7]), "b": history([2.0, 1.0])})
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"a train", "a val", "b train"}  # no val line when there is no val loss
    assert lines["a train"].get_linestyle() == "-" and lines["a val"].get_linestyle() == "--"
    assert (
        lines["a train"].get_color() == lines["a val"].get_color() != lines["b train"].get_color()
    )
    assert list(lines["a val"].get_ydata()) == [1.2, 0.7]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch" and ax.get_title()


def test_losses_a_log_axis_cannot_show_are_left_out_and_counted(tmp_path):
    runs = {"diverged": history([1.0, 0.0, NAN, -1.0, INF, 0.5], [0.9, None, 0.8, 0.0, 0.7, 0.6])}
    ax = figures.loss_figure(runs).axes[0]
    train, val = ax.get_lines()
    assert list(train.get_xdata()) == [0, 5] and list(train.get_ydata()) == [1.0, 0.5]
    assert train.get_label() == "diverged train (4 values ≤ 0, > 1e250 or non-finite not shown)"
    assert (
        val.get_label() == "diverged val (1 value ≤ 0, > 1e250 or non-finite not shown)"
    )  # None is no value
    assert ax.get_yscale() == "log"
    assert_png(figures.plot_losses(runs, tmp_path / "losses.png"))


def test_losses_without_a_positive_value_use_a_linear_axis(tmp_path):
    runs = {"zero": history([0.0, 0.0]), "nan": history([NAN])}
    assert figures.loss_figure(runs).axes[0].get_yscale() == "linear"
    path = figures.plot_losses(runs, tmp_path / "losses.png")
    assert matplotlib.image.imread(path).shape == (500, 800, 4)


def test_plot_fit_draws_data_target_and_sorted_predictions(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, generator=g) * 4 - 2
    y = torch.sin(x) + 0.1 * torch.randn(200, 1, generator=g)
    predictions = {"good": (x, 0.9 * torch.sin(x)), "diverged": (x[:20], 1e6 * x[:20])}
    path = figures.plot_fit(x, y, torch.sin, predictions, tmp_path / "sub" / "fit.png")
    assert_png(path)

    ax = figures.fit_figure(x, y, torch.sin, predictions).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"target", "good", "diverged"}
    grid, target = lines["target"].get_xdata(), lines["target"].get_ydata()
    assert grid.min() == pytest.approx(x.min().item()) and grid.max() == pytest.approx(
        x.max().item()
    )
    assert target == pytest.approx([math.sin(v) for v in grid])
    assert list(lines["good"].get_xdata()) == sorted(x.flatten().tolist())
    # The y-range follows data and target, not a prediction a million times too large.
    low, high = ax.get_ylim()
    assert -3 < low < y.min().item() and y.max().item() < high < 3


def test_plot_fit_accepts_no_target_and_float64_data(tmp_path):
    x = torch.linspace(0, 1, 50, dtype=torch.float64).unsqueeze(1)
    assert_png(figures.plot_fit(x, x**2, None, {"run": (x, x)}, tmp_path / "fit.png"))


def test_plot_descent_draws_a_line_per_run_and_start(tmp_path):
    descents = {
        "newton": [
            Descent(
                start=1.0, end=2.0, iterations=5, converged=True, residuals=[3, 1, 0.1, 1e-4, 0.0]
            ),
            Descent(start=-1.5, end=-2.0, iterations=3, converged=False, residuals=[3, NAN, 1]),
        ],
        "gd": [Descent(start=0.5, end=2.0, iterations=1, converged=True, residuals=[1e-9])],
    }
    assert_png(figures.plot_descent(descents, tmp_path / "descent.png"))

    ax = figures.descent_figure(descents).axes[0]
    labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label().split(" → ")[0] for line in labelled] == [
        "newton: x₀ = 1",
        "newton: x₀ = -1.5",
        "gd: x₀ = 0.5",
    ]
    assert "not converged" in labelled[1].get_label()
    assert list(labelled[0].get_ydata()) == [3, 1, 0.1, 1e-4]  # the exact zero is left out


def test_a_diverged_descent_read_back_from_json_draws_and_says_diverged(tmp_path):
    """metrics.jsonl keeps a non-finite end as null: the label must not format None."""
    descent = Descent(start=-1000.0, end=None, iterations=4, converged=False, diverged=True)
    descent.residuals = [1e-17, 1e6, 1e249, 1e305, NAN]  # on its way to overflow
    ax = figures.descent_figure({"lr=0.1": [descent]}).axes[0]
    (line,) = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert line.get_label().startswith("lr=0.1: x₀ = -1000 → ±inf, diverged")
    assert_png(figures.plot_descent({"lr=0.1": [descent]}, tmp_path / "descent.png"))
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "iteration"


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "losses.png"
    path.write_bytes(b"old")
    fig = figures.loss_figure({"a": history([1.0, 0.5])})

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", fail)
    with pytest.raises(RunDirectoryError, match=r"losses\.png: cannot write it: disk full"):
        figures.save_figure(fig, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["losses.png"]


def test_a_sweeps_many_runs_get_distinct_colours_and_a_legend_beside_the_axes():
    histories = {
        f"run{i}": [{"epoch": 1, "train_loss": 1.0 + i}, {"epoch": 2, "train_loss": 0.5}]
        for i in range(12)
    }
    fig = figures.loss_figure(histories)
    (ax,) = fig.axes
    colours = [line.get_color() for line in ax.get_lines()]
    assert len(set(colours)) == 12
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # right of the axes
    assert fig.get_size_inches()[0] > figures.SIZE[0]


@pytest.mark.parametrize("band", ["minmax", "ci95"])
def test_group_losses_draw_the_median_and_a_band_of_the_seeds(tmp_path, band):
    seeds = [history([1.0, 0.5, 0.2]), history([2.0, 0.4, 0.1]), history([1.5, 0.45, NAN])]
    groups = {"adam": seeds, "sgd": [history([1.0, 0.9])]}
    fig = figures.group_loss_figure(groups, band)
    (ax,) = fig.axes
    medians = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert medians["adam train (n=3)"] == pytest.approx([1.5, 0.45, 0.15])  # epoch 2: NaN left out
    (adam_band, _) = ax.collections
    edges = adam_band.get_paths()[0].vertices[:, 1]
    if band == "minmax":
        assert min(edges) == pytest.approx(0.1) and max(edges) == pytest.approx(2.0)
    else:  # the 95% interval of the mean of 1.0, 2.0, 1.5 reaches past both
        assert max(edges) == pytest.approx(1.5 + 4.302652729911275 * 0.5 / math.sqrt(3))
    assert ax.get_ylim()[1] >= max(edges)  # the band is not cut off
    assert_png(figures.plot_group_losses(groups, tmp_path / "plots" / "loss.png", band))


def test_metrics_get_a_panel_under_the_losses_one_line_per_run_and_metric(tmp_path):
    rows = history([1.0, 0.5, 0.25], [1.1, 0.6, 0.3])
    for row, accuracy in zip(rows, [0.5, 0.75, 0.875]):
        row |= {"val_accuracy": accuracy, "val_f1_macro": accuracy - 0.125}
    fig = figures.loss_figure({"a": rows, "b": history([1.0, 0.9, 0.8])})
    loss_ax, metric_ax = fig.axes
    assert {line.get_label() for line in loss_ax.get_lines()} == {"a train", "a val", "b train"}
    lines = {line.get_label(): line for line in metric_ax.get_lines()}
    assert set(lines) == {"a val_accuracy", "a val_f1_macro"}
    assert list(lines["a val_accuracy"].get_ydata()) == [0.5, 0.75, 0.875]
    assert metric_ax.get_yscale() == "linear"  # accuracy in [0, 1] reads best on a linear axis
    path = figures.plot_losses({"a": rows}, tmp_path / "loss.png")
    assert matplotlib.image.imread(path).shape == (900, 800, 4)  # 8×9 inches: two panels


def test_without_metrics_the_loss_figure_keeps_one_panel():
    assert len(figures.loss_figure({"a": history([1.0, 0.5])}).axes) == 1


def test_confusion_shows_counts_and_rows_normalised_for_each_run(tmp_path):
    counts = torch.tensor([[3, 1, 0], [0, 4, 0], [2, 0, 2]])
    matrices = {
        "a": (counts, ["cat", "dog", "eel"], "test"),
        "b": (counts.T, ["c", "d", "e"], "val"),
    }
    fig = figures.confusion_figure(matrices)
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 4  # counts and normalised, per run
    left, right = images[0].get_images()[0].get_array(), images[1].get_images()[0].get_array()
    assert left.tolist() == counts.tolist()
    # each true class's row divided by its count: the recall of every class on the diagonal
    assert right[0].tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert right[2].tolist() == pytest.approx([0.5, 0.0, 0.5])
    cells = [t.get_text() for t in images[0].texts]
    assert cells[:3] == ["3", "1", "0"] and "0.75" in [t.get_text() for t in images[1].texts]
    assert [t.get_text() for t in images[0].get_xticklabels()] == ["cat", "dog", "eel"]
    assert images[0].get_title() == "a: counts\ntest split (12 samples)"
    assert images[1].get_title() == "a: normalised by true class\ntest split (12 samples)"
    path = figures.plot_confusion(matrices, tmp_path / "confusion.png")
    assert matplotlib.image.imread(path).shape == (800, 900, 4)  # two 4-inch rows, 9 wide


def test_a_class_without_samples_is_a_row_of_zeros_not_nan():
    counts = torch.tensor([[2, 0], [0, 0]])
    fig = figures.confusion_figure({"a": (counts, ["x", "y"], "test")})
    normalised = [ax for ax in fig.axes if ax.get_images()][1].get_images()[0].get_array()
    assert normalised.tolist() == [[1.0, 0.0], [0.0, 0.0]]
