"""The built-in optimizers against torch.optim (and Lion against its paper), step for step.

Tolerances are `torch.testing.assert_close`'s defaults, the ones torch's own tests use between its
per-tensor, foreach and fused implementations: rtol 1.3e-6 / atol 1e-5 in float32, rtol 1e-7 /
atol 1e-7 in float64. The per-tensor paths of Adagrad, RMSprop, Adam(W) and Adamax agree with torch
bitwise; the fused kernels and the regrouped updates (SGD's momentum, NAdam, RAdam, Adadelta) to
rounding, which over 200 steps stays within a few percent of those tolerances.
"""

from __future__ import annotations

import inspect
import io
import itertools

import pytest
import torch

import nnrun
from nnrun import Parameter
from nnrun.plugins.optimizers import BUILTINS, _common
from nnrun.testing import check_optimizer

STEPS = 200
SHAPES = [(), (5,), (2, 3, 4), (4, 3), (3,)]
INTERMITTENT = 3  # no gradient every fourth step: its step count must not advance then
NEVER = 4  # never a gradient: must stay exactly as it was


class LionPaper:
    """Algorithm 2 of Chen et al. 2023 ("Symbolic Discovery of Optimization Algorithms"), line by
    line, built like a torch.optim class so that the same harness drives it."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
        self.params = list(params)
        self.param_groups = [dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)]
        self.m = [torch.zeros_like(theta) for theta in self.params]

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        eta, (beta1, beta2), lam = group["lr"], group["betas"], group["weight_decay"]
        for i, theta in enumerate(self.params):
            if theta.grad is None:
                continue
            g = -theta.grad if group["maximize"] else theta.grad
            c = beta1 * self.m[i] + (1 - beta1) * g  # update model parameters
            theta.sub_(eta * (torch.sign(c) + lam * theta))
            self.m[i] = beta2 * self.m[i] + (1 - beta2) * g  # update EMA of g_t


REFERENCES = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adamax": torch.optim.Adamax,
    "adadelta": torch.optim.Adadelta,
    "lion": LionPaper,
}
FUSED = {"sgd", "adagrad", "adam", "adamw"}


def product(**options: list) -> list[dict]:
    return [dict(zip(options, values)) for values in itertools.product(*options.values())]


# Every boolean and on/off option, with a rate that moves the parameters far in STEPS steps.
OPTIONS: dict[str, list[dict]] = {
    "sgd": [
        o
        for o in product(
            lr=[0.05],
            momentum=[0.0, 0.9],
            dampening=[0.0, 0.3],
            nesterov=[False, True],
            weight_decay=[0.0, 0.1],
            maximize=[False, True],
        )
        if not (o["nesterov"] and (o["momentum"] == 0 or o["dampening"] != 0))
    ],
    "adagrad": product(
        lr=[0.1],
        lr_decay=[0.0, 0.01],
        weight_decay=[0.0, 0.1],
        initial_accumulator_value=[0.0, 0.1],
        maximize=[False, True],
    ),
    "rmsprop": product(
        lr=[0.01],
        momentum=[0.0, 0.9],
        centered=[False, True],
        weight_decay=[0.0, 0.1],
        maximize=[False, True],
    ),
    "adam": product(
        lr=[0.01], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True]
    ),
    "adamw": product(
        lr=[0.01], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True]
    ),
    "nadam": product(
        lr=[0.01],
        weight_decay=[0.0, 0.1],
        decoupled_weight_decay=[False, True],
        maximize=[False, True],
    ),
    "radam": product(
        lr=[0.01],
        weight_decay=[0.0, 0.1],
        decoupled_weight_decay=[False, True],
        maximize=[False, True],
    ),
    "adamax": product(lr=[0.01], weight_decay=[0.0, 0.1], maximize=[False, True]),
    "adadelta": product(lr=[1.0], weight_decay=[0.0, 0.1], maximize=[False, True]),
    "lion": product(
        lr=[1e-3],
        betas=[(0.9, 0.99), (0.95, 0.98)],
        weight_decay=[0.0, 0.1],
        maximize=[False, True],
    ),
}

CASES = [
    pytest.param(
        name, options, path, id=f"{name}-{path}-" + "-".join(f"{k}={v}" for k, v in options.items())
    )
    for name, combos in OPTIONS.items()
    for options in combos
    for path in (["per-tensor", "fused"] if name in FUSED else ["per-tensor"])
]


@pytest.fixture
def one_thread():
    """torch on one thread, the setting in which small CPU tensors go to the fused kernels (on more
    threads those kernels would split even tiny tensors across threads: slow on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def two_threads(monkeypatch):
    """torch seen on two threads; `torch.set_num_threads` is recorded in `[0]`, not applied."""
    current = [2]
    monkeypatch.setattr(torch, "get_num_threads", lambda: current[0])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: current.__setitem__(0, n))
    return current


