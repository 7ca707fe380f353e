"""Every bad experiment file the suite knows, in one place: `tests/core/config/test_schema.py`
checks each message and its line, `tests/test_check_run_agree.py` that `nnrun check` and
`nnrun run` (with one job or two) refuse each alike."""

from __future__ import annotations

from pathlib import Path

BASE = """\
[experiment]
name = "schema"
seed = 0

[data]
expr = "x**2"
n = 40

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.01

[train]
epochs = 3
"""

SOLVE = """\
[experiment]
name = "roots"
task = "solve"

[solver]
name = "quadratic_descent"
a = 1.0
b = -6.0
c = 4.0
"""


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# (text, the line holding the mistake, what the message says after "file:line: ")
WITH_LINE = {
    # unknown keys, anywhere
    "unknown key in [experiment]": (
        edit(BASE, "seed = 0", "seed = 0\nsed = 1"),
        "sed = 1",
        r"\[experiment\] unknown key 'sed'; did you mean 'seed'\?; "
        r"\[experiment\] takes name, seed, task, device, dtype",
    ),
    "unknown key in an inline sub-table": (
        edit(BASE, "n = 40", "n = 40\nsplit = { tst = 0.1 }"),
        "tst = 0.1",
        r"\[data\.split\] unknown key 'tst'; did you mean 'test'\?; \[data\.split\] takes val, test$",
    ),
    "unknown key in a sub-table header": (
        BASE + "\n[data.split]\nvall = 0.1\n",
        "vall = 0.1",
        r"\[data\.split\] unknown key 'vall'; did you mean 'val'\?",
    ),
    "unknown key in [model]": (
        edit(BASE, "layers = [1, 4, 1]", "layers = [1, 4, 1]\nactivations = 'relu'"),
        "activations =",
        r"\[model\] unknown key 'activations'; did you mean 'activation'\?",
    ),
    # the key another table has: the line is the one in [train], not [optimizer]'s lr
    "unknown key that another table has": (
        BASE + "lr = 0.1\n",
        "lr = 0.1",
        r"\[train\] unknown key 'lr'; \[train\] takes epochs, batch_size, probes, shuffle, metrics, "
        r"early_stopping, restore_best, grad_clip, log_every, checkpoint_every",
    ),
    # a misspelt required key is reported as the typo, not as the key that is then missing
    "misspelt required key": (
        edit(BASE, "expr = ", "exp = "),
        "exp = ",
        r"\[data\]: dataset 'function' does not take 'exp'; did you mean 'expr'\?; it takes expr, n",
    ),
    "unknown key in a run": (
        BASE + '\n[[runs]]\nname = "a"\ntrain = { epochs = 2, shufle = true }\n',
        "shufle = true",
        r"\[train\] unknown key 'shufle'; did you mean 'shuffle'\?",
    ),
    # wrong types: TOML has real types, so nothing is coerced
    "string for an integer": (
        edit(BASE, "epochs = 3", 'epochs = "3"'),
        "epochs =",
        r'\[train\] epochs = "3": Input should be a valid integer',
    ),
    "boolean for an integer": (
        edit(BASE, "epochs = 3", "epochs = true"),
        "epochs =",
        r"\[train\] epochs = true: Input should be a valid integer",
    ),
    "float for an integer": (
        edit(BASE, "epochs = 3", "epochs = 3.0"),
        "epochs =",
        r"\[train\] epochs = 3\.0: Input should be a valid integer",
    ),
    "string for a boolean": (
        BASE + 'shuffle = "yes"\n',
        "shuffle =",
        r'\[train\] shuffle = "yes": Input should be a valid boolean',
    ),
    "integer for a boolean": (
        BASE + "shuffle = 1\n",
        "shuffle =",
        r"\[train\] shuffle = 1: Input should be a valid boolean",
    ),
    "string for a number": (
        edit(BASE, "n = 40", 'n = 40\nnoise = "0.1"'),
        "noise =",
        r"\[data\]: noise = '0\.1': noise: Input should be a valid number",
    ),
    "string in a list of numbers": (
        BASE + 'probes = [1.0, "two"]\n',
        "probes =",
        r'\[train\] probes\[1\] = "two": Input should be a valid number',
    ),
    "string for a list": (
        edit(BASE, "layers = [1, 4, 1]", 'layers = "1, 4, 1"'),
        "layers =",
        r'\[model\] layers = "1, 4, 1": Input should be a valid list',
    ),
    "number for a table": (
        edit(BASE, "n = 40", "n = 40\nsplit = 0.1"),
        "split =",
        r"\[data\] split = 0\.1: Input should be a valid dictionary",
    ),
    "number for a component": (
        edit(BASE, "layers = [1, 4, 1]", "layers = [1, 4, 1]\nactivation = 3"),
        "activation =",
        r"\[model\] activation = 3: Input should be a valid dictionary",
    ),
    "three numbers for a range": (
        edit(BASE, "n = 40", "n = 40\nrange = [0.0, 1.0, 2.0]"),
        "range =",
        r"\[data\]: dataset 'function': Invalid range: \[0\.0, 1\.0, 2\.0\]; range is \[low, high\] "
        r"for every input or one \[low, high\] per input \(1 here\)",
    ),
    "unknown distributed backend": (
        BASE + '\n[distributed]\nbackend = "mpi"\n',
        "backend =",
        r"\[distributed\] backend = \"mpi\": Input should be 'auto', 'gloo' or 'nccl'",
    ),
    # out of range
    "empty all-reduce buckets": (
        BASE + "\n[distributed]\nbucket_mb = 0\n",
        "bucket_mb =",
        r"\[distributed\] bucket_mb = 0: Input should be greater than 0",
    ),
    "val share of 1": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = 1.0 }"),
        "split =",
        r"\[data\.split\] val = 1\.0: Input should be less than 1",
    ),
    "negative val share": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = -0.1 }"),
        "split =",
        r"\[data\.split\] val = -0\.1: Input should be greater than or equal to 0",
    ),
    "negative noise": (
        edit(BASE, "n = 40", "n = 40\nnoise = -1.0"),
        "noise =",
        r"\[data\]: dataset 'function': Invalid noise: -1\.0; noise must be finite and at least 0",
    ),
    "reversed range": (
        edit(BASE, "n = 40", "n = 40\nrange = [2.0, -2.0]"),
        "range =",
        r"\[data\]: dataset 'function': Invalid range: \[2\.0, -2\.0\]; range must be \[low, high\] "
        r"with finite low < high",
    ),
    "zero grad_clip": (
        BASE + "grad_clip = 0.0\n",
        "grad_clip",
        r"\[train\] grad_clip = 0\.0: Input should be greater than 0",
    ),
    "zero log_every": (
        BASE + "log_every = 0\n",
        "log_every",
        r"\[train\] log_every = 0: Input should be greater than or equal to 1",
    ),
    "zero checkpoint_every": (
        BASE + "checkpoint_every = 0\n",
        "checkpoint_every",
        r"\[train\] checkpoint_every = 0: Input should be greater than or equal to 1",
    ),
    "zero patience": (
        edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.2 }") + "early_stopping = 0\n",
        "early_stopping",
        r"\[train\] early_stopping = 0: Input should be greater than or equal to 1",
    ),
    "negative seed": (
        edit(BASE, "seed = 0", "seed = -1"),
        "seed =",
        r"\[experiment\] seed = -1: Input should be greater than or equal to 0",
    ),
    "unknown task": (
        edit(BASE, "seed = 0", 'seed = 0\ntask = "fit"'),
        "task =",
        r"\[experiment\] task = \"fit\": Input should be 'train' or 'solve'",
    ),
    "unknown dtype": (
        edit(BASE, "seed = 0", 'seed = 0\ndtype = "float16"'),
        "dtype =",
        r"\[experiment\] dtype = \"float16\": Input should be 'float32' or 'float64'",
    ),
    "unknown device": (
        edit(BASE, "seed = 0", 'seed = 0\ndevice = "gpu"'),
        "device =",
        r"\[experiment\] device = \"gpu\": device must be 'cpu', 'cuda' or 'cuda:N'",
    ),
    # a run's own mistake is placed on the run's line, not on the base table's
    "a run's out-of-range value": (
        BASE + '\n[[runs]]\nname = "a"\n\n[[runs]]\nname = "b"\ntrain = { epochs = 0 }\n',
        "epochs = 0",
        r"run 'b': \[train\] epochs = 0: Input should be greater than or equal to 1",
    ),
    "a run's mistake in a sub-table header": (
        BASE + '\n[[runs]]\nname = "a"\n\n[runs.train]\nepochs = -2\n',
        "epochs = -2",
        r"\[train\] epochs = -2: Input should be greater than or equal to 1",
    ),
    # [experiment] requires: a distribution the experiment depends on
    "a requirement that is not PEP 508": (
        edit(BASE, "seed = 0", 'seed = 0\nrequires = ["nnrun-extra-optim >> 0.2"]'),
        "requires =",
        r"\[experiment\] requires = \[\"nnrun-extra-optim >> 0.2\"\]: 'nnrun-extra-optim >> 0.2' "
        r"is not a requirement like \"nnrun-extra-optim>=0.2\" \(PEP 508\)",
    ),
    "a required distribution that is not installed": (
        edit(BASE, "seed = 0", 'seed = 0\nrequires = ["nnrun-not-installed>=0.2"]'),
        "requires =",
        r"\[experiment\] requires 'nnrun-not-installed>=0.2', which is not installed: "
        r"pip install 'nnrun-not-installed>=0.2'$",
    ),
    "a required version that is not installed": (
        edit(BASE, "seed = 0", 'seed = 0\nrequires = ["nnrun>=99"]'),
        "requires =",
        r"\[experiment\] requires 'nnrun>=99', and nnrun 0\.1\.0 is installed: "
        r"pip install -U 'nnrun>=99'$",
    ),
}


