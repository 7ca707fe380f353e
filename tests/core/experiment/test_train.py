"""The [train] table's promises, each against an independent reference: per-epoch losses and probes
from torch autograd + torch.optim, clipping from torch.nn.utils, schedules from torch's schedulers."""

from __future__ import annotations

import io
import json
import math
import textwrap

import pytest
import torch

import nnrun
from nnrun.experiment.assemble import make_data, make_model
from nnrun.experiment.train import Trainer, TrainSettings, clip_grad_norm
from nnrun.model import MLP

F64 = torch.float64
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]

# float64, so the hand-written backward and autograd agree to a few ulps per step.
TINY = """
[experiment]
name = "tiny"
seed = 5
dtype = "float64"

[data]
expr = "x**2"
n = 20
range = [-2.0, 2.0]
noise = 0.1

[model]
layers = [1, 6, 1]
activation = "tanh"

[optimizer]
name = "sgd"
lr = 0.05
momentum = 0.9

[train]
epochs = 3
batch_size = 8
probes = [1.0, -0.5]
"""

# Noisy, few points and a large step: the validation loss stops improving after the first epoch.
PLATEAU = """
[experiment]
name = "plateau"
seed = 0

[data]
expr = "x**2"
n = 24
noise = 0.5
split = { val = 0.25 }

[model]
layers = [1, 8, 1]

[optimizer]
name = "sgd"
lr = 0.5

[train]
epochs = 12
batch_size = 4
"""


@pytest.fixture(scope="module")
def registry():
    return nnrun.load_registry()


def load(tmp_path, text, *overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(text))
    return nnrun.load_experiment(path, overrides)


def run(tmp_path, text, *overrides):
    experiment = load(tmp_path, text, *overrides)
    summary = nnrun.run_experiment(experiment, tmp_path / "out")
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    return experiment, summary, [json.loads(line) for line in lines]


# ------------------------------------------------------------------------------------------------
# losses and probes against torch autograd + torch.optim.SGD


def torch_twin(run_config, registry):
    """A torch.nn network with the weights the run starts from (same seed, same initializer)."""
    widths = run_config.model.layers
    torch.manual_seed(run_config.experiment.seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(widths[0], widths[1], dtype=F64),
        torch.nn.Tanh(),
        torch.nn.Linear(widths[1], widths[2], dtype=F64),
    )
    ours = make_model(run_config, registry).state_dict()
    assert all(torch.equal(a, b) for a, b in zip(ours, [p.detach() for p in net.parameters()]))
    return net


def test_epoch_losses_match_the_same_training_in_torch(tmp_path, registry):
    """train_loss: the epoch-end weights over the whole training set; mean_batch_loss: the mean of
    the batch losses taken while the weights moved during the epoch."""
    experiment, summary, records = run(tmp_path, TINY)
    (config,) = experiment.runs
    x, y = make_data(config).train
    net = torch_twin(config, registry)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    probes = torch.tensor([[1.0], [-0.5]], dtype=F64)
    expected_batch_means, expected_losses, expected_probes = [], [], []
    for _ in range(3):
        batch_losses = []
        for start in range(0, len(x), 8):  # 20 samples: batches of 8, 8 and 4
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x[start : start + 8]), y[start : start + 8])
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        expected_batch_means.append(sum(batch_losses) / len(batch_losses))
        with torch.no_grad():
            expected_losses.append(torch.nn.functional.mse_loss(net(x), y).item())
            expected_probes += net(probes)[:, 0].tolist()

    # 1e-10: nine float64 steps; the two backward passes differ only in summation order.
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["train_loss"] for r in records] == pytest.approx(expected_losses, rel=1e-10)
    assert [r["mean_batch_loss"] for r in records] == pytest.approx(expected_batch_means, rel=1e-10)
    assert [r["probes"][p] for r in records for p in ("1.0", "-0.5")] == pytest.approx(
        expected_probes, rel=1e-10
    )
    (entry,) = summary["runs"]
    assert entry["final_loss"] == records[-1]["train_loss"]  # one number, not two meanings
    assert entry["probes"] == records[-1]["probes"]


# ------------------------------------------------------------------------------------------------
# Trainer-level checks with instrumented components


