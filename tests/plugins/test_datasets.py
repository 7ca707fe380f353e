"""The built-in datasets, each against an independent reference (direct torch math, Python's csv
module, numpy, scikit-learn), every bad CSV row with its exact line, and a third-party dataset
registered in-process and through an entry point."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from plugin_sources import THIRD_PARTY_DATASET

import nnrun
from nnrun.cli import main
from nnrun.config import load_experiment
from nnrun.dataset import DataContext
from nnrun.errors import ConfigError
from nnrun.experiment.assemble import make_data
from nnrun.plugins import _csv
from nnrun.plugins.datasets import CsvData, FunctionData, SklearnData, TensorsData


def context(seed: int = 0, dtype: torch.dtype = torch.float32) -> DataContext:
    return DataContext(torch.Generator().manual_seed(seed), dtype)


# ---------------------------------------------------------------- function


def test_two_inputs_and_two_outputs_follow_their_expressions():
    data = FunctionData(
        ["sin(x0) * x1", "x0 + x1**2"], n=500, inputs=2, range=[[-3, 3], [0, 1]]
    ).load(context(dtype=torch.float64))
    x, y = data.x, data.y
    assert x.shape == (500, 2) and y.shape == (500, 2)
    assert data.inputs == ("x0", "x1") and data.targets == ("y0", "y1")
    assert x[:, 0].min() >= -3 and x[:, 0].max() < 3 and x[:, 1].min() >= 0 and x[:, 1].max() < 1
    torch.testing.assert_close(y[:, 0], torch.sin(x[:, 0]) * x[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(y[:, 1], x[:, 0] + x[:, 1] ** 2, rtol=0, atol=0)


def test_one_range_is_shared_by_every_input():
    x = FunctionData("x0 * x1 * x2", n=2000, inputs=3, range=[2, 5]).load(context()).x
    assert x.min() >= 2 and x.max() < 5 and x.min() < 2.1 and x.max() > 4.9


def test_one_input_takes_x_or_x0_alike():
    a = FunctionData("x**2", n=50).load(context(3))
    b = FunctionData("x0**2", n=50).load(context(3))
    assert torch.equal(a.y, b.y) and a.inputs == ("x",) and a.y.shape == (50, 1)


def test_x_is_not_a_variable_of_two_inputs():
    with pytest.raises(ConfigError, match=r"unknown name 'x' \(the input variables are x0, x1\)"):
        FunctionData("x * 2", n=5, inputs=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"range": [[0, 1]], "inputs": 2}, r"one \[low, high\] per input \(2 here\)"),
        ({"range": [1, 0]}, r"Invalid range: \[1\.0, 0\.0\]"),
        ({"inputs": 0}, "Invalid inputs: 0"),
        ({"n": 0}, "Invalid n: 0"),
        ({"expr": []}, "give one expression per output"),
    ],
)
def test_invalid_function_data_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FunctionData(**{"expr": "x0", "n": 5, **kwargs})


def test_an_expression_not_finite_on_part_of_a_two_input_box_names_a_point():
    with pytest.raises(ConfigError, match=r"not finite on part of range .*x0 = -1, x1 = 0"):
        FunctionData("log(x0 + 2) / x1", n=5, inputs=2, range=[[-1, 1], [0, 1]]).load(context())


# ---------------------------------------------------------------- csv

IRIS_LIKE = """\
a,b,species
1.0,2.0,setosa
3.5,-1,virginica
0.25,7e2,versicolor
4,5,setosa
"""


def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def read(tmp_path, text: str, **params):
    return CsvData(str(write(tmp_path, text)), **params).load(context(dtype=torch.float64))


def reference(text: str, delimiter: str = ",") -> list[list[str]]:
    """Python's csv module, the independent reading of the same text."""
    return [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if row]


def test_string_labels_become_classes_in_sorted_order(tmp_path):
    data = read(tmp_path, IRIS_LIKE, task="classification")
    rows = reference(IRIS_LIKE)[1:]
    assert data.classes == ("setosa", "versicolor", "virginica")
    assert data.y.tolist() == [data.classes.index(r[2]) for r in rows]
    assert data.y.dtype == torch.int64 and data.task == "classification"
    assert data.x.tolist() == [[float(r[0]), float(r[1])] for r in rows]
    assert data.inputs == ("a", "b") and data.targets == ("species",)


def test_integer_labels_sort_as_numbers(tmp_path):
    data = read(tmp_path, "x,label\n1,10\n2,9\n3,10\n4,-1\n", task="classification")
    assert data.classes == ("-1", "9", "10") and data.y.tolist() == [2, 1, 2, 0]


