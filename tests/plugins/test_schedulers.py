"""The built-in schedulers against torch.optim.lr_scheduler, epoch by epoch.

Tolerance: rel 1e-12 and no absolute slack. torch computes most rates recursively (each from the
last), nnrun from closed forms, so the two differ by rounding that accumulates over the epochs;
the worst measured is 1.6e-13 (cosine, T_max = 1000, eta_min > 0, over 3·T_max epochs).
"""

from __future__ import annotations

import inspect
import io
import math

import pytest
import torch
from torch.optim import lr_scheduler as torch_schedulers

import nnrun
import nnrun.plugins.schedulers
from nnrun import factory
from nnrun.loading import PluginHost, load_registry

LR = 0.1
REL = 1e-12

# Metrics with long plateaus, improvements smaller than the thresholds below (rel 1e-4 of 0.3 is
# 3e-5), a NaN (never an improvement, as in torch), and late drops, so that every branch of
# reduce-on-plateau is taken.
METRICS = (
    [1.0, 0.7, 0.5, 0.4, 0.3]
    + [0.3] * 12
    + [0.29999, 0.3, 0.2999, 0.2999]
    + [0.25] * 3
    + [0.26, float("nan"), 0.26]
    + [0.249999] * 14
    + [0.1, 0.09, 0.09]
    + [0.095] * 20
    + [0.0885] * 6  # 0.0015 better than 0.09: an improvement for an abs threshold of 1e-3 only
)


@pytest.fixture(scope="module")
def registry():
    """Only the built-in schedulers, registered in-process (no other plugins needed)."""
    host = PluginHost()
    host.register(nnrun.plugins.schedulers)
    return load_registry(host)


def optimizer(lr: float = LR) -> nnrun.Optimizer:
    return nnrun.Optimizer([nnrun.Parameter(torch.zeros(1))], lr=lr)


def build(registry, name: str, opt: nnrun.Optimizer, **hyperparameters):
    return factory.build(registry, "schedulers", {"name": name, **hyperparameters}, opt)


def nnrun_rates(registry, name, hyperparameters, epochs, metrics=None):
    """optimizer.lr at construction and after each of `epochs` steps."""
    opt = optimizer()
    scheduler = build(registry, name, opt, **hyperparameters)
    rates = [opt.lr]
    for epoch in range(epochs):
        scheduler.step(None if metrics is None else metrics[epoch])
        rates.append(opt.lr)
    return rates


def torch_rates(make, epochs, metrics=None):
    """The same for a torch scheduler on SGD (stepped after the optimizer, as torch wants)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = make(opt)
    rates = [opt.param_groups[0]["lr"]]
    for epoch in range(epochs):
        opt.step()
        scheduler.step() if metrics is None else scheduler.step(metrics[epoch])
        rates.append(opt.param_groups[0]["lr"])
    return rates


def warmup_then(after_factory, start_factor, warmup_epochs):
    """torch's equivalent of linear_warmup: LinearLR, then `after` from the milestone on."""

    def make(opt):
        warmup = torch_schedulers.LinearLR(opt, start_factor, 1.0, total_iters=warmup_epochs)
        return torch_schedulers.SequentialLR(
            opt, [warmup, after_factory(opt)], milestones=[warmup_epochs]
        )

    return make