class FrozenOptimizer(nnrun.Optimizer):
    """Records the gradients it is handed and changes nothing, so every epoch sees the same model."""

    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, lr=lr)
        self.seen: list[list[torch.Tensor]] = []

    def step(self) -> None:
        self.seen.append([p.grad.clone() for p in self.params])


def trainer(registry, *, n=12, val=None, scheduler=None, loss=None, **settings):
    """A Trainer over n samples whose targets are their indices, with a FrozenOptimizer."""
    torch.manual_seed(0)
    model = MLP([1, 3, 1], activation=registry.activations["tanh"](), dtype=F64)
    x = torch.arange(n, dtype=F64)[:, None] / n
    optimizer = FrozenOptimizer(model.parameters())
    return Trainer(
        model,
        loss or registry.losses["mse"](),
        optimizer,
        scheduler(optimizer) if scheduler else None,
        TrainSettings(**{"epochs": 3, "batch_size": 4, **settings}),
        (x, torch.arange(n, dtype=F64)[:, None]),  # the target names the sample
        val,
        torch.Generator().manual_seed(0),
    )


def epoch_orders(registry, seed=0, **settings):
    seen = []

    class Recording(registry.losses["mse"]):
        def forward(self, pred, target):
            if len(target) < 12:  # a batch, not the epoch-end loss over all 12 samples
                seen.append(target[:, 0].long())
            return super().forward(pred, target)

    t = trainer(registry, loss=Recording(), **settings)
    t.generator.manual_seed(seed)
    t.fit()
    order = torch.cat(seen)
    return [order[i : i + 12].tolist() for i in range(0, len(order), 12)]


def test_unshuffled_epochs_visit_the_data_in_order(registry):
    assert epoch_orders(registry, shuffle=False) == [list(range(12))] * 3


def test_shuffle_draws_a_new_permutation_each_epoch_reproducibly_from_the_seed(registry):
    orders = epoch_orders(registry, shuffle=True)
    assert all(sorted(order) == list(range(12)) for order in orders)
    assert all(order != list(range(12)) for order in orders)
    assert orders[0] != orders[1] != orders[2]
    assert epoch_orders(registry, shuffle=True) == orders
    assert epoch_orders(registry, seed=1, shuffle=True) != orders


def test_shuffled_experiment_gives_the_same_numbers_twice_and_others_than_unshuffled(tmp_path):
    losses = {}
    for name, shuffle in [("a", "true"), ("b", "true"), ("c", "false")]:
        _, _, records = run(tmp_path / name, TINY, f"train.shuffle={shuffle}")
        losses[name] = [r["train_loss"] for r in records]
    assert losses["a"] == losses["b"]
    assert losses["a"] != losses["c"]


@pytest.mark.parametrize("max_norm", [0.05, 1e6])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("device", DEVICES)
def test_clip_grad_norm_matches_torch(max_norm, dtype, device):
    generator = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(shape, generator=generator, dtype=dtype).to(device)
        for shape in [(3, 2), (3,), (1,)]
    ]
    params = [nnrun.Parameter(torch.zeros_like(g), g.clone()) for g in grads]
    references = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for reference, grad in zip(references, grads):
        reference.grad = grad.clone()
    total = torch.nn.utils.clip_grad_norm_(references, max_norm)
    norm = clip_grad_norm(params, max_norm)
    assert norm.device == params[0].grad.device  # not read back: no host sync per step
    assert norm.item() == pytest.approx(total.item(), rel=1e-6)
    for param, reference in zip(params, references):
        torch.testing.assert_close(param.grad, reference.grad)  # dtype-default tolerances


def test_grad_clip_hands_the_optimizer_torch_clipped_gradients(registry):
    t = trainer(registry, epochs=1, batch_size=12, grad_clip=0.1)
    t.fit()
    (clipped,) = t.optimizer.seen  # one batch, one step
    t.model.backward(t.loss.backward(t.model.forward(t.x), t.y))  # the same grads, unclipped
    references = [p.data.clone().requires_grad_() for p in t.model.parameters()]
    for reference, param in zip(references, t.model.parameters()):
        reference.grad = param.grad.clone()
    assert torch.nn.utils.clip_grad_norm_(references, 0.1) > 0.1  # so clipping did something
    for got, reference in zip(clipped, references):
        torch.testing.assert_close(got, reference.grad, rtol=1e-12, atol=0)