# Mistakes no single line holds: the message names the file and the table.
WITHOUT_LINE = {
    "missing layers": (edit(BASE, "layers = [1, 4, 1]\n", ""), r"\[model\] 'layers' is required"),
    "missing epochs": (edit(BASE, "epochs = 3\n", ""), r"\[train\] 'epochs' is required"),
    "missing optimizer name": (
        edit(BASE, 'name = "sgd"\n', ""),
        r"\[optimizer\] 'name' is required",
    ),
    "missing tables": (
        BASE.split("[model]")[0],
        r"a train experiment needs \[model\], \[optimizer\], \[train\]$",
    ),
    "[solver] in a train experiment": (
        BASE + '\n[solver]\nname = "quadratic_descent"\n',
        r"\[solver\] is only used when \[experiment\] task = 'solve'",
    ),
    "[model] in a solve experiment": (
        SOLVE + "\n[model]\nlayers = [1, 4, 1]\n",
        r"\[model\] not used when task = 'solve'",
    ),
    "[scheduler] in a solve experiment": (
        SOLVE + '\n[scheduler]\nname = "step"\nstep_size = 2\n',
        r"\[scheduler\] not used when task = 'solve'",
    ),
    "solve without [solver]": (
        SOLVE.split("[solver]")[0],
        r"a solve experiment needs a \[solver\] table",
    ),
    "early stopping without a validation split": (
        BASE + "early_stopping = 3\n",
        r"\[train\] early_stopping watches the validation loss: add \[data\] split = "
        r"\{ val = 0\.1 \}",
    ),
}


