"""nnrun's measurements: each module times nnrun and its reference side by side in one process.

`python -m benchmarks` (from the repository root) runs every module that has `rows(repeats)` and
prints one table; each module also runs on its own as `python benchmarks/NAME.py`. The helper
below is the one way the suite's own modules time contenders: in turn within each repeat, so a
busy shared machine slows them alike, after a warm-up, reporting medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def median_in_turn(
    contenders: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall seconds of one call of each contender over `repeats` rounds, every round
    calling each contender once in turn (after `warmup` untimed rounds)."""
    for _ in range(warmup):
        for call in contenders.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in samples.items()}