def test_columns_are_chosen_by_name_or_index(tmp_path):
    text = "p,q,r,s\n1,2,3,4\n5,6,7,8\n"
    by_name = read(tmp_path, text, inputs=["s", "p"], targets=["q", "r"])
    by_index = read(tmp_path, text, inputs=[3, 0], targets=[1, -2])
    for data in (by_name, by_index):
        assert data.x.tolist() == [[4, 1], [8, 5]] and data.y.tolist() == [[2, 3], [6, 7]]
        assert data.inputs == ("s", "p") and data.targets == ("q", "r")


def test_a_file_without_header_uses_indices_and_another_delimiter(tmp_path):
    data = read(tmp_path, "1;2;3\n4;5;6\n", header=False, delimiter=";")
    assert data.x.tolist() == [[1, 2], [4, 5]] and data.y.tolist() == [[3], [6]]
    assert data.inputs == ("0", "1")


def test_quoted_fields_and_blank_lines_read_as_the_csv_module_does(tmp_path):
    text = 'x,"y, quoted"\n"1.5",2\n\n3,"4"\r\n'
    data = read(tmp_path, text)
    assert data.x.tolist() == [[1.5], [3.0]] and data.y.tolist() == [[2.0], [4.0]]
    assert data.targets == ("y, quoted",)


def test_many_chunks_read_like_one(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3000, 4))
    text = "a,b,c,d\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in values)
    monkeypatch.setattr(_csv, "CHUNK_BYTES", 1000)  # about 90 chunks
    data = read(tmp_path, text)
    np.testing.assert_array_equal(data.x.numpy(), values[:, :3])
    np.testing.assert_array_equal(data.y.numpy(), values[:, 3:])


def test_float32_cells_round_as_numpy_rounds_them(tmp_path):
    text = "x,y\n0.1,1e-3\n3.14159265358979,2.5\n"
    data = CsvData(str(write(tmp_path, text))).load(context(dtype=torch.float32))
    expected = np.loadtxt(text.splitlines()[1:], delimiter=",", dtype=np.float32)
    assert data.x.dtype == torch.float32
    np.testing.assert_array_equal(data.x.numpy()[:, 0], expected[:, 0])


# (file text, the line reported, what follows "data.csv line N")
BAD_ROWS = {
    "missing value": ("a,b,y\n1,2,3\n4,NA,6\n", 3, ", column 'b': 'NA' is a missing value"),
    "empty cell": ("a,b,y\n1,2,3\n4,5,6\n7,,9\n", 4, ", column 'b': the cell is empty"),
    "non-numeric": ("a,b,y\n1,abc,3\n2,3,4\n", 2, ", column 'b': 'abc' is not a number"),
    "not finite": (
        "a,b,y\n1,2,3\n1,inf,3\n",
        3,
        ", column 'b': 'inf' is not a finite number in float64",
    ),
    "too short a row": ("a,b,y\n1,2,3\n4,5\n", 3, " has 2 cells where the header has 3"),
    "too long a row": ("a,b,y\n1,2,3\n\n4,5,6,7\n", 4, " has 4 cells where the header has 3"),
    "empty label": ("a,b,y\n1,2,x\n4,5, \n", 3, ", column 'y': the label is empty"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_row_is_an_error_naming_its_line_and_column(tmp_path, case):
    text, line, problem = BAD_ROWS[case]
    task = "classification" if case == "empty label" else "regression"
    with pytest.raises(ConfigError) as error:
        read(tmp_path, text, task=task)
    assert str(error.value) == (
        f'data.csv line {line}{problem} (or set on_bad_rows = "skip" to leave such rows out)'
    )


@pytest.mark.parametrize("case", BAD_ROWS)
def test_skipping_bad_rows_keeps_the_others_and_counts_them(tmp_path, case):
    text, line, _ = BAD_ROWS[case]
    task = "classification" if case == "empty label" else "regression"
    kept = [r for n, r in enumerate(text.splitlines(), start=1) if n not in (1, line) and r]
    path = write(tmp_path, text)
    data = CsvData(str(path), task=task, on_bad_rows="skip").load(context())
    assert data.x[:, 0].tolist() == [float(r.split(",")[0]) for r in kept]
    assert data.notes == ("skipped 1 bad rows of data.csv",)


def test_a_bad_row_in_a_later_chunk_has_its_own_line(tmp_path, monkeypatch):
    text = "a,y\n" + "1,2\n" * 5000 + "1,oops\n" + "3,4\n" * 10
    monkeypatch.setattr(_csv, "CHUNK_BYTES", 4096)
    with pytest.raises(ConfigError, match=r"^data\.csv line 5002, column 'y': 'oops' is not"):
        read(tmp_path, text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "data.csv is empty"),
        ("\n  \n", "data.csv is empty"),
        ("a,b\n", "data.csv has a header line but no data rows"),
        ("a,b\n\n", "data.csv has a header line but no data rows"),
    ],
)
def test_an_empty_file_or_a_header_alone_is_an_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        read(tmp_path, text)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"targets": "speceis"}, r"has no column 'speceis'; did you mean 'species'\?"),
        ({"inputs": [5]}, r"has 3 columns \(0 to 2\): inputs cannot use column 5"),
        ({"inputs": ["a"], "targets": "a"}, r"column 'a' is both an input and a target"),
        ({"inputs": ["a", "a"]}, r"inputs names a column twice"),
        ({"targets": ["a", "b"], "task": "classification"}, r"one label column"),
    ],
)
def test_columns_that_do_not_fit_the_file_are_refused(tmp_path, params, message):
    with pytest.raises(ValueError, match=message):
        read(tmp_path, IRIS_LIKE, **params)