def test_without_grad_clip_the_gradients_are_untouched(registry):
    t = trainer(registry, epochs=1, batch_size=12)
    t.fit()
    (seen,) = t.optimizer.seen
    t.model.backward(t.loss.backward(t.model.forward(t.x), t.y))
    assert all(torch.equal(a, p.grad) for a, p in zip(seen, t.model.parameters()))


# ------------------------------------------------------------------------------------------------
# validation split, early stopping, schedulers


def test_val_split_is_seeded_held_out_and_reported_every_epoch(tmp_path, registry):
    experiment, summary, records = run(tmp_path, TINY, "data.split.val=0.25")
    (config,) = experiment.runs
    data = make_data(config)
    (x_val, y_val), (x_train, _) = data.val, data.train
    assert len(x_val) == 5 and len(x_train) == 15
    assert torch.equal(make_data(config).val[0], x_val)  # the same seed, the same split
    unsplit = make_data(load(tmp_path / "unsplit", TINY).runs[0])
    assert unsplit.val is None  # the same points, all for training, without a split
    x_all = unsplit.train[0]
    assert sorted(torch.cat([x_train, x_val])[:, 0].tolist()) == sorted(x_all[:, 0].tolist())

    assert all(isinstance(r["val_loss"], float) for r in records) and len(records) == 3
    model = make_model(config, registry)
    model.load_state_dict(
        torch.load(tmp_path / "out" / "checkpoints" / "tiny" / "last", weights_only=False)["model"]
    )
    final_val = torch.nn.functional.mse_loss(model.forward(x_val), y_val).item()
    assert summary["runs"][0]["final_val_loss"] == pytest.approx(final_val, rel=1e-12)
    assert records[-1]["val_loss"] == pytest.approx(final_val, rel=1e-12)


def expected_stop(val_losses, patience):
    """The epoch after which patience runs out: `patience` epochs in a row without a new best."""
    best, bad = float("inf"), 0
    for epoch, loss in enumerate(val_losses, start=1):
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        if bad >= patience:
            return epoch
    return None


@pytest.mark.parametrize(
    "seed,stops",
    [
        (0, True),  # the validation loss is best at epoch 1, then no better
        (1, False),  # the validation loss keeps improving while the training loss stalls
    ],
)
def test_early_stopping_watches_the_validation_loss_with_patience_in_epochs(tmp_path, seed, stops):
    _, summary, records = run(
        tmp_path, PLATEAU, "train.early_stopping=3", f"experiment.seed={seed}"
    )
    (entry,) = summary["runs"]
    stop = expected_stop([r["val_loss"] for r in records], 3)
    assert (stop is not None) == stops
    assert entry["epochs"] == len(records) == (stop or 12)
    assert entry["status"] == "ok"
    assert entry.get("stopped_early", False) is stops


def test_without_early_stopping_every_epoch_runs(tmp_path):
    _, summary, records = run(tmp_path, PLATEAU)
    assert len(records) == summary["runs"][0]["epochs"] == 12
    assert "stopped_early" not in summary["runs"][0]


def test_early_stopping_on_a_flat_validation_loss_stops_after_patience_epochs(registry):
    x = torch.linspace(0, 1, 4, dtype=F64)[:, None]
    t = trainer(registry, val=(x, x), epochs=10, early_stopping=2)
    assert t.fit() == "ok"
    assert t.state.epoch == 3 and t.state.stopped_early  # best at epoch 1, no better at 2 and 3


def test_early_stopping_ends_on_the_best_validation_epochs_weights(tmp_path):
    _, summary, records = run(tmp_path, PLATEAU, "train.early_stopping=3")
    (entry,) = summary["runs"]
    best = min(records, key=lambda r: r["val_loss"])
    assert entry["stopped_early"] and entry["epochs"] == len(records) > best["epoch"]
    assert entry["best_epoch"] == best["epoch"] and entry["restored_best"]
    # the final losses are those of the restored weights: the best epoch's, not the last one's
    assert entry["final_val_loss"] == best["val_loss"] != records[-1]["val_loss"]
    assert entry["final_loss"] == best["train_loss"]
    checkpoint = torch.load(tmp_path / "out" / "checkpoints" / "plateau" / "last")
    assert checkpoint["best_model"] is not None
    assert all(torch.equal(a, b) for a, b in zip(checkpoint["model"], checkpoint["best_model"]))