# Mistakes found by building the components and looking at the run as a whole (the line is the
# offending key's, or its component's `name`).
COMPONENT_LINE = {
    "a qualified name with a typo": (
        edit(BASE, 'name = "sgd"', 'name = "nnrun:sgdd"'),
        'name = "nnrun:sgdd"',
        r"\[optimizer\]: unknown optimizer 'nnrun:sgdd'; did you mean 'nnrun:sgd'\?",
    ),
    "a qualified name of a distribution that is not installed": (
        edit(BASE, 'name = "sgd"', 'name = "nnrun-missing-optim:sgd"'),
        'name = "nnrun-missing-optim:sgd"',
        r"\[optimizer\]: unknown optimizer 'nnrun-missing-optim:sgd'; did you mean 'nnrun:sgd'\?",
    ),
    "nothing left to train": (
        edit(BASE, "n = 40", "n = 1\nsplit = { val = 0.5 }"),
        "split =",
        r"\[data\] split = \{ val = 0\.5 \}: 1 samples are too few to give val one and keep one "
        r"for training",
    ),
    # a dataset's required hyperparameter is missing: on the [data] line
    "missing expr": (
        edit(BASE, 'expr = "x**2"\n', ""),
        "[data]",
        r"\[data\]: dataset 'function' needs 'expr'",
    ),
    "missing n": (edit(BASE, "n = 40\n", ""), "[data]", r"\[data\]: dataset 'function' needs 'n'"),
    "too large for this machine": (
        edit(BASE, "layers = [1, 4, 1]", "layers = [1, 1000000000000, 1]"),
        "layers =",
        r"\[model\] layers = \[1, 1000000000000, 1\] has 3\.0e\+12 parameters \(.* GiB of weights, "
        r"gradients and optimizer state\).*more than the .* this machine has",
    ),
    "cross_entropy on regression data": (
        BASE + '\n[loss]\nname = "cross_entropy"\n',
        'name = "cross_entropy"',
        r"\[loss\] 'cross_entropy' gives the same loss whatever a network with 1 output predicts",
    ),
    "expr not finite on the range": (
        edit(BASE, 'expr = "x**2"', 'expr = "log(x)"'),
        "expr =",
        r"\[data\] expr = 'log\(x\)' is not finite on part of range = \[-1\.0, 1\.0\]",
    ),
    "string for a float hyperparameter": (
        edit(BASE, "lr = 0.01", 'lr = "0.01"'),
        "lr =",
        r"\[optimizer\]: lr = '0\.01': lr: Input should be a valid number",
    ),
    "integer for a boolean hyperparameter": (
        BASE.replace("lr = 0.01", "lr = 0.01\nmomentum = 0.9\nnesterov = 0"),
        "nesterov =",
        r"\[optimizer\]: nesterov = 0: nesterov: Input should be a valid boolean",
    ),
    "infinite learning rate": (
        edit(BASE, "lr = 0.01", "lr = inf"),
        "lr =",
        r"\[optimizer\]: lr = inf: lr must be a finite number",
    ),
    "one beta": (
        edit(BASE, 'name = "sgd"\nlr = 0.01', 'name = "adam"\nbetas = [0.9]'),
        "betas =",
        r"\[optimizer\]: betas = \[0\.9\]: betas takes 2 values",
    ),
    "constructor's own check": (
        edit(BASE, "lr = 0.01", "lr = -0.1"),
        'name = "sgd"',
        r"\[optimizer\]: optimizer 'sgd': Invalid learning rate: -0\.1",
    ),
    "constructor's check of a nested scheduler": (
        BASE + '\n[scheduler]\nname = "linear_warmup"\nafter = { name = "cosine", T_max = 0 }\n',
        "after = ",
        r"\[scheduler\.after\]: scheduler 'cosine': Invalid T_max: 0",
    ),
    "components nested 200 deep": (
        BASE
        + '\n[scheduler]\nname = "linear_warmup"\nafter = '
        + "{ name = 'linear_warmup', after = " * 200
        + "'constant'"
        + " }" * 200
        + "\n",
        "after = ",
        r"\[scheduler(\.after)+\]: components nest at most 8 deep",
    ),
    "unknown component, upper case": (
        edit(BASE, 'name = "sgd"', 'name = "SGD"'),
        'name = "SGD"',
        r"\[optimizer\]: unknown optimizer 'SGD'; did you mean 'sgd'\?",
    ),
    "unknown activation, capitalised": (
        edit(BASE, "layers = [1, 4, 1]", 'layers = [1, 4, 1]\nactivation = "Relu"'),
        "activation =",
        r"\[model\] activation: unknown activation 'Relu'; did you mean 'relu'\?",
    ),
    "solver lr next to an optimizer": (
        SOLVE + 'lr = 0.2\noptimizer = { name = "adam", lr = 0.1 }\n',
        "lr = 0.2",
        r"\[solver\] lr is the step of the solver's own descent",
    ),
}