def test_header_false_with_a_column_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="header = false: use 0-based indices"):
        read(tmp_path, "1,2\n", header=False, targets="b")


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        CsvData(str(path)).load(context())


# ---------------------------------------------------------------- tensors


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_saved_arrays_load_with_their_keys(tmp_path, suffix):
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    labels = np.array([3, 1, 3, 7, 1, 1])
    path = tmp_path / f"data{suffix}"
    if suffix == ".pt":
        torch.save({"inputs": torch.from_numpy(x), "labels": torch.from_numpy(labels)}, path)
    else:
        np.savez(path, inputs=x, labels=labels)
    data = TensorsData(str(path), x="inputs", y="labels", task="classification").load(context())
    assert data.x.dtype == torch.float32 and data.x.tolist() == x.tolist()
    assert data.classes == ("1", "3", "7") and data.y.tolist() == [1, 0, 1, 2, 0, 0]
    regression = TensorsData(str(path), x="inputs", y="labels").load(context())
    assert regression.y.shape == (6, 1) and regression.y[:, 0].tolist() == labels.tolist()


def test_a_pt_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2, 1), "y": torch.zeros(2), "z": _Payload()}, path)
    with pytest.raises(ConfigError, match=r"cannot read it as a \.pt file"):
        TensorsData(str(path)).load(context())


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_an_npz_of_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ConfigError, match=r"cannot read it as \.npz"):
        TensorsData(str(path)).load(context())


def test_a_missing_array_names_what_the_file_holds(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, inputs=np.zeros((2, 1)), y=np.zeros(2))
    with pytest.raises(ConfigError, match=r"data.npz has no array 'x'; it holds 'inputs', 'y'"):
        TensorsData(str(path)).load(context())


# ---------------------------------------------------------------- sklearn


@pytest.mark.parametrize("name", ["iris", "digits", "wine", "breast_cancer", "diabetes"])
def test_sklearn_datasets_are_sklearns_own(name):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = getattr(sklearn_datasets, f"load_{name}")()
    data = SklearnData(name).load(context(dtype=torch.float64))
    np.testing.assert_array_equal(data.x.numpy(), bunch.data)
    if name == "diabetes":
        assert data.task == "regression"
        np.testing.assert_array_equal(data.y[:, 0].numpy(), bunch.target)
    else:
        assert data.task == "classification"
        assert data.classes == tuple(str(c) for c in bunch.target_names)
        np.testing.assert_array_equal(data.y.numpy(), bunch.target)


def test_without_scikit_learn_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    text = (
        '[experiment]\nname = "s"\nseed = 0\n\n[data]\nkind = "sklearn"\ndataset = "iris"\n\n'
        '[model]\nlayers = [4, 3]\n\n[loss]\nname = "cross_entropy"\n\n'
        '[optimizer]\nname = "sgd"\nlr = 0.1\n\n[train]\nepochs = 1\n'
    )
    path = write(tmp_path, text, "experiment.toml")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {path}:7: [data] dataset = 'iris' needs scikit-learn, which is not installed: "
        "pip install 'nnrun[sklearn]'"
    )


# ---------------------------------------------------------------- third-party datasets

PLUGIN_EXPERIMENT = """\
[experiment]
name = "board"
seed = 3

[data]
kind = "checkerboard"
n = 400
size = 3
split = { val = 0.25 }

[model]
layers = [2, 16, 2]
activation = "tanh"

[loss]
name = "cross_entropy"

[optimizer]
name = "adam"
lr = 0.01

[train]
epochs = 2
"""


def _checkerboard_host(nnrun_builtins_host):
    namespace: dict = {}
    exec(compile(THIRD_PARTY_DATASET, "plugin_sources.py", "exec"), namespace)
    plugin = type("Plugin", (), {"register_datasets": staticmethod(namespace["register_datasets"])})
    nnrun_builtins_host.register(plugin, name="checkerboard")
    return nnrun.load_registry(nnrun_builtins_host)


