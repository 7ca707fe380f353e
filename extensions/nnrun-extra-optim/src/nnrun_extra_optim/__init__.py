"""nnrun-extra-optim: optimizers torch.optim lacks, as an nnrun plugin package.

Installed, it registers its optimizers through one entry point in nnrun's group, exactly as any
third party's package does, and uses nothing of nnrun's but its public API.
"""

from __future__ import annotations

import nnrun
from nnrun_extra_optim.adabelief import AdaBelief
from nnrun_extra_optim.adan import Adan
from nnrun_extra_optim.lamb import Lamb
from nnrun_extra_optim.lookahead import Lookahead
from nnrun_extra_optim.muon import Muon
from nnrun_extra_optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

__version__ = "0.2.0"

OPTIMIZERS: dict[str, type[nnrun.Optimizer]] = {
    "lamb": Lamb,
    "adabelief": AdaBelief,
    "adan": Adan,
    "lookahead": Lookahead,
    "schedule_free_sgd": ScheduleFreeSGD,
    "schedule_free_adamw": ScheduleFreeAdamW,
    "muon": Muon,
}

__all__ = [
    "OPTIMIZERS",
    "AdaBelief",
    "Adan",
    "Lamb",
    "Lookahead",
    "Muon",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "register_optimizers",
]


@nnrun.hookimpl
def register_optimizers(register) -> None:
    for name, cls in OPTIMIZERS.items():
        register(name, cls)