WITH_LINE.update(
    {
        "a table given as a plain value": (
            "model = 3\n" + edit(BASE, "[model]\nlayers = [1, 4, 1]\n", ""),
            "model = 3",
            r"(^|:1: )model = 3: Input should be a valid dictionary or instance of ModelSection$",
        ),
        "infinite noise": (
            edit(BASE, "n = 40", "n = 40\nnoise = inf"),
            "noise =",
            r"\[data\]: noise = inf: noise must be a finite number",
        ),
        "repeated probe": (
            BASE + "probes = [0.1, 0.5, 0.1]\n",
            "probes =",
            r"\[train\] probes = \[0\.1, 0\.5, 0\.1\]: each probe once: 0\.1 is repeated",
        ),
        "unknown table, capitalised": (
            BASE + "\n[Scheduler]\nname = 'step'\n",
            "[Scheduler]",
            r"unknown table \[Scheduler\]; did you mean 'scheduler'\?",
        ),
        "unknown key, capitalised": (
            edit(BASE, "epochs = 3", "Epochs = 3"),
            "Epochs =",
            r"\[train\] unknown key 'Epochs'; did you mean 'epochs'\?",
        ),
        "experiment name outside runs/": (
            edit(BASE, 'name = "schema"', 'name = "/elsewhere/x"'),
            "/elsewhere/x",
            r"\[experiment\] name = \"/elsewhere/x\": a name may not contain a path separator",
        ),
        "experiment name with NUL": (
            edit(BASE, 'name = "schema"', 'name = "a\\u0000b"'),
            "u0000",
            r"a name may not contain NUL or other control characters",
        ),
        "experiment name with a right-to-left override": (
            edit(BASE, 'name = "schema"', 'name = "ab\\u202etxt.exe"'),
            "u202e",
            r"a name may not contain NUL or other control characters",
        ),
        "experiment name too long": (
            edit(BASE, 'name = "schema"', f'name = "{"x" * 300}"'),
            "x" * 300,
            r"a name is at most 100 characters, this one has 300",
        ),
        "experiment name '.'": (
            edit(BASE, 'name = "schema"', 'name = "."'),
            'name = "."',
            r"a name may not be empty or '\.'",
        ),
        "run name with ..": (
            BASE + '\n[[runs]]\nname = "../up"\n',
            "[[runs]]",
            r"\[\[runs\]\] entry 1: name = '\.\./up': a name may not contain a path separator",
        ),
        "run without a name": (
            BASE + '\n[[runs]]\nname = "a"\n\n[[runs]]  # unnamed\ntrain = { epochs = 2 }\n',
            "# unnamed",
            r"\[\[runs\]\] entry 2 has no name",
        ),
        "more runs than max_runs": (
            edit(BASE, "seed = 0", "seed = 0\nmax_runs = 3")
            + '\n[sweep]\n"optimizer.lr" = [0.1, 0.2]\n"train.epochs" = [1, 2]\n',
            "[sweep]",
            r"the experiment composes 4 runs .*more than \[experiment\] max_runs = 3",
        ),
        # [experiment] seeds / repeats and [report]
        "seeds and repeats together": (
            edit(BASE, "seed = 0", "seed = 0\nseeds = [0, 1]\nrepeats = 2"),
            "[experiment]",
            r"\[experiment\] seeds and repeats exclude each other",
        ),
        "no seeds": (
            edit(BASE, "seed = 0", "seed = 0\nseeds = []"),
            "seeds = []",
            r"\[experiment\] seeds = \[\]: seeds needs at least one seed",
        ),
        "a seed twice": (
            edit(BASE, "seed = 0", "seed = 0\nseeds = [1, 2, 1]"),
            "seeds = [1, 2, 1]",
            r"seeds = \[1, 2, 1\]: each seed once: 1 is repeated",
        ),
        "a negative seed": (
            edit(BASE, "seed = 0", "seed = 0\nseeds = [0, -1]"),
            "seeds = [0, -1]",
            r"seeds = \[0, -1\]: every seed must be in \[0, 2\*\*63\)",
        ),
        "a seed that is not a number": (
            edit(BASE, "seed = 0", 'seed = 0\nseeds = [0, "1"]'),
            "seeds = [0,",
            r"\[experiment\] seeds\[1\] = \"1\": Input should be a valid integer",
        ),
        "no repeats": (
            edit(BASE, "seed = 0", "seed = 0\nrepeats = 0"),
            "repeats = 0",
            r"\[experiment\] repeats = 0: Input should be greater than or equal to 1",
        ),
        "repeats past the largest seed": (
            edit(BASE, "seed = 0", f"seed = {2**63 - 2}\nrepeats = 3"),
            "repeats = 3",
            r"\[experiment\] repeats = 3 counts up from seed = 9223372036854775806 past the "
            r"largest seed",
        ),
        "sweeping the seeds": (
            BASE + '\n[sweep]\n"experiment.seeds" = [[0], [1]]\n',
            '"experiment.seeds"',
            r"\[sweep\] 'experiment.seeds': the seeds repeat every sweep cell already",
        ),
        "seeds times runs over max_runs": (
            edit(BASE, "seed = 0", "seed = 0\nmax_runs = 3\nrepeats = 4"),
            "repeats = 4",
            r"the experiment composes 4 runs \(1 \[\[runs\]\] × 1 \[sweep\] values × 4 seeds\)",
        ),
        "unknown band": (
            BASE + '\n[report]\nband = "range"\n',
            'band = "range"',
            r"\[report\] band = \"range\": Input should be 'minmax' or 'ci95'",
        ),
        "report tensorboard not a bool": (
            BASE + '\n[report]\ntensorboard = "yes"\n',
            'tensorboard = "yes"',
            r"\[report\] tensorboard = \"yes\": Input should be a valid boolean",
        ),
        "reseed not a bool": (
            edit(BASE, "n = 40", "n = 40\nreseed = 1"),
            "reseed = 1",
            r"\[data\] reseed = 1: Input should be a valid boolean",
        ),
        "a 10^12 grid": (
            BASE
            + "\n[sweep]\n"
            + "".join(f'"model.x{i}" = {list(range(10))}\n' for i in range(12)),
            "[sweep]",
            r"the experiment composes 1,000,000,000,000 runs",
        ),
    }
)
WITHOUT_LINE.update(
    {
        "runs sharing a folder": (
            BASE + '\n[[runs]]\nname = "Fast"\n\n[[runs]]\nname = "fast"\n',
            r"runs 'Fast' and 'fast' would share one checkpoint folder",
        ),
    }
)


