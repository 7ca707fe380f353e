"""The conformance kit: checks any plugin author runs from their own tests, and that nnrun runs on
every built-in. Each check raises AssertionError naming the input and the property that broke;
`nnrun verify` runs the same checks one by one (see `results.py`) and reports each.

    from nnrun.testing import check_optimizer
    def test_my_sgd_matches_torch():
        check_optimizer(MySGD, reference=torch.optim.SGD, lr=0.1, momentum=0.9)

The checks are imported on first use, so the pytest plugin in this package stays cheap to load.
"""

from __future__ import annotations

import importlib
from typing import Any

_CHECKS = {
    "check_activation": "nnrun.testing.gradient_checks",
    "check_loss": "nnrun.testing.gradient_checks",
    "check_optimizer": "nnrun.testing.optimizer_checks",
    "check_initializer": "nnrun.testing.initializer_checks",
    "check_scheduler": "nnrun.testing.scheduler_checks",
    "check_solver": "nnrun.testing.solver_checks",
    "check_dataset": "nnrun.testing.dataset_checks",
    "check_metric": "nnrun.testing.metric_checks",
    "check_executor": "nnrun.testing.executor_checks",
}
__all__ = list(_CHECKS)


def __getattr__(name: str) -> Any:
    if name not in _CHECKS:
        raise AttributeError(f"module 'nnrun.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(_CHECKS[name]), name)
