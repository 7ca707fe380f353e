"""`nnrun predict`: the saved final model applied to a CSV of inputs, against the network itself
evaluated on the same inputs; and the model file read back as untrusted input."""

from __future__ import annotations

import csv
import io
import pickle
import textwrap

import pytest
import torch
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.experiment.assemble import make_model

REGRESSION = """
[experiment]
name = "fit"
seed = 1
dtype = "float64"

[data]
expr = "sin(2*x)"
n = 40

[model]
layers = [1, 8, 1]
activation = "tanh"

[optimizer]
name = "adam"
lr = 0.05

[train]
epochs = 5
batch_size = 8
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished regression run directory and its resolved run."""
    root = tmp_path_factory.mktemp("predict")
    (root / "fit.toml").write_text(textwrap.dedent(REGRESSION))
    experiment = nnrun.load_experiment(root / "fit.toml")
    nnrun.run_experiment(experiment, root / "out")
    return root / "out", experiment.runs[0]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rows(text):
    return list(csv.reader(io.StringIO(text)))


def reference(run_dir, config, x):
    """The network rebuilt from the config and the last checkpoint (not the model file)."""
    model = make_model(config, nnrun.load_registry())
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "fit" / "last")["model"])
    return model.forward(torch.tensor(x, dtype=torch.float64)[:, None])[:, 0].tolist()


@pytest.mark.parametrize("header", [True, False])
def test_predictions_are_the_final_networks_outputs(tmp_path, trained, header):
    run_dir, config = trained
    x = [0.5, -0.25, 0.0, 1.5]
    (tmp_path / "in.csv").write_text(("x\n" if header else "") + "".join(f"{v}\n" for v in x))
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table[0] == ["prediction"]
    # the shortest repr of each float64: read back, the very same numbers
    assert [float(r[0]) for r in table[1:]] == reference(run_dir, config, x)


