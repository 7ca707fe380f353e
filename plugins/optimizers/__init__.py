"""Built-in optimizers: torch.optim's update rules (checked step for step against torch) and Lion.

Each module holds one algorithm or one small family; `_common` holds what they share.
"""

from __future__ import annotations

import nnrun
from nnrun.plugins.optimizers.adadelta import Adadelta
from nnrun.plugins.optimizers.adagrad import Adagrad
from nnrun.plugins.optimizers.adam import Adam, AdamW
from nnrun.plugins.optimizers.adamax import Adamax
from nnrun.plugins.optimizers.lion import Lion
from nnrun.plugins.optimizers.nadam import NAdam
from nnrun.plugins.optimizers.radam import RAdam
from nnrun.plugins.optimizers.rmsprop import RMSprop
from nnrun.plugins.optimizers.sgd import SGD

BUILTINS: dict[str, type] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": NAdam,
    "radam": RAdam,
    "adamax": Adamax,
    "adadelta": Adadelta,
    "lion": Lion,
}

__all__ = [
    "BUILTINS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "NAdam",
    "RAdam",
    "RMSprop",
    "register_optimizers",
]


@nnrun.hookimpl
def register_optimizers(register) -> None:
    for name, cls in BUILTINS.items():
        register(name, cls)
