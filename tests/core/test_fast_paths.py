"""Every fast path of the training step follows the simple path's trajectory.

The simple path is what a third-party component without the optional methods gets: the generic
`Activation.backward(x, y, grad_y)` and `Loss.forward_backward` composed of `forward` and
`backward`. Where the fast method computes the same operations in the same order the two
trajectories are bit-identical; where it computes the same math otherwise (tanh's 1 − y² against
(1 − y)(1 + y), softmax's backward kernel, cross-entropy's exp(log_softmax) against softmax) they
agree to float32 rounding: 20 steps at lr 0.01 stay within rtol 1e-5, atol 1e-6.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import nnrun
from nnrun.components import Activation, Loss

REGISTRY = nnrun.load_registry()
#: activation -> bit-identical to the generic backward in training
FAST_ACTIVATIONS = {
    "identity": True,
    "sigmoid": True,
    "relu": True,
    "tanh": False,
    "softmax": False,
}
#: loss -> (targets, bit-identical to forward then backward)
FAST_LOSSES = {
    "mse": ("regression", True),
    "mae": ("regression", True),
    "huber": ("regression", True),
    "bce_with_logits": ("binary", True),
    "cross_entropy": ("classes", False),
}
OPTIMIZERS = {"sgd": {"lr": 0.01, "momentum": 0.9}, "adam": {"lr": 0.01}}


class Generic(Activation):
    """The activation without its fast method: what a plugin that defines none gets."""

    def __init__(self, inner: Activation):
        self.inner = inner

    def forward(self, x):
        return self.inner.forward(x)

    def backward(self, x, y, grad_y):
        return self.inner.backward(x, y, grad_y)


class GenericLoss(Loss):
    """The loss without its `forward_backward`: the base class's forward, then backward."""

    def __init__(self, inner: Loss):
        self.inner = inner

    def forward(self, pred, target):
        return self.inner.forward(pred, target)

    def backward(self, pred, target):
        return self.inner.backward(pred, target)


def data(targets: str, outputs: int):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, generator=generator)
    if targets == "classes":
        return x, torch.randint(0, outputs, (16,), generator=generator)
    if targets == "binary":
        return x, torch.randint(0, 2, (16, outputs), generator=generator).float()
    return x, torch.randn(16, outputs, generator=generator)


def trajectory(activation, loss, optimizer: str, targets: str, outputs: int = 4, steps: int = 20):
    torch.manual_seed(0)
    model = nnrun.MLP([3, 8, 8, outputs], activation=activation)
    opt = REGISTRY.optimizers[optimizer](model.parameters(), **OPTIMIZERS[optimizer])
    x, y = data(targets, outputs)
    path = []
    for _ in range(steps):
        pred = model.forward(x)
        value, grad = loss.forward_backward(pred, y)
        model.backward(grad)
        opt.step()
        path.append([value.clone()] + [p.data.clone() for p in model.parameters()])
    return path


def assert_same(fast, simple, exact: bool) -> None:
    for step, (ours, theirs) in enumerate(zip(fast, simple, strict=True)):
        for a, b in zip(ours, theirs, strict=True):
            if exact:
                assert torch.equal(a, b), f"step {step}: not bit-identical"
            else:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"step {step}")


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(FAST_ACTIVATIONS))
def test_activation_fast_backward_follows_the_generic_trajectory(name, optimizer):
    activation = REGISTRY.activations[name]()
    assert hasattr(activation, "backward_from_output")
    mse = REGISTRY.losses["mse"]()
    fast = trajectory(activation, mse, optimizer, "regression")
    simple = trajectory(Generic(activation), GenericLoss(mse), optimizer, "regression")
    assert_same(fast, simple, exact=FAST_ACTIVATIONS[name])


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(FAST_LOSSES))
def test_loss_forward_backward_follows_the_generic_trajectory(name, optimizer):
    targets, exact = FAST_LOSSES[name]
    loss = REGISTRY.losses[name]()
    assert type(loss).forward_backward is not Loss.forward_backward
    outputs = 1 if targets == "binary" else 4
    tanh = Generic(REGISTRY.activations["tanh"]())  # the generic backward: only the loss differs
    fast = trajectory(tanh, loss, optimizer, targets, outputs)
    simple = trajectory(tanh, GenericLoss(loss), optimizer, targets, outputs)
    assert_same(fast, simple, exact=exact)


def test_cross_entropy_with_probabilities_forward_backward_matches_the_two_methods():
    loss = REGISTRY.losses["cross_entropy"]()
    pred = torch.randn(5, 3, dtype=torch.float64) * 10
    target = torch.softmax(torch.randn(5, 3, dtype=torch.float64), dim=-1)
    value, grad = loss.forward_backward(pred, target)
    assert torch.equal(value, loss.forward(pred, target))
    torch.testing.assert_close(grad, loss.backward(pred, target), rtol=1e-12, atol=1e-15)