@pytest.fixture
def path(request, monkeypatch):
    """Force one of the two paths on CPU: torch's fused kernel, or the per-tensor updates."""
    if request.param == "fused":
        request.getfixturevalue("one_thread")
    else:  # and the reused temporaries for all but the smallest tensors
        monkeypatch.setattr(_common, "FUSED_DTYPES", ())
        monkeypatch.setattr(_common, "LARGE", 8)
    return request.param


def compare_with_reference(name, options, dtype, device="cpu", shapes=SHAPES, transpose=False):
    """Minimize ½·Σ a·(θ − c)² + noise (maximize: ascend its negative), with exactly zero gradients
    every 23rd step, the learning rate halved halfway through, one parameter with no gradient
    every fourth step and one never; compare with the reference after every step. `dtype` may
    be a list, one per shape."""
    generator = torch.Generator().manual_seed(0)
    dtypes = dtype if isinstance(dtype, list) else [dtype] * len(shapes)

    def draw(i):
        value = torch.randn(shapes[i], generator=generator, dtype=torch.float64)
        return value.to(dtype=dtypes[i], device=device)

    start, centre = [draw(i) for i in range(len(shapes))], [draw(i) for i in range(len(shapes))]
    curvature = [0.5 + draw(i).abs() for i in range(len(shapes))]
    if transpose:  # a transposed 2-d parameter (its gradients contiguous)
        start = [x.t().contiguous().t() if x.dim() == 2 else x for x in start]
    ours = [Parameter(x.clone(memory_format=torch.preserve_format)) for x in start]
    theirs = [torch.nn.Parameter(x.clone(memory_format=torch.preserve_format)) for x in start]
    optimizer = BUILTINS[name](ours, **options)
    reference = REFERENCES[name](theirs, **options)
    sign = -1.0 if options.get("maximize") else 1.0
    tolerances = {torch.float32: (1.3e-6, 1e-5), torch.float64: (1e-7, 1e-7)}

    for t in range(STEPS):
        if t == STEPS // 2:
            optimizer.lr = optimizer.lr * 0.5
            reference.param_groups[0]["lr"] *= 0.5
        for i, (p, q) in enumerate(zip(ours, theirs)):
            if i == NEVER or (i == INTERMITTENT and t % 4 == 1):
                p.grad = q.grad = None
                continue
            noise = 0.3 * draw(i)
            if t % 23 == 0:
                p.grad, q.grad = torch.zeros_like(p.data), torch.zeros_like(q)
            else:
                p.grad = sign * curvature[i] * (p.data - centre[i]) + noise
                q.grad = sign * curvature[i] * (q.detach() - centre[i]) + noise
            if transpose and p.grad.dim() == 3:  # transposed 3-d gradients (parameter contiguous)
                p.grad = p.grad.transpose(0, 2).contiguous().transpose(0, 2)
                q.grad = q.grad.transpose(0, 2).contiguous().transpose(0, 2)
        optimizer.step()
        reference.step()
        for i, (p, q) in enumerate(zip(ours, theirs)):
            rtol, atol = tolerances[dtypes[i]]
            if not torch.allclose(p.data, q.detach(), rtol=rtol, atol=atol):
                torch.testing.assert_close(
                    p.data,
                    q.detach(),
                    rtol=rtol,
                    atol=atol,
                    msg=lambda m, t=t, i=i: f"{name} {options}, shape {shapes[i]}, step {t}: {m}",
                )
    assert torch.equal(ours[NEVER].data, start[NEVER])
    assert "step" not in optimizer.state.get(ours[NEVER], {})
    assert all(torch.isfinite(p.data).all() for p in ours)