# [tune]: the space's keys and bounds, the metric and the method, checked at load.
VALIDATED = edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.25 }")
TUNED = VALIDATED + "\n[tune]\ntrials = 4\n"
COMPONENT_LINE.update(
    {
        "tune space: unknown hyperparameter": (
            TUNED + 'space = { "optimizer.lrr" = { log_uniform = [1e-3, 1e-1] } }\n',
            "space =",
            r"\[tune\] space optimizer\.lrr log_uniform \[0\.001, 0\.1\]: \[optimizer\]: "
            r"optimizer 'sgd' does not take 'lrr'; did you mean 'lr'\?",
        ),
        "tune space: unknown key in a [tune.space] table": (
            TUNED + '\n[tune.space]\n"train.batchsize" = { choice = [16, 32] }\n',
            '"train.batchsize"',
            r"\[tune\] space train\.batchsize choice \[16, 32\]: \[train\] unknown key "
            r"'batchsize'; did you mean 'batch_size'\?",
        ),
        "tune space: unknown table": (
            TUNED + 'space = { "optimiser.lr" = { log_uniform = [1e-3, 1e-1] } }\n',
            "space =",
            r"\[tune\] space 'optimiser\.lr': 'optimiser' is not a table a trial can vary; "
            r"did you mean 'optimizer'\?",
        ),
        "tune space: a bound the constructor refuses": (
            TUNED + 'space = { "optimizer.momentum" = { uniform = [-0.5, 0.9] } }\n',
            "space =",
            r"\[tune\] space optimizer\.momentum uniform \[-0\.5, 0\.9\]: at -0\.5: "
            r"\[optimizer\]: optimizer 'sgd': Invalid momentum value: -0\.5",
        ),
        "tune space: a bound the schema refuses": (
            TUNED + 'space = { "train.batch_size" = { choice = [0, 32] } }\n',
            "space =",
            r"at 0: \[train\] batch_size = 0: Input should be greater than or equal to 1",
        ),
        "tune space: log_uniform from 0": (
            TUNED + 'space = { "optimizer.lr" = { log_uniform = [0.0, 0.1] } }\n',
            "space =",
            r"\[tune\.space\] 'optimizer\.lr': log_uniform needs low > 0 \(a log scale has no 0\)",
        ),
        "tune space: no distribution": (
            TUNED + 'space = { "optimizer.lr" = { between = [0.01, 0.1] } }\n',
            "space =",
            r"'optimizer\.lr' needs exactly one of log_uniform, uniform, int_uniform, choice",
        ),
        "tune metric: a typo": (
            TUNED + 'metric = "val_los"\n',
            "metric =",
            r"\[tune\] metric = 'val_los' is not in this run's epoch records; did you mean "
            r"'val_loss'\?",
        ),
        "tune metric: val_loss without a validation share": (
            BASE + "\n[tune]\ntrials = 4\n",
            "[tune]",
            r"val_loss needs a validation share: \[data\] split = \{ val = 0\.2 \}",
        ),
        "tune grid over a range": (
            TUNED + 'method = "grid"\n',
            "method =",
            r"method = 'grid' needs every space key to be a choice, and optimizer\.lr, "
            r"optimizer\.momentum is a range",
        ),
        "tune grid of another size": (
            TUNED + 'method = "grid"\nspace = { "optimizer.lr" = { choice = [0.1, 0.01] } }\n',
            "trials =",
            r"method = 'grid' over these choices has 2 points: set trials = 2",
        ),
        "tune method unknown": (
            TUNED + 'method = "bayes"\n',
            "method =",
            r"\[tune\] method = \"bayes\": Input should be 'grid', 'random', 'qmc' or 'tpe'",
        ),
    }
)
WITHOUT_LINE.update(
    {
        "tune with seeds": (
            edit(TUNED, "seed = 0", "seed = 0\nrepeats = 2"),
            r"\[tune\] with \[experiment\] seeds or repeats: .*final_seeds re-runs the best",
        ),
    }
)