def test_a_registered_dataset_is_checked_split_and_stratified_like_a_builtin(
    tmp_path, nnrun_builtins_host
):
    registry = _checkerboard_host(nnrun_builtins_host)
    path = write(tmp_path, PLUGIN_EXPERIMENT, "experiment.toml")
    (run,) = load_experiment(path, registry=registry).runs
    assert run.data.params == {"n": 400, "size": 3}
    data = make_data(run, registry)
    assert data.classes == ("black", "white") and data.inputs == ("u", "v")
    x, y = data.val
    colour = ((x * 3).floor().long().sum(dim=1)) % 2
    assert torch.equal(colour, y)  # pairs kept through the split
    counts = torch.bincount(torch.cat([data.train[1], y]))
    for c in range(2):
        assert abs(int((y == c).sum()) - 0.25 * int(counts[c])) <= 0.5

    typo = PLUGIN_EXPERIMENT.replace("size = 3", "sise = 3")
    with pytest.raises(ConfigError, match=r":8: \[data\]: dataset 'checkerboard' does not take"):
        load_experiment(write(tmp_path, typo, "typo.toml"), registry=registry)


def test_a_dataset_from_an_installed_distribution_trains_from_the_cli(tmp_path, install_plugin):
    install_plugin(
        "nnrun-checkerboard",
        {"nnrun_checkerboard": THIRD_PARTY_DATASET},
        {"checkerboard": "nnrun_checkerboard"},
    )
    path = write(tmp_path, PLUGIN_EXPERIMENT, "experiment.toml")
    check = CliRunner().invoke(main, ["check", str(path)])
    assert check.exit_code == 0, check.output
    assert "#   [data] kind 'checkerboard' <- nnrun-checkerboard 1.0" in check.stdout
    assert "classification into 2 classes: black, white" in check.stdout
    result = CliRunner().invoke(main, [str(path), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["runs"]
    assert entry["status"] == "ok" and math.isfinite(entry["final_val_loss"])


def test_a_sweep_over_optimizers_loads_its_dataset_once(tmp_path, nnrun_builtins_host):
    loads = []

    class Counted(nnrun.Dataset):
        def __init__(self, n: int):
            self.n = n

        def load(self, context):
            loads.append(self.n)
            x = torch.rand(self.n, 1, generator=context.generator, dtype=context.dtype)
            return nnrun.LoadedData(x, 2 * x, ("x",), ("y",))

    class Plugin:
        @nnrun.hookimpl
        def register_datasets(self, register):
            register("counted", Counted)

    nnrun_builtins_host.register(Plugin(), name="counted")
    registry = nnrun.load_registry(nnrun_builtins_host)
    text = PLUGIN_EXPERIMENT.replace(
        'kind = "checkerboard"\nn = 400\nsize = 3', 'kind = "counted"\nn = 64'
    )
    text = text.replace("[2, 16, 2]", "[1, 4, 1]").replace('"cross_entropy"', '"mse"')
    text += '\n[sweep]\n"optimizer.lr" = [0.1, 0.01, 0.001]\n'
    runs = load_experiment(write(tmp_path, text, "experiment.toml"), registry=registry).runs
    first, *others = [make_data(run, registry) for run in runs]
    assert len(runs) == 3 and loads == [64]
    assert all(torch.equal(first.val[0], other.val[0]) for other in others)


def test_skipped_rows_are_reported_by_check_and_run(tmp_path):
    rows = "".join(f"{i},{i % 3}\n" for i in range(30))
    write(tmp_path, "x,label\n" + rows + "7,\n" + "oops,1\n", "rows.csv")
    text = (
        '[experiment]\nname = "skip"\nseed = 0\n\n[data]\nkind = "csv"\npath = "rows.csv"\n'
        'task = "classification"\non_bad_rows = "skip"\n\n[model]\nlayers = [1, 3]\n\n'
        '[loss]\nname = "cross_entropy"\n\n[optimizer]\nname = "sgd"\nlr = 0.1\n\n'
        "[train]\nepochs = 1\n"
    )
    path = write(tmp_path, text, "experiment.toml")
    check = CliRunner().invoke(main, ["check", str(path)])
    assert "#   [data] kind 'csv': skipped 2 bad rows of rows.csv" in check.stdout
    assert "30 samples (train 30)" in check.stdout
    result = CliRunner().invoke(main, [str(path), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert "nnrun: [data] kind 'csv': skipped 2 bad rows of rows.csv" in result.stderr


def test_a_long_and_a_short_row_in_columns_the_reader_skips_are_still_ragged(tmp_path):
    """Delimiters summed over a chunk would balance out +1 and -1: they are counted per line."""
    text = "y,a,b\n1,2,3\n4,5,6,7\n8,9\n"
    with pytest.raises(ConfigError, match=r"^data\.csv line 3 has 4 cells where the header has 3"):
        read(tmp_path, text, inputs=["a"], targets="y")
