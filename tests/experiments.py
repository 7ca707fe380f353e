"""Small experiment files that several test modules train, in one place."""

from __future__ import annotations

#: A grid study that tries, after two start-up trials, a rate that barely moves the weights: the
#: median pruner stops it at the end of its warm-up. With seed 3 the grid's order is 0.03, 0.01,
#: 0.02, then 1e-7.
PRUNED = """
[experiment]
name = "pruned"
seed = 3

[data]
expr = "x**2"
n = 64
split = { val = 0.25 }

[model]
layers = [1, 8, 1]
activation = "tanh"

[optimizer]
name = "adam"

[train]
epochs = 8
batch_size = 16

[tune]
method = "grid"
trials = 4
space = { "optimizer.lr" = { choice = [0.03, 0.02, 0.01, 1e-7] } }
prune = { method = "median", warmup_epochs = 2, startup_trials = 2 }
"""


def two_optimizers(
    name: str, seed: int, seeds: list[int], epochs: int, train: str = "", runs: str = ""
) -> str:
    """A few-second experiment of tiny networks: runs "sgd" and "adam", each over `seeds`, the
    `[train]` table's extra lines `train` and further `[[runs]]` tables `runs` appended."""
    return f"""
[experiment]
name = "{name}"
seed = {seed}
seeds = {seeds}

[data]
expr = "x**2"
n = 24
noise = 0.1
split = {{ val = 0.25 }}

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.1

[train]
epochs = {epochs}
{train}
[[runs]]
name = "sgd"

[[runs]]
name = "adam"
optimizer = {{ name = "adam", lr = 0.01 }}
{runs}"""