def bad_files() -> dict[str, tuple[str, str]]:
    """Every case above as (text, the phrase its message has), for tests that only need that."""
    cases = {name: (text, message) for name, (text, _, message) in WITH_LINE.items()}
    cases |= {name: (text, message) for name, (text, _, message) in COMPONENT_LINE.items()}
    cases |= WITHOUT_LINE
    return cases


# [train] metrics and early stopping on a metric
WITH_LINE.update(
    {
        "repeated metric": (
            BASE + 'metrics = ["mse", "r2", "mse"]\n',
            "metrics =",
            r"\[train\] metrics = \[\"mse\", \"r2\", \"mse\"\]: each metric once: 'mse' is repeated",
        ),
        "early stopping on a metric that is not computed": (
            edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.2 }")
            + 'metrics = ["mse"]\nearly_stopping = { patience = 3, metric = "r" }\n',
            "early_stopping =",
            r"\[train\.early_stopping\] metric = 'r' is not among \[train\] metrics = \['mse'\]: "
            r"add it there, or watch 'val_loss'",
        ),
        "early stopping with an unknown mode": (
            edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.2 }")
            + 'early_stopping = { patience = 3, mode = "up" }\n',
            "early_stopping =",
            r"\[train\.early_stopping\] mode = \"up\": Input should be 'min' or 'max'",
        ),
    }
)
WITHOUT_LINE.update(
    {
        "early stopping without patience": (
            edit(BASE, "n = 40", "n = 40\nsplit = { val = 0.2 }")
            + 'metrics = ["r2"]\nearly_stopping = { metric = "r2" }\n',
            r"\[train\.early_stopping\] 'patience' is required",
        ),
    }
)
COMPONENT_LINE.update(
    {
        "unknown metric": (
            BASE + 'metrics = ["acuracy"]\n',
            "metrics =",
            r"\[train\] metrics: unknown metric 'acuracy'; did you mean 'accuracy'\?",
        ),
        "metric's own check": (
            BASE + 'metrics = [{ name = "top_k", k = 0 }]\n',
            "metrics =",
            r"\[train\] metrics: metric 'top_k': Invalid k: 0; k must be at least 1",
        ),
        "metric hyperparameter of the wrong type": (
            BASE + 'metrics = [{ name = "top_k", k = 2.5 }]\n',
            "metrics =",
            r"\[train\] metrics: k = 2\.5: k: Input should be a valid integer",
        ),
        "classification metric on regression data": (
            BASE + 'metrics = ["mse", "accuracy"]\n',
            "metrics =",
            r"\[train\] metrics: 'accuracy' is a metric for classification, and this run's data "
            r"is regression; regression takes 'mae', 'mse', 'r2'",
        ),
    }
)