def test_registry_provides_every_builtin_through_the_entry_point():
    registry = nnrun.load_registry()
    assert set(registry.optimizers) >= set(BUILTINS)
    adam = registry.optimizers["adam"]
    assert adam is BUILTINS["adam"]
    assert registry.component("optimizers", "adam").provider.distribution == "nnrun"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "options", "path"), CASES, indirect=["path"])
def test_matches_reference_step_for_step(name, options, path, dtype):
    compare_with_reference(name, options, dtype)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_non_contiguous_parameters_and_gradients_match_torch(name, one_thread):
    """torch's fused CPU kernels read every tensor in memory order, so a parameter and gradient
    laid out differently are silently paired up wrongly: these must take the per-tensor path."""
    compare_with_reference(name, OPTIONS[name][-1], torch.float32, transpose=True)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_contiguous_float_parameters_take_the_fused_kernel_small_ones_on_one_thread(
    name, monkeypatch, two_threads
):
    kernel = BUILTINS[name].fused_kernel
    calls = []
    original = getattr(torch, kernel)

    def spy(params, *args, **kwargs):
        calls.append(([tuple(p.shape) for p in params], two_threads[0]))
        return original(params, *args, **kwargs)

    monkeypatch.setattr(torch, kernel, spy)
    large, small = (256, 128), (3, 4)  # 32768 elements: torch's grain size
    params = [Parameter(torch.randn(large)), Parameter(torch.randn(small))]
    params += [
        Parameter(torch.randn(large, dtype=torch.float64)),
        Parameter(torch.randn(large).t()),
    ]
    for p in params:
        p.grad = torch.randn_like(p.data)
    options = {"momentum": 0.9} if name == "sgd" else {}
    BUILTINS[name](params, **options).step()
    # One call per dtype for the large contiguous parameters, on every thread; one for the small
    # one, on one thread; the transposed parameter is updated tensor by tensor.
    assert sorted(calls) == [([small], 1), ([large], 2), ([large], 2)]
    assert two_threads[0] == 2


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_and_per_tensor_parameters_of_both_dtypes_in_one_optimizer(
    name, monkeypatch, two_threads
):
    """One optimizer, some parameters through the kernel (one call per dtype and size), some not."""
    monkeypatch.setattr(_common, "LARGE", 16)  # 24 elements: large; 5, 1 and 3: small
    shapes = [(2, 3, 4), (4, 5), (5,), (), (3,)]
    dtypes = [torch.float32, torch.float64, torch.float64, torch.float32, torch.float64]
    # (4, 5) transposed: updated tensor by tensor
    compare_with_reference(name, OPTIONS[name][-1], dtypes, shapes=shapes, transpose=True)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_hyperparameters_are_torchs_names_and_defaults(name):
    ours = inspect.signature(BUILTINS[name].__init__).parameters
    theirs = inspect.signature(REFERENCES[name].__init__).parameters
    hyperparameters = [p for p in ours.values() if p.name not in ("self", "params")]
    for p in hyperparameters:
        assert p.kind is p.POSITIONAL_OR_KEYWORD and p.annotation is not p.empty, p
        assert p.name in theirs, f"{name}: torch.optim has no hyperparameter {p.name!r}"
        assert p.default == theirs[p.name].default, f"{name}.{p.name}"