T = torch_schedulers
CASES = {
    "constant": ("constant", {}, lambda o: T.ConstantLR(o, factor=1.0, total_iters=0), 20),
    "step": ("step", {"step_size": 3}, lambda o: T.StepLR(o, 3), 20),
    "step-every-epoch": ("step", {"step_size": 1, "gamma": 0.5}, lambda o: T.StepLR(o, 1, 0.5), 30),
    "step-growing": ("step", {"step_size": 4, "gamma": 2.0}, lambda o: T.StepLR(o, 4, 2.0), 30),
    "exponential": ("exponential", {"gamma": 0.9}, lambda o: T.ExponentialLR(o, 0.9), 100),
    "exponential-growing": (
        "exponential",
        {"gamma": 1.03},
        lambda o: T.ExponentialLR(o, 1.03),
        100,
    ),
    **{
        f"cosine-T{t_max}-eta{eta_min}": (
            "cosine",
            {"T_max": t_max, "eta_min": eta_min},
            lambda o, t_max=t_max, eta_min=eta_min: T.CosineAnnealingLR(o, t_max, eta_min),
            3 * t_max,
        )
        for t_max in (1, 2, 7, 50, 1000)
        for eta_min in (0.0, 1e-3)
    },
    "warmup-alone": (
        "linear_warmup",
        {"warmup_epochs": 4, "start_factor": 0.1},
        lambda o: T.LinearLR(o, 0.1, 1.0, total_iters=4),
        12,
    ),
    "warmup-defaults": ("linear_warmup", {}, lambda o: T.LinearLR(o), 12),
    "warmup-cosine": (
        "linear_warmup",
        {"warmup_epochs": 5, "start_factor": 0.2, "after": {"name": "cosine", "T_max": 20}},
        warmup_then(lambda o: T.CosineAnnealingLR(o, 20), 0.2, 5),
        70,
    ),
    "warmup-cosine-eta_min": (
        "linear_warmup",
        {
            "warmup_epochs": 1,
            "start_factor": 0.5,
            "after": {"name": "cosine", "T_max": 9, "eta_min": 0.01},
        },
        warmup_then(lambda o: T.CosineAnnealingLR(o, 9, 0.01), 0.5, 1),
        40,
    ),
    "warmup-step": (
        "linear_warmup",
        {
            "warmup_epochs": 3,
            "start_factor": 0.01,
            "after": {"name": "step", "step_size": 4, "gamma": 0.5},
        },
        warmup_then(lambda o: T.StepLR(o, 4, 0.5), 0.01, 3),
        30,
    ),
    "no-warmup-cosine": (
        "linear_warmup",
        {"warmup_epochs": 0, "after": {"name": "cosine", "T_max": 6}},
        warmup_then(lambda o: T.CosineAnnealingLR(o, 6), 1.0 / 3, 0),
        20,
    ),
    # torch restarts each scheduler of a SequentialLR at its milestone, so nesting is a 3-stage one.
    "warmup-warmup-cosine": (
        "linear_warmup",
        {
            "warmup_epochs": 2,
            "start_factor": 0.5,
            "after": {
                "name": "linear_warmup",
                "warmup_epochs": 3,
                "start_factor": 0.1,
                "after": {"name": "cosine", "T_max": 5},
            },
        },
        lambda o: T.SequentialLR(
            o,
            [
                T.LinearLR(o, 0.5, total_iters=2),
                T.LinearLR(o, 0.1, total_iters=3),
                T.CosineAnnealingLR(o, 5),
            ],
            milestones=[2, 5],
        ),
        20,
    ),
    "warmup-bare-name": (
        "linear_warmup",
        {"warmup_epochs": 2, "start_factor": 0.5, "after": "constant"},
        warmup_then(lambda o: T.ConstantLR(o, factor=1.0, total_iters=0), 0.5, 2),
        10,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rates_match_torch_epoch_by_epoch(registry, case):
    name, hyperparameters, torch_factory, epochs = case
    ours = nnrun_rates(registry, name, hyperparameters, epochs)
    assert ours == pytest.approx(torch_rates(torch_factory, epochs), rel=REL, abs=0)


PLATEAU_SETTINGS = [
    {},
    {"patience": 2},
    {"patience": 0, "factor": 0.5},
    {"patience": 1, "cooldown": 3},
    {"patience": 1, "threshold": 0.1},
    {"patience": 2, "factor": 0.7, "threshold_mode": "abs", "threshold": 1e-3},
    {"patience": 0, "factor": 0.5, "min_lr": 0.02},
    {"patience": 0, "factor": 0.9, "eps": 0.05},  # reductions smaller than eps are skipped
    {"mode": "max", "patience": 1},
    {"mode": "max", "patience": 2, "threshold_mode": "abs", "threshold": 0.05, "cooldown": 1},
]


@pytest.mark.parametrize("settings", PLATEAU_SETTINGS, ids=str)
def test_reduce_on_plateau_matches_torch(registry, settings):
    # In mode "max" an improving metric goes up: feed the same sequence upside down.
    metrics = [-m for m in METRICS] if settings.get("mode") == "max" else METRICS
    ours = nnrun_rates(registry, "reduce_on_plateau", settings, len(metrics), metrics)
    reference = torch_rates(
        lambda o: torch_schedulers.ReduceLROnPlateau(o, **settings), len(metrics), metrics
    )
    assert ours == pytest.approx(reference, rel=REL, abs=0)
    assert len(set(ours)) > 1 or settings.get("eps"), "the metrics should cause a reduction"


def test_linear_warmup_hands_over_to_reduce_on_plateau(registry):
    """torch's SequentialLR refuses ReduceLROnPlateau; the reference is built by hand: LinearLR
    during warm-up, then at the milestone the base rate and a fresh ReduceLROnPlateau."""
    warmup, epochs = 4, len(METRICS)
    settings = {"patience": 2, "factor": 0.5}
    ours = nnrun_rates(
        registry,
        "linear_warmup",
        {
            "warmup_epochs": warmup,
            "start_factor": 0.25,
            "after": {"name": "reduce_on_plateau", **settings},
        },
        epochs,
        METRICS,
    )
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    linear = torch_schedulers.LinearLR(opt, 0.25, 1.0, total_iters=warmup)
    reference = [opt.param_groups[0]["lr"]]
    for _ in range(warmup - 1):
        opt.step()
        linear.step()
        reference.append(opt.param_groups[0]["lr"])
    opt.param_groups[0]["lr"] = LR
    plateau = torch_schedulers.ReduceLROnPlateau(opt, **settings)
    reference.append(LR)
    for metric in METRICS[warmup:]:
        plateau.step(metric)
        reference.append(opt.param_groups[0]["lr"])
    assert ours == pytest.approx(reference, rel=REL, abs=0)
    assert min(ours[warmup:]) < LR


RESUMABLE = {
    **{key: CASES[key][:2] for key in ("constant", "step", "exponential", "cosine-T7-eta0.001")},
    "warmup-cosine": CASES["warmup-cosine"][:2],
    "reduce_on_plateau": ("reduce_on_plateau", {"patience": 1, "cooldown": 2, "factor": 0.5}),
    "warmup-plateau": (
        "linear_warmup",
        {"warmup_epochs": 3, "after": {"name": "reduce_on_plateau", "patience": 1}},
    ),
    "warmup-warmup-cosine": (
        "linear_warmup",
        {
            "warmup_epochs": 2,
            "after": {
                "name": "linear_warmup",
                "warmup_epochs": 3,
                "after": {"name": "cosine", "T_max": 5},
            },
        },
    ),
}


@pytest.mark.parametrize("stop", [0, 2, 9, 25])
@pytest.mark.parametrize("case", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_resumed_scheduler_continues_like_one_that_never_stopped(registry, case, stop):
    """The saved state goes through torch.save / torch.load(weights_only=True), as a checkpoint
    would, into a fresh optimizer at the configured rate (the optimizer's own state is not
    restored here, so the scheduler alone must put the rate back)."""
    name, hyperparameters = case
    epochs = 40
    uninterrupted = nnrun_rates(registry, name, hyperparameters, epochs, METRICS)

    opt = optimizer()
    scheduler = build(registry, name, opt, **hyperparameters)
    for epoch in range(stop):
        scheduler.step(METRICS[epoch])
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    scheduler.step(METRICS[stop])  # the saved state must not move with the live scheduler
    buffer.seek(0)

    opt = optimizer()
    resumed = build(registry, name, opt, **hyperparameters)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    rates = [opt.lr]
    for epoch in range(stop, epochs):
        resumed.step(METRICS[epoch])
        rates.append(opt.lr)
    assert rates == uninterrupted[stop:]


MISMATCHED = [
    (("step", {"step_size": 2}), ("cosine", {"T_max": 5}), "not a StepDecay's"),
    (("linear_warmup", {}), ("linear_warmup", {"after": "constant"}), "does not fit .*'after'"),
    (("linear_warmup", {"after": "constant"}), ("linear_warmup", {}), "does not fit .*'after'"),
]


@pytest.mark.parametrize(("target", "source", "message"), MISMATCHED, ids=str)
def test_load_state_dict_rejects_state_of_another_kind(registry, target, source, message):
    scheduler = build(registry, target[0], optimizer(), **target[1])
    other = build(registry, source[0], optimizer(), **source[1])
    with pytest.raises(ValueError, match=message):
        scheduler.load_state_dict(other.state_dict())


INVALID = [
    ("step", {"step_size": 0}, "Invalid step_size: 0"),
    ("step", {"step_size": 2.5}, "Invalid step_size: 2.5"),
    ("step", {"step_size": True}, "Invalid step_size: True"),
    ("step", {"step_size": 3, "gamma": -0.1}, "Invalid gamma: -0.1"),
    ("exponential", {"gamma": float("nan")}, "Invalid gamma: nan"),
    ("cosine", {"T_max": 0}, "Invalid T_max: 0"),
    ("cosine", {"T_max": 10, "eta_min": -1e-3}, "Invalid eta_min: -0.001"),
    ("linear_warmup", {"warmup_epochs": -1}, "Invalid warmup_epochs: -1"),
    ("linear_warmup", {"start_factor": 0.0}, "Invalid start_factor: 0.0"),
    ("linear_warmup", {"start_factor": 1.5}, "Invalid start_factor: 1.5"),
    ("linear_warmup", {"after": {"T_max": 5}}, "Invalid after: .*expected a table naming"),
    ("linear_warmup", {"after": 5}, "Invalid after: 5"),
    ("linear_warmup", {"after": {"name": "cosine"}}, "cosine' needs 'T_max'"),
    (
        "linear_warmup",
        {"after": {"name": "cosine", "T_max": 5, "gama": 0.1}},
        "does not take 'gama'",
    ),
    ("linear_warmup", {"after": {"name": "cosine", "T_max": 0}}, "Invalid T_max: 0"),
    ("reduce_on_plateau", {"mode": "mid"}, "Invalid mode: 'mid'"),
    ("reduce_on_plateau", {"factor": 1.0}, "Invalid factor: 1.0"),
    ("reduce_on_plateau", {"patience": -1}, "Invalid patience: -1"),
    ("reduce_on_plateau", {"threshold": -1e-4}, "Invalid threshold: -0.0001"),
    ("reduce_on_plateau", {"threshold_mode": "relative"}, "Invalid threshold_mode: 'relative'"),
    ("reduce_on_plateau", {"cooldown": 1.5}, "Invalid cooldown: 1.5"),
    ("reduce_on_plateau", {"min_lr": -0.1}, "Invalid min_lr: -0.1"),
    ("reduce_on_plateau", {"eps": -1.0}, "Invalid eps: -1.0"),
]


@pytest.mark.parametrize(("name", "hyperparameters", "message"), INVALID, ids=lambda x: str(x))
def test_invalid_hyperparameters_are_rejected_at_construction(
    registry, name, hyperparameters, message
):
    opt = optimizer()
    with pytest.raises(ValueError, match=message):
        build(registry, name, opt, **hyperparameters)


def test_linear_warmup_names_an_unknown_after_with_a_suggestion(registry):
    with pytest.raises(nnrun.UnknownComponentError, match="did you mean 'cosine'"):
        build(registry, "linear_warmup", optimizer(), after={"name": "cosin", "T_max": 5})


def test_reduce_on_plateau_needs_the_metric(registry):
    scheduler = build(registry, "reduce_on_plateau", optimizer())
    with pytest.raises(TypeError, match="needs the metric"):
        scheduler.step()


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"),
        ],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_reduce_on_plateau_takes_the_metric_as_a_tensor(registry, device):
    metrics = [torch.tensor(m, dtype=torch.float64, device=device) for m in METRICS]
    settings = {"patience": 1}
    ours = nnrun_rates(registry, "reduce_on_plateau", settings, len(metrics), metrics)
    assert ours == nnrun_rates(registry, "reduce_on_plateau", settings, len(METRICS), METRICS)


TORCH_EQUIVALENT = {
    "step": (torch_schedulers.StepLR, {"gamma": "gamma"}),
    "cosine": (torch_schedulers.CosineAnnealingLR, {"eta_min": "eta_min"}),
    "linear_warmup": (
        torch_schedulers.LinearLR,
        {"warmup_epochs": "total_iters", "start_factor": "start_factor"},
    ),
    "reduce_on_plateau": (
        torch_schedulers.ReduceLROnPlateau,
        {
            k: k
            for k in (
                "mode",
                "factor",
                "patience",
                "threshold",
                "threshold_mode",
                "cooldown",
                "min_lr",
                "eps",
            )
        },
    ),
}


@pytest.mark.parametrize("name", TORCH_EQUIVALENT)
def test_defaults_are_torchs(registry, name):
    torch_class, names = TORCH_EQUIVALENT[name]
    ours = inspect.signature(registry.schedulers[name]).parameters
    theirs = inspect.signature(torch_class).parameters
    for our_name, their_name in names.items():
        assert ours[our_name].default == theirs[their_name].default, our_name


@pytest.mark.filterwarnings("ignore::nnrun.PluginLoadWarning")  # other kinds' plugins may be absent
def test_builtins_are_found_through_the_entry_point():
    schedulers = nnrun.load_registry().schedulers
    assert {
        "constant",
        "step",
        "exponential",
        "cosine",
        "linear_warmup",
        "reduce_on_plateau",
    } <= set(schedulers)
    assert schedulers["cosine"] is nnrun.plugins.schedulers.CosineAnnealing
    assert issubclass(schedulers["cosine"], nnrun.Scheduler)
    # Built through the factory from the installed plugins, `after` is found there too.
    opt = optimizer()
    spec = {"name": "linear_warmup", "warmup_epochs": 1, "after": {"name": "cosine", "T_max": 4}}
    warmup = factory.build(nnrun.load_registry(), "schedulers", spec, opt)
    warmup.step()
    warmup.step()
    assert opt.lr == pytest.approx(LR * (1 + math.cos(math.pi / 4)) / 2, rel=REL)