def test_restore_best_false_keeps_the_last_epochs_weights(tmp_path):
    _, summary, records = run(
        tmp_path, PLATEAU, "train.early_stopping=3", "train.restore_best=false"
    )
    (entry,) = summary["runs"]
    assert entry["stopped_early"] and not entry["restored_best"]
    assert entry["final_val_loss"] == records[-1]["val_loss"]


def test_a_resumed_run_still_restores_the_best_weights_seen_before_the_checkpoint(registry):
    """Best at epoch 2, checkpoint at epoch 3, stopped at epoch 4: the resumed trainer must still
    know epoch 2's weights, which only the checkpoint carries."""
    x = torch.linspace(0, 1, 4, dtype=F64)[:, None]

    def moving():
        t = trainer(registry, val=(x, -x), epochs=10, early_stopping=2, checkpoint_every=3)
        t.optimizer = registry.optimizers["sgd"](t.model.parameters(), lr=0.5)
        return t

    straight, saved = moving(), []
    assert straight.fit(on_checkpoint=lambda: saved.append(_saved(straight.state_dict()))) == "ok"
    assert straight.state.restored_best and straight.state.best_epoch < 3 < straight.state.epoch
    resumed = moving()
    resumed.load_state_dict(torch.load(saved[0]))
    assert resumed.state.epoch == 3
    assert resumed.fit() == "ok" and resumed.state.best_epoch == straight.state.best_epoch
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.model.state_dict(), straight.model.state_dict())
    )