def test_a_header_picks_the_input_columns_by_name_and_ignores_the_others(tmp_path, trained):
    run_dir, config = trained
    (tmp_path / "in.csv").write_text("id,y,x\n7,0.1,0.5\n8,0.2,-1.0\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 0, result.output
    assert [float(r[0]) for r in rows(result.stdout)[1:]] == reference(run_dir, config, [0.5, -1.0])


def test_out_writes_the_file_and_prints_nothing(tmp_path, trained):
    run_dir, _ = trained
    (tmp_path / "in.csv").write_text("x\n0.5\n")
    (tmp_path / "p.csv").write_text("an older file\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0 and result.stdout == ""
    assert rows((tmp_path / "p.csv").read_text())[0] == ["prediction"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "p.csv"]  # no temporary left


BAD_INPUTS = {
    "a header without the input column": ("z\n0.5\n", r"in\.csv: the header has no column 'x'"),
    "a header with a near miss": ("X1\n0.5\n", r"no column 'x'; did you mean 'X1'\?"),
    "too many columns without a header": (
        "1,2\n",
        r"in\.csv, line 1: 2 columns, but the model takes 1 inputs \(x\)",
    ),
    "a cell that is not a number": (
        "x\n0.5\nabc\n",
        r"in\.csv, line 3, column 'x': 'abc' is not a number",
    ),
    "a row short of the input column": (
        "id,x\n7,0.5\n8\n",
        r"in\.csv, line 3: 1 cells where the first line has 2",
    ),
    "an empty file": ("", r"in\.csv is empty: it needs the input columns x"),
    "a header and no rows": ("x\n", r"in\.csv has a header line but no rows to predict"),
    "an infinite input": ("x\n0.5\ninf\n", r"in\.csv: row 2 holds a value that is not finite"),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_a_csv_that_does_not_fit_the_model_is_a_one_line_error(tmp_path, trained, case):
    run_dir, _ = trained
    text, message = case
    (tmp_path / "in.csv").write_text(text)
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.output
    error = result.stderr.strip()
    assert "\n" not in error and error.startswith("Error: ")
    assert pytest.importorskip("re").search(message, error), error


def test_a_missing_input_file_or_run_is_named(tmp_path, trained):
    run_dir, _ = trained
    result = invoke("predict", run_dir, tmp_path / "nope.csv")
    assert result.exit_code == 2 and "nope.csv: no such file" in result.stderr
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv", "--run", "fitt")
    assert result.exit_code == 2 and "has no run 'fitt'; did you mean 'fit'?" in result.stderr


def test_several_runs_need_run(tmp_path):
    text = textwrap.dedent(REGRESSION).replace("epochs = 5", "epochs = 1")
    text += '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\n'
    (tmp_path / "two.toml").write_text(text)
    nnrun.run_experiment(nnrun.load_experiment(tmp_path / "two.toml"), tmp_path / "out")
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", tmp_path / "out", tmp_path / "in.csv")
    assert (
        result.exit_code == 2 and "holds 2 runs: choose one with --run NAME (a, b)" in result.stderr
    )
    assert invoke("predict", tmp_path / "out", tmp_path / "in.csv", "--run", "b").exit_code == 0


def _copy(run_dir, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(run_dir, target, symlinks=True)
    return target


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_crafted_model_file_is_refused_without_running_it(tmp_path, trained, capfd):
    run_dir = _copy(trained[0], tmp_path)
    (run_dir / "models" / "fit.pt").write_bytes(pickle.dumps({"format": Exploit()}))
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 2 and "damaged or not written by nnrun" in result.stderr
    assert "pwned" not in capfd.readouterr().out + result.output


def test_a_model_file_of_another_format_is_refused(tmp_path, trained):
    run_dir = _copy(trained[0], tmp_path)
    torch.save({"weights": []}, run_dir / "models" / "fit.pt")
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 2 and "not an nnrun model file" in result.stderr


def test_a_run_that_did_not_finish_has_no_model(tmp_path, trained):
    run_dir = _copy(trained[0], tmp_path)
    (run_dir / "models" / "fit.pt").unlink()
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", run_dir, tmp_path / "in.csv")
    assert result.exit_code == 2 and "run 'fit' has no saved model (models/fit.pt)" in result.stderr


def test_force_deletes_the_models_and_refuses_a_foreign_file_among_them(tmp_path, trained):
    run_dir = _copy(trained[0], tmp_path)
    experiment = nnrun.load_experiment(tmp_path / ".." / trained[0].parent.name / "fit.toml")
    (run_dir / "models" / "notes.txt").write_text("mine")
    with pytest.raises(nnrun.ConfigError, match=r"also holds models/notes\.txt"):
        nnrun.run_experiment(experiment, run_dir, force=True)
    (run_dir / "models" / "notes.txt").unlink()
    nnrun.run_experiment(experiment, run_dir, force=True)
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == ["fit.pt"]


def test_the_input_csv_is_read_with_the_training_files_delimiter(tmp_path):
    rows_ = "a;b;label\n" + "".join(
        f"{i / 10};{1 - i / 10};{'yes' if i > 4 else 'no'}\n" for i in range(10)
    )
    (tmp_path / "train.csv").write_text(rows_)
    (tmp_path / "e.toml").write_text(
        textwrap.dedent(
            """
            [experiment]
            name = "semi"
            seed = 0
            [data]
            kind = "csv"
            path = "train.csv"
            delimiter = ";"
            targets = "label"
            task = "classification"
            standardize = true
            [model]
            layers = [2, 4, 2]
            [loss]
            name = "cross_entropy"
            [optimizer]
            name = "adam"
            lr = 0.05
            [train]
            epochs = 3
            """
        )
    )
    nnrun.run_experiment(nnrun.load_experiment(tmp_path / "e.toml"), tmp_path / "out")
    result = invoke("predict", tmp_path / "out", tmp_path / "train.csv")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table[0] == ["prediction", "probability_no", "probability_yes"] and len(table) == 11
    assert {r[0] for r in table[1:]} <= {"no", "yes"}