def test_the_forward_cache_is_freed_by_backward():
    model = nnrun.MLP([3, 8, 2], activation=REGISTRY.activations["tanh"]())
    x = torch.randn(4, 3)
    seen = weakref.ref(x)
    pred = model.forward(x)
    model.backward(torch.ones_like(pred))
    del x, pred
    gc.collect()
    assert seen() is None  # the first layer's input is no longer held
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(torch.ones(4, 2))  # nothing left of that forward


class Recording(Activation):
    """Sigmoid that remembers weak references to its inputs, with or without a fast backward."""

    def __init__(self):
        self.inputs: list[weakref.ref] = []

    def forward(self, x):
        self.inputs.append(weakref.ref(x))
        return torch.sigmoid(x)

    def backward(self, x, y, grad_y):
        return grad_y * (1 - y) * y


class RecordingFromOutput(Recording):
    def backward_from_output(self, y, grad_y):
        return torch.ops.aten.sigmoid_backward(grad_y, y)


@pytest.mark.parametrize("cls, kept", [(Recording, True), (RecordingFromOutput, False)])
def test_only_the_output_is_kept_for_an_activation_with_a_fast_backward(cls, kept):
    activation = cls()
    model = nnrun.MLP([3, 8, 2], activation=activation)
    pred = model.forward(torch.randn(4, 3))
    gc.collect()
    assert (activation.inputs[0]() is not None) == kept  # the pre-activation
    model.backward(torch.ones_like(pred))
    gc.collect()
    assert activation.inputs[0]() is None


def test_a_replaced_weight_tensor_is_used_by_the_next_forward():
    layer = nnrun.Linear(3, 2)
    x = torch.randn(4, 3)
    layer.forward(x)
    layer.weight.data = torch.randn(2, 3)  # not updated in place: the cached transpose is stale
    torch.testing.assert_close(layer.forward(x), x @ layer.weight.data.t() + layer.bias.data)


def test_a_small_network_runs_its_step_on_one_thread_and_restores_the_count(monkeypatch):
    threads = [2]
    seen = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads[0])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: threads.__setitem__(0, n))

    class Spy(Generic):
        def forward(self, x):
            seen.append(threads[0])
            return super().forward(x)

    model = nnrun.MLP([1, 100, 1], activation=Spy(REGISTRY.activations["tanh"]()))
    model.forward(torch.randn(1, 1))
    model.forward(torch.randn(1000, 1))  # 1000 × 100 elements: large
    assert seen == [1, 2] and threads == [2]


def test_a_subclass_overriding_forward_or_backward_does_not_inherit_the_fast_method():
    mse, sigmoid = type(REGISTRY.losses["mse"]()), type(REGISTRY.activations["sigmoid"]())
    calls = []

    class Doubled(mse):
        def forward(self, pred, target):
            calls.append("forward")
            return 2 * super().forward(pred, target)

    class Halved(sigmoid):
        def backward(self, x, y, grad_y):
            calls.append("backward")
            return super().backward(x, y, grad_y) / 2

    pred, target = torch.randn(4, 1), torch.randn(4, 1)
    value, _ = Doubled().forward_backward(pred, target)
    assert torch.equal(value, 2 * mse().forward(pred, target))
    model = nnrun.MLP([1, 3, 1], activation=Halved())
    model.backward(torch.ones_like(model.forward(pred)))
    assert calls == ["forward", "backward"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_follows_the_trajectory_of_a_plain_loop_over_sliced_batches(shuffle):
    """`Trainer.fit` (batches made by `Tensor.split`, chunked) takes the very steps of a plain
    loop over `x[i : i + b]` slices: the same weights and mean batch loss, bit for bit."""
    from nnrun.experiment.data import SPLIT_CHUNK
    from nnrun.experiment.train import Trainer, TrainSettings

    batch, n = 2, 2 * SPLIT_CHUNK + 3  # two chunks and a short batch
    x = torch.linspace(-2, 2, n)[:, None]
    y = x**2

    def parts():
        torch.manual_seed(0)
        model = nnrun.MLP([1, 8, 1], activation=REGISTRY.activations["sigmoid"]())
        optimizer = REGISTRY.optimizers["sgd"](model.parameters(), lr=0.01, momentum=0.9)
        return model, REGISTRY.losses["mse"](), optimizer

    model, loss, optimizer = parts()
    settings = TrainSettings(epochs=1, batch_size=batch, shuffle=shuffle)
    trainer = Trainer(
        model, loss, optimizer, None, settings, (x, y), None, torch.Generator().manual_seed(5)
    )
    records = []
    trainer.fit(on_epoch=records.append)

    plain, plain_loss, plain_optimizer = parts()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(5)) if shuffle else None
    xs, ys = (x[order], y[order]) if shuffle else (x, y)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, n, batch):
        xb, yb = xs[start : start + batch], ys[start : start + batch]
        value = plain_loss.forward(pred := plain.forward(xb), yb)
        plain.backward(plain_loss.backward(pred, yb))
        plain_optimizer.step()
        total += value
    for ours, theirs in zip(model.parameters(), plain.parameters(), strict=True):
        assert torch.equal(ours.data, theirs.data)
    assert records[0]["mean_batch_loss"] == total.item() / trainer.steps_per_epoch