def _saved(state: dict) -> io.BytesIO:
    """Through torch.save and back, as a checkpoint file would be."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_early_stopping_without_a_validation_split_is_a_config_error(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(TINY) + "early_stopping = 2\n")
    with pytest.raises(nnrun.ConfigError, match=r"early_stopping.*split = \{ val = 0\.1 \}"):
        nnrun.load_experiment(path)


def test_step_scheduler_halves_the_recorded_lr_every_two_epochs_like_torch(tmp_path):
    text = TINY.replace("epochs = 3", "epochs = 5") + (
        '\n[scheduler]\nname = "step"\nstep_size = 2\ngamma = 0.5\n'
    )
    _, _, records = run(tmp_path, text)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    schedule = torch.optim.lr_scheduler.StepLR(reference, step_size=2, gamma=0.5)
    expected = []
    for _ in range(5):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert [r["lr"] for r in records] == pytest.approx(expected, rel=1e-15)
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])


def test_reduce_on_plateau_follows_the_validation_loss_like_torch(tmp_path):
    text = PLATEAU + (
        '\n[scheduler]\nname = "reduce_on_plateau"\nfactor = 0.5\npatience = 0\nthreshold = 0.05\n'
    )
    _, _, records = run(tmp_path, text)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        reference, factor=0.5, patience=0, threshold=0.05
    )
    expected = []
    for record in records:
        expected.append(reference.param_groups[0]["lr"])
        schedule.step(record["val_loss"])
    assert [r["lr"] for r in records] == pytest.approx(expected, rel=1e-15)
    assert len(set(expected)) > 2  # it did react, more than once


def test_the_scheduler_is_stepped_with_the_validation_loss_when_there_is_one(registry):
    metrics = []

    def recording(optimizer):
        scheduler = registry.schedulers["constant"](optimizer)
        scheduler.step = metrics.append
        return scheduler

    x = torch.linspace(0, 1, 4, dtype=F64)[:, None]
    records = []
    trainer(registry, val=(x, 2 * x), scheduler=recording).fit(records.append)
    assert metrics == [r["val_loss"] for r in records] and len(metrics) == 3
    metrics.clear(), records.clear()
    trainer(registry, scheduler=recording).fit(records.append)
    assert metrics == [r["train_loss"] for r in records] and len(metrics) == 3


# ------------------------------------------------------------------------------------------------
# checkpoints


def test_checkpoints_every_n_epochs_and_at_the_end_with_last_pointing_to_the_newest(tmp_path):
    text = TINY.replace("epochs = 3", "epochs = 5").replace('"sgd"', '"adam"') + (
        "checkpoint_every = 2\n"
    )
    text = text.replace("momentum = 0.9", "")
    text += '\n[scheduler]\nname = "step"\nstep_size = 2\n'
    _, summary, _ = run(tmp_path, text)
    folder = tmp_path / "out" / "checkpoints" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch0002.pt",
        "epoch0004.pt",
        "epoch0005.pt",
        "last",
    ]
    assert (folder / "last").is_symlink() and (folder / "last").resolve().name == "epoch0005.pt"
    for name, epoch in [("epoch0002.pt", 2), ("epoch0004.pt", 4), ("last", 5)]:
        checkpoint = torch.load(folder / name)  # torch's default (weights_only) loader
        assert checkpoint["trainer"]["epoch"] == epoch
    assert summary["runs"][0]["epochs"] == 5


@pytest.mark.cuda
@CUDA
def test_every_train_feature_runs_on_cuda(tmp_path):
    text = TINY.replace("epochs = 3", "epochs = 4") + (
        "shuffle = true\ngrad_clip = 0.5\nearly_stopping = 10\ncheckpoint_every = 2\n"
        '\n[scheduler]\nname = "step"\nstep_size = 2\ngamma = 0.5\n'
    )
    _, summary, records = run(tmp_path, text, "data.split.val=0.25", "experiment.device=cuda")
    (entry,) = summary["runs"]
    assert entry["status"] == "ok" and entry["epochs"] == 4 and len(records) == 4
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in records)
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    checkpoint = torch.load(tmp_path / "out" / "checkpoints" / "tiny" / "last", map_location="cpu")
    assert checkpoint["trainer"]["epoch"] == 4


# ------------------------------------------------------------------------------------------------
# threads


def test_a_small_network_trains_on_one_thread_by_default_and_the_entry_says_so(tmp_path):
    _, summary, _ = run(tmp_path, TINY)
    assert summary["runs"][0]["threads"] == 1


def test_experiment_threads_is_used_for_the_run_and_undone_after_it(tmp_path):
    before = torch.get_num_threads()
    _, summary, _ = run(tmp_path, TINY, "experiment.threads=2")
    assert summary["runs"][0]["threads"] == 2
    assert torch.get_num_threads() == before


def test_a_large_network_gets_torchs_default_thread_count(tmp_path):
    from nnrun.experiment import execute

    (small,) = load(tmp_path, TINY).runs
    (large,) = load(tmp_path, TINY, "model.layers=[1, 2000, 2000, 1]", "train.batch_size=1024").runs
    assert execute.run_threads(small) == 1
    assert execute.run_threads(large) == execute._TORCH_THREADS


def test_threads_must_be_a_positive_integer(tmp_path):
    with pytest.raises(nnrun.ConfigError, match="threads"):
        load(tmp_path, TINY, "experiment.threads=0")


@pytest.mark.cuda
@CUDA
def test_a_cuda_run_keeps_every_tensor_on_the_device_through_a_checkpoint(tmp_path):
    """Weights, optimizer state and the best weights stay on cuda while training, and come back
    there from a checkpoint loaded onto the CPU (as `torch.load(map_location="cpu")` gives it)."""
    text = TINY.replace('"sgd"', '"adam"').replace("momentum = 0.9", "") + "early_stopping = 5\n"
    (config,) = load(tmp_path, text, "data.split.val=0.25", "experiment.device=cuda").runs
    registry = nnrun.load_registry()

    def make():
        from nnrun.config.components import build
        from nnrun.experiment.execute import train_settings

        data, model = make_data(config), make_model(config, registry)
        optimizer = build(registry, "optimizers", config.optimizer, model.parameters())
        loss = build(registry, "losses", config.loss)
        settings = train_settings(config.train)
        return Trainer(
            model, loss, optimizer, None, settings, data.train, data.val, torch.Generator()
        )

    def devices(t):
        tensors = [*t.model.state_dict(), *(t.best_weights or [])]
        tensors += [v for s in t.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
        return {v.device.type for v in tensors if v.dim() > 0}

    first = make()
    first.fit()
    assert devices(first) == {"cuda"}
    checkpoint = torch.load(_saved(first.state_dict()), map_location="cpu")
    second = make()
    second.load_state_dict(checkpoint)
    assert devices(second) == {"cuda"}