# Datasets read from files: the repository's iris CSV, and a copy of it with one bad cell.
DATA = Path(__file__).resolve().parent / "data"
IRIS = Path(__file__).resolve().parents[1] / "examples" / "data" / "iris.csv"
CSV = f"""\
[experiment]
name = "csv"
seed = 0

[data]
kind = "csv"
path = "{IRIS}"
targets = "species"
task = "classification"

[model]
layers = [4, 8, 3]

[loss]
name = "cross_entropy"

[optimizer]
name = "sgd"
lr = 0.1

[train]
epochs = 1
"""

COMPONENT_LINE.update(
    {
        "a bad CSV cell": (
            edit(CSV, str(IRIS), str(DATA / "iris_bad_cell.csv")),
            "path =",
            r"\[data\] iris_bad_cell\.csv line 17, column 'sepal_width': 'abc' is not a number "
            r"\(or set on_bad_rows = \"skip\" to leave such rows out\)",
        ),
        "no such CSV file": (
            edit(CSV, str(IRIS), "missing.csv"),
            "path =",
            r"\[data\] path = 'missing\.csv': there is no file '.*missing\.csv'",
        ),
        "a folder for a CSV file": (
            edit(CSV, str(IRIS), str(DATA)),
            "path =",
            r"\[data\] path = '.*data': '.*data' is not a regular file",
        ),
        "a CSV column that is not there": (
            edit(CSV, 'targets = "species"', 'targets = "specis"'),
            "targets =",
            r"iris\.csv has no column 'specis'; did you mean 'species'\?",
        ),
        "last width is not the number of classes": (
            edit(CSV, "layers = [4, 8, 3]", "layers = [4, 8, 2]"),
            "layers =",
            r"\[model\] layers = \[4, 8, 2\]: \[data\] kind = 'csv' has 3 classes \(setosa, "
            r"versicolor, virginica\), so the last width must be 3, one output \(logit\) per class",
        ),
        "first width is not the number of inputs": (
            edit(CSV, "layers = [4, 8, 3]", "layers = [3, 8, 3]"),
            "layers =",
            r"has 4 input\(s\) \(sepal_length, sepal_width, petal_length, petal_width\), so the "
            r"first width must be 4",
        ),
        "mse on class labels": (
            edit(CSV, 'name = "cross_entropy"', 'name = "mse"'),
            'name = "mse"',
            r"\[loss\] 'mse' cannot score this run's predictions against classification "
            r"targets: .*; use 'cross_entropy'",
        ),
        "unknown dataset kind": (
            edit(CSV, 'kind = "csv"', 'kind = "CSV"'),
            'kind = "CSV"',
            r"\[data\]: unknown dataset 'CSV'; did you mean 'csv'\?",
        ),
        "unknown CSV option": (
            edit(CSV, 'task = "classification"', 'task = "classification"\nheaders = false'),
            "headers =",
            r"dataset 'csv' does not take 'headers'; did you mean 'header'\?",
        ),
        "unknown bad-row policy": (
            edit(CSV, 'task = "classification"', 'task = "classification"\non_bad_rows = "drop"'),
            "on_bad_rows =",
            r"\[data\]: on_bad_rows = 'drop': on_bad_rows: Input should be 'error' or 'skip'",
        ),
        "unknown sklearn dataset": (
            edit(
                edit(CSV, f'path = "{IRIS}"\ntargets = "species"\ntask = "classification"\n', ""),
                'kind = "csv"',
                'kind = "sklearn"\ndataset = "mnist"',
            ),
            "dataset =",
            r"\[data\]: dataset = 'mnist': dataset: Input should be 'digits', 'iris', 'wine', "
            r"'breast_cancer' or 'diabetes'",
        ),
        "shares that leave no training data": (
            edit(
                CSV,
                'task = "classification"',
                'task = "classification"\nsplit = { val = 0.5, test = 0.5 }',
            ),
            "split =",
            r"\[data\.split\] val = 0\.5 and test = 0\.5 leave nothing for training",
        ),
        "probes with two inputs": (
            edit(
                edit(BASE, 'expr = "x**2"', 'inputs = 2\nexpr = "x0 * x1"'),
                "layers = [1, 4, 1]",
                "layers = [2, 4, 1]",
            )
            + "probes = [0.5]\n",
            "probes =",
            r"\[train\] probes are single inputs .* \[data\] kind = 'function' has 2 input\(s\) "
            r"and 1 output\(s\)",
        ),
        "probes on standardized inputs": (
            edit(BASE, "n = 40", "n = 40\nstandardize = true") + "probes = [0.5]\n",
            "probes =",
            r"\[train\] probes are inputs in the data's own units",
        ),
        "x in an expression of two inputs": (
            edit(
                edit(BASE, 'expr = "x**2"', 'inputs = 2\nexpr = "x**2"'), "[1, 4, 1]", "[2, 4, 1]"
            ),
            "expr =",
            r"\[data\]: dataset 'function': expr: invalid expression 'x\*\*2': unknown name 'x' "
            r"\(the input variables are x0, x1\)",
        ),
    }
)

