"""Small tensors on one thread.

torch's elementwise CPU ops split a tensor across threads from 32768 elements on
(at::internal::GRAIN_SIZE), but some (tanh, exp, sqrt: vectorised math library calls) use every
thread whatever the size once `torch.set_num_threads` has been called: on 100 elements, 2 threads,
tanh took 23 µs instead of 2. A step on tensors that small is run on one thread instead, which
costs two calls to `torch.set_num_threads` (well under a microsecond).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

#: Tensors with at least this many elements are "large": torch splits them across threads.
LARGE = 32768

T = TypeVar("T")


def on_one_thread(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` with torch on one thread; the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    if threads == 1:
        return function(*args)
    torch.set_num_threads(1)
    try:
        return function(*args)
    finally:
        torch.set_num_threads(threads)
