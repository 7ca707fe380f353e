"""The pieces every built-in optimizer shares, kept in one place (optax-style).

- torch-style argument checks (`ValueError("Invalid learning rate: -0.1")`);
- decoupled weight decay p ← p·(1 − lr·λ), Adam's bias correction 1 − βᵗ, the step count;
- `PerParameter`, the base class: its `step()` visits each parameter with a gradient and hands
  the ones torch's fused kernels handle correctly to `fused_update`, one call per device and
  dtype; its `gradient()` applies `maximize` and coupled weight decay; its `scratch()` lends the
  temporaries of an update, reused from step to step for large tensors.

Step counts are plain Python ints in `state["step"]`: exact, cheap, and saved as they are. torch
keeps them as float32 tensors and reads them back as Python numbers, so the arithmetic is the same.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch

from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter
from nnrun.threads import LARGE, on_one_thread

Tensor = torch.Tensor
State = dict[str, Any]

#: Tensors with at least this many elements are "large" (`nnrun.threads.LARGE`). torch's
#: elementwise CPU ops split them across threads, and glibc serves their temporaries (128 KiB and
#: up, in float32) with mmap, so a temporary allocated afresh each step is page-faulted in afresh
#: each step: for Adadelta on 20 tensors of 512×512 that alone took the step from 9 to 25 ms.

#: torch's fused kernels also take float16 and bfloat16, but compute them in float32, unlike the
#: per-tensor path they must agree with; so only these go to them.
FUSED_DTYPES = (torch.float32, torch.float64)


# --- Argument checks: torch.optim's conditions and messages ----------------------------------


def check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_eps(eps: float) -> None:
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")


def check_betas(betas: Sequence[float]) -> None:
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def check_adaptive(lr: float, eps: float, betas: Sequence[float], **nonnegative: float) -> None:
    """The checks every Adam-family optimizer makes on its arguments."""
    check_lr(lr)
    check_eps(eps)
    check_betas(betas)
    check_nonnegative(**nonnegative)


def check_nonnegative(**values: float) -> None:
    """`check_nonnegative(weight_decay=-1)` raises "Invalid weight_decay value: -1"."""
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"Invalid {name} value: {value}")


# --- Shared transformations ---------------------------------------------------------------------


def decay_weights(data: Tensor, lr: float, weight_decay: float) -> None:
    """Decoupled weight decay (Loshchilov & Hutter 2019): p ← p·(1 − lr·λ), apart from the gradient."""
    if weight_decay != 0:
        data.mul_(1 - lr * weight_decay)


def bias_correction(beta: float, step: int) -> float:
    """1 − βᵗ: undoes the pull towards zero of a moving average started at zero (Adam, §3)."""
    return 1 - beta**step


def advance(state: State) -> int:
    """Count one more step for this parameter; returns t (1 on its first step)."""
    t = state["step"] = state.get("step", 0) + 1
    return t


def buffer(state: State, name: str, like: Tensor, fill: float = 0.0) -> Tensor:
    """`state[name]`, made on first use shaped like the parameter and filled with `fill`.

    Contiguous whatever the parameter's layout, so the fused kernels can always take it.
    """
    tensor = state.get(name)
    if tensor is None:
        tensor = state[name] = torch.full_like(like, fill, memory_format=torch.contiguous_format)
    return tensor


# --- The base class -----------------------------------------------------------------------------


class PerParameter(Optimizer):
    """An optimizer whose update of a parameter depends on that parameter alone.

    `step()` skips parameters without a gradient (their state and step count stay as they are) and
    calls `update(data, grad, state, hyperparameters)` for each other one. A subclass naming a
    `fused_kernel` also implements `fused_update(params, grads, hyperparameters)`, which gets the
    parameters that kernel handles correctly, all of one device and dtype, with their gradients:

    - contiguous float32/float64 parameters with a contiguous gradient of the same dtype: the CPU
      kernels read every tensor in memory order, so a transposed parameter with a contiguous
      gradient would be silently updated with the wrong elements;
    - on CPU, the small ones (below `LARGE`) in a call of their own on one thread: the CPU
      kernels split even a tensor of a hundred elements across threads, which costs more than
      the update and stalls when the cores are busy (16 ms per Adam step on three tiny tensors,
      2 threads, loaded 2-core machine; 23 µs on one thread).

    Which parameter goes where is decided once (`_Plan`) and again only when the parameters'
    tensors, or which have a gradient, or their gradients' layout change.
    """

    fused_kernel: ClassVar[str | None] = None

    def __init__(self, params: Iterable[Parameter], **hyperparameters: Any):
        super().__init__(params, **hyperparameters)
        self._scratch: dict[tuple[int, torch.dtype], Tensor] = {}
        self._plan: _Plan | None = None

    def step(self) -> None:
        params, hyperparameters = self.params, self.hyperparameters
        grads: list[Any] = [param.grad for param in params]  # None only where the plan skips
        plan = self._plan
        if plan is None or not plan.fits(params, grads):
            plan = self._plan = _Plan(self.fused_kernel, params, grads)
        for index in plan.singles:
            param = params[index]
            self.update(param.data, grads[index], self.state_of(param), hyperparameters)
        for small, indices in plan.groups:
            group, group_grads = [params[i] for i in indices], [grads[i] for i in indices]
            if small:
                on_one_thread(self.fused_update, group, group_grads, hyperparameters)
            else:
                self.fused_update(group, group_grads, hyperparameters)

    def update(self, data: Tensor, grad: Tensor, state: State, hyperparameters: dict) -> None:
        """Update one parameter in place from its gradient and its state."""
        raise NotImplementedError

    def fused_update(
        self, params: list[Parameter], grads: list[Tensor], hyperparameters: dict
    ) -> None:
        """Update `params` in place from `grads` (one each) with the fused kernel."""
        raise NotImplementedError

    def state_of(self, param: Parameter) -> State:
        state = self.state.get(param)
        if state is None:
            state = self.state[param] = {}
        return state

    def gradient(
        self,
        data: Tensor,
        grad: Tensor,
        maximize: bool,
        weight_decay: float,
        decoupled_lr: float | None = None,
    ) -> Tensor:
        """g = ±∇ + λ·p, the direction to descend, as torch computes it; never modifies `grad`.
        With `decoupled_lr` the decay is decoupled instead: p ← p·(1 − lr·λ) and g = ±∇.
        The result may be scratch slot 0."""
        if decoupled_lr is not None:
            decay_weights(data, decoupled_lr, weight_decay)
            weight_decay = 0.0
        if maximize:
            grad = torch.neg(grad, out=self.scratch(grad))
        if weight_decay != 0:
            grad = torch.add(grad, data, alpha=weight_decay, out=self.scratch(grad))
        return grad

    def scratch(self, like: Tensor, slot: int = 0) -> Tensor:
        """An uninitialized contiguous temporary shaped like `like`, for one update only.

        For a large CPU tensor it is a view of a buffer kept for the slot and dtype (as large as
        the largest parameter), so that steps stop allocating; otherwise a fresh tensor, which
        is as cheap (and on CUDA the caching allocator already reuses memory).
        """
        n = like.numel()
        if n < LARGE or not like.is_cpu:
            return torch.empty_like(like, memory_format=torch.contiguous_format)
        key = (slot, like.dtype)
        flat = self._scratch.get(key)
        if flat is None or flat.numel() < n:
            flat = self._scratch[key] = torch.empty(n, dtype=like.dtype)
        return flat[:n].view(like.shape)


class _Plan:
    """Which parameters go to the fused kernel, in which groups, and which to `update`: decided
    when the parameters' tensors or their gradients' layout change, not at every step.

    A group is the parameters of one device and dtype, `small` when all are small CPU tensors
    (run on one thread, see `nnrun.threads`); what `fits` checks at each step is what the plan
    was made from: the same data tensors, the same gradients present, and the fused parameters'
    gradients still contiguous, of their parameter's dtype and on its device.
    """

    def __init__(self, kernel: str | None, params: list[Parameter], grads: list[Tensor | None]):
        self.datas = [param.data for param in params]
        self.present = [grad is not None for grad in grads]
        self.singles: list[int] = []
        self.fused: list[tuple[int, torch.dtype, int]] = []  # index, dtype, get_device()
        groups: dict[tuple, list[int]] = {}
        for index, (data, grad) in enumerate(zip(self.datas, grads)):
            if grad is None:
                continue
            group = _fused_group(kernel, data, grad) if kernel else None
            if group is None:
                self.singles.append(index)
                continue
            groups.setdefault(group, []).append(index)
            self.fused.append((index, data.dtype, data.get_device()))
        self.groups = [(group[2], indices) for group, indices in groups.items()]

    def fits(self, params: list[Parameter], grads: list[Tensor | None]) -> bool:
        for param, data in zip(params, self.datas):
            if param.data is not data:
                return False
        if [grad is not None for grad in grads] != self.present:
            return False
        for index, dtype, device in self.fused:
            grad = grads[index]
            assert grad is not None
            if not grad.is_contiguous() or grad.dtype is not dtype or grad.get_device() != device:
                return False
        return True


def _fused_group(kernel: str, data: Tensor, grad: Tensor) -> tuple | None:
    """(device, dtype, small) when `kernel` can update this parameter, None when `update` must."""
    if data.is_cpu:
        if not grad.is_cpu:
            return None
        device: str | torch.device = "cpu"
        device_type = "cpu"
    else:
        device = data.device
        device_type = device.type
        if grad.device != device:
            return None
    dtype = data.dtype
    if (
        dtype in FUSED_DTYPES
        and grad.dtype == dtype
        and data.is_contiguous()
        and grad.is_contiguous()
        and has_fused_kernel(kernel, device_type)
    ):
        return (device, dtype, data.is_cpu and data.numel() < LARGE)
    return None


@functools.cache
def has_fused_kernel(kernel: str, device_type: str) -> bool:
    """Whether this torch build has `torch.<kernel>` (e.g. `_fused_adam_`) for the device type."""
    if not hasattr(torch, kernel):
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(
            f"aten::{kernel}", device_type.upper()
        )
    except (RuntimeError, AttributeError):  # unknown dispatch key, or a torch without the check
        return False


def step_tensors(steps: list[int], device: torch.device) -> list[Tensor]:
    """The step counts as the fused kernels read them: float32 scalars on the parameters' device."""
    made: dict[int, Tensor] = {}
    for t in steps:
        if t not in made:
            made[t] = torch.full((), float(t), dtype=torch.float32, device=device)
    return [made[t] for t in steps]