# [executor]: one table for the experiment, its keys the executor's hyperparameters
WITH_LINE.update(
    {
        "unknown executor": (
            BASE + '\n[executor]\nname = "rey"\n',
            'name = "rey"',
            r"\[executor\]: unknown executor 'rey'; did you mean 'ray'\?",
        ),
        "unknown executor key": (
            BASE + '\n[executor]\nname = "ray"\nadress = "auto"\n',
            "adress =",
            r"\[executor\]: executor 'ray' does not take 'adress'; did you mean 'address'\?; "
            r"it takes address='local', num_cpus=1.0, num_gpus=0.0",
        ),
        "executor key of the wrong type": (
            BASE + '\n[executor]\nname = "ray"\nnum_cpus = "2"\n',
            "num_cpus =",
            r"\[executor\]: num_cpus = '2': num_cpus: Input should be a valid number",
        ),
        "executor value its constructor refuses": (
            BASE + "\n[executor]\njobs = 0\n",
            "jobs = 0",
            r"\[executor\]: executor 'local': Invalid jobs: 0 \(the runs at once, at least 1\)",
        ),
        "submitit cluster unknown": (
            BASE + '\n[executor]\nname = "submitit"\ncluster = "pbs"\n',
            "cluster =",
            r"\[executor\]: cluster = 'pbs': cluster: Input should be 'auto', 'local' or 'slurm'",
        ),
    }
)