BAD_ARGUMENTS = [
    ("lr", -0.1),
    ("eps", -1e-8),
    ("betas", (1.0, 0.999)),
    ("betas", (0.9, -0.1)),
    ("weight_decay", -0.01),
    ("momentum", -0.5),
    ("lr_decay", -1.0),
    ("initial_accumulator_value", -1.0),
    ("alpha", -0.1),
    ("momentum_decay", -1.0),
    ("rho", 1.5),
]
ARGUMENT_CASES = [
    pytest.param(name, {key: value}, id=f"{name}-{key}={value}")
    for name in REFERENCES
    for key, value in BAD_ARGUMENTS
    if key in inspect.signature(BUILTINS[name].__init__).parameters
] + [
    pytest.param("sgd", {"nesterov": True}, id="sgd-nesterov-without-momentum"),
    pytest.param(
        "sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, id="sgd-nesterov-dampening"
    ),
]


#: Whose messages to expect: torch's counterpart; for Lion, AdamW's checks of lr, betas and decay.
MESSAGES_FROM = {**REFERENCES, "lion": torch.optim.AdamW}


@pytest.mark.parametrize(("name", "arguments"), ARGUMENT_CASES)
def test_rejects_invalid_hyperparameters_as_torch_does(name, arguments):
    with pytest.raises(ValueError) as theirs:
        MESSAGES_FROM[name]([torch.nn.Parameter(torch.zeros(2))], **arguments)
    with pytest.raises(ValueError) as ours:
        BUILTINS[name]([Parameter(torch.zeros(2))], **arguments)
    assert str(ours.value) == str(theirs.value)


# The options that keep the most state: every buffer present in the state dict.
RICH_OPTIONS = {
    "sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    "adagrad": {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
    "rmsprop": {"momentum": 0.9, "centered": True, "weight_decay": 0.1},
    "adam": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
    "adamw": {"lr": 0.01, "amsgrad": True},
    "nadam": {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1},
    "radam": {"lr": 0.01, "weight_decay": 0.1},
    "adamax": {"lr": 0.01, "weight_decay": 0.1},
    "adadelta": {"weight_decay": 0.1},
    "lion": {"lr": 1e-3, "weight_decay": 0.1},
}


@pytest.mark.parametrize("path", ["per-tensor", "fused"], indirect=True)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_state_dict_round_trip_continues_the_same_trajectory(name, path):
    generator = torch.Generator().manual_seed(0)
    grads = [[torch.randn(s, generator=generator) for s in SHAPES] for _ in range(40)]
    a = [Parameter(torch.randn(s, generator=generator)) for s in SHAPES]
    first = BUILTINS[name](a, **RICH_OPTIONS[name])
    for g in grads[:20]:
        for p, gi in zip(a, g):
            p.grad = gi.clone()
        first.step()
    first.lr = first.lr * 0.3
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    b = [Parameter(p.data.clone()) for p in a]
    second = BUILTINS[name](b, **RICH_OPTIONS[name])
    second.load_state_dict(torch.load(buffer, weights_only=True))
    assert second.lr == first.lr
    for p in b:  # step counts stay CPU numbers, as torch keeps them off the device
        step = second.state.get(p, {}).get("step", 0)
        assert isinstance(step, int)
    for g in grads[20:]:
        for p, q, gi in zip(a, b, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        first.step()
        second.step()
        for p, q in zip(a, b):
            assert torch.equal(p.data, q.data)


CHECKED = [
    pytest.param(name, options, id=f"{name}-{'-'.join(options) or 'defaults'}")
    for name in sorted(REFERENCES)
    for options in ({}, RICH_OPTIONS[name])
]


@pytest.mark.parametrize(("name", "options"), CHECKED)
def test_passes_the_conformance_kit(name, options):
    check_optimizer(BUILTINS[name], REFERENCES[name], **options)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_reference_on_cuda(name, dtype):
    compare_with_reference(name, RICH_OPTIONS[name], dtype, device="cuda")
