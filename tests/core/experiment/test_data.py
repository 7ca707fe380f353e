"""Data from a target function, its splits and its batches: reproducible from a seed, and complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nnrun.experiment import data
from nnrun.experiment.data import SPLIT_CHUNK, minibatches, split


def function_dataset(fn, n, low, high, noise, generator, dtype=torch.float32, device="cpu"):
    """One input and one output: `fn` of the (n,) column, the data on `device`."""
    x, y = data.function_dataset([lambda x: fn(x[:, 0])], n, [(low, high)], noise, generator, dtype)
    return x.to(device), y.to(device)


def split_dataset(x, y, val, generator):
    parts = split(x, y, {"val": val}, generator)
    return (*parts["train"], *parts["val"])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def square(x: torch.Tensor) -> torch.Tensor:
    return x**2


def zero(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def numbered(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x = sample number, y = 10·x: a pair that stays matched through any permutation."""
    x = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    return x, 10 * x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dataset_has_n_rows_of_one_column_in_the_requested_dtype(dtype):
    x, y = function_dataset(square, 50, -1.0, 1.0, 0.1, gen(), dtype=dtype)
    assert x.shape == y.shape == (50, 1)
    assert x.dtype == y.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_x_lies_in_the_half_open_range(dtype):
    # bfloat16 keeps 8 bits: without care, about 1 in 500 draws in [0, 1) rounds up to 1 itself.
    x, _ = function_dataset(square, 5000, 0.0, 1.0, 0.0, gen(), dtype=dtype)
    assert x.min() >= 0 and x.max() < 1
    x, _ = function_dataset(square, 5000, -3.0, 2.0, 0.0, gen(), dtype=dtype)
    assert x.min() >= -3 and x.max() < 2
    assert x.min() < -2.9 and x.max() > 1.9  # and it fills the range


def test_noise_is_drawn_independently_for_every_point():
    _, y = function_dataset(zero, 20_000, -1.0, 1.0, 0.5, gen(), dtype=torch.float64)
    # One shared noise value (the original exercise's bug) would make every y equal.
    assert y.unique().numel() == y.numel()
    # std of the sample std is 0.5/√(2·20000) ≈ 0.0025 and of the mean 0.5/√20000 ≈ 0.0035:
    # the bounds below are about 6 standard errors wide.
    assert abs(y.std().item() - 0.5) < 0.015
    assert abs(y.mean().item()) < 0.02
    # Neighbouring points are uncorrelated.
    assert abs(torch.corrcoef(torch.stack([y[:-1, 0], y[1:, 0]]))[0, 1].item()) < 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_free_data_lies_on_the_target(dtype):
    x, y = function_dataset(square, 100, -2.0, 2.0, 0.0, gen(), dtype=dtype)
    assert torch.equal(y, (x.double() ** 2).to(dtype))


def test_same_seed_gives_bit_identical_data():
    first = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7))
    second = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7))
    other = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(8))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[1], other[1])


def test_same_seed_gives_the_same_x_in_every_dtype():
    x32, _ = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7), dtype=torch.float32)
    x64, _ = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7), dtype=torch.float64)
    assert torch.equal(x32, x64.float())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_seed_gives_the_same_data_on_cuda():
    on_cpu = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7))
    on_cuda = function_dataset(square, 300, -1.0, 1.0, 0.2, gen(7), device="cuda")
    assert all(t.device.type == "cuda" for t in on_cuda)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu, on_cuda))


@pytest.mark.parametrize(
    "n,low,high,noise,message",
    [
        (0, 0.0, 1.0, 0.1, "Invalid number of samples: 0"),
        (10, 1.0, 1.0, 0.1, "Invalid range"),
        (10, 0.0, float("inf"), 0.1, "Invalid range"),
        (10, 0.0, 1.0, -0.1, "Invalid noise: -0.1"),
        (10, 0.0, 1.0, float("nan"), "Invalid noise"),
    ],
)
def test_invalid_dataset_arguments_are_refused(n, low, high, noise, message):
    with pytest.raises(ValueError, match=message):
        function_dataset(square, n, low, high, noise, gen())


def test_target_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        function_dataset(lambda x: x.sum(), 10, 0.0, 1.0, 0.1, gen())


@pytest.mark.parametrize(
    "n,val,sizes",
    [
        (10, 0.2, (8, 2)),
        (10, 0.25, (7, 3)),  # 2.5 rounds half up
        (100, 0.001, (99, 1)),  # a positive share gets at least one sample
        (2, 0.9, (1, 1)),  # and training keeps at least one
        (10, 0.0, (10, 0)),
    ],
)
def test_validation_share_sizes(n, val, sizes):
    x_train, y_train, x_val, y_val = split_dataset(*numbered(n), val, gen())
    assert (len(x_train), len(x_val)) == sizes
    assert len(y_train) == len(x_train) and len(y_val) == len(x_val)


@pytest.mark.parametrize("n,val", [(50, 0.3), (7, 0.5), (2, 0.9), (5, 0.0)])
def test_split_parts_are_disjoint_cover_the_data_and_keep_pairs(n, val):
    x_train, y_train, x_val, y_val = split_dataset(*numbered(n), val, gen())
    assert torch.equal(y_train, 10 * x_train) and torch.equal(y_val, 10 * x_val)
    ids = torch.cat([x_train, x_val]).flatten()
    assert torch.equal(ids.sort().values, torch.arange(n, dtype=torch.float64))


def test_split_is_seeded():
    x, y = numbered(100)
    first, second, other = (split_dataset(x, y, 0.2, gen(s)) for s in (1, 1, 2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[2], other[2])


def test_adding_a_test_share_after_val_keeps_val():
    x, y = numbered(100)
    two = split(x, y, {"val": 0.2}, gen())
    three = split(x, y, {"val": 0.2, "test": 0.1}, gen())
    assert list(three) == ["train", "val", "test"]
    assert [len(part[0]) for part in three.values()] == [70, 20, 10]
    assert torch.equal(two["val"][0], three["val"][0])
    ids = torch.cat([part[0] for part in three.values()]).flatten()
    assert torch.equal(ids.sort().values, torch.arange(100, dtype=torch.float64))


@pytest.mark.parametrize(
    "n,shares,message",
    [
        (10, {"train": 0.5}, "train"),
        (10, {"val": 1.0}, "Invalid val share: 1.0"),
        (10, {"val": -0.1}, "Invalid val share"),
        (10, {"val": 0.6, "test": 0.4}, "leave nothing for training"),
        (2, {"val": 0.1, "test": 0.1}, "too few"),  # one each for val and test, none to train
        (1, {"val": 0.5}, "too few"),
        (0, {"val": 0.5}, "empty"),
    ],
)
def test_invalid_shares_are_refused(n, shares, message):
    with pytest.raises(ValueError, match=message):
        split(*numbered(n), shares, gen())


def test_split_refuses_x_and_y_of_different_lengths():
    with pytest.raises(ValueError, match="different numbers of samples"):
        split_dataset(torch.zeros(5, 1), torch.zeros(4, 1), 0.2, gen())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_split_keeps_cuda_data_on_cuda():
    x, y = (t.cuda() for t in numbered(20))
    parts = split_dataset(x, y, 0.2, gen())
    assert all(t.device == x.device for t in parts)


def test_unshuffled_minibatches_are_consecutive_slices_in_order():
    x, y = numbered(10)
    got = [xb[:, 0].tolist() for xb, _ in minibatches(x, y, 3, shuffle=False, generator=None)]
    assert got == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0]]


@pytest.mark.parametrize("n,batch_size", [(10, 1), (10, 3), (10, 10), (10, 64), (2000, 32)])
def test_shuffled_minibatches_visit_every_sample_once_per_epoch_with_its_target(n, batch_size):
    x, y = numbered(n)
    g = gen()
    for _ in range(2):
        got = list(minibatches(x, y, batch_size, shuffle=True, generator=g))
        assert [len(xb) for xb, _ in got[:-1]] == [batch_size] * (len(got) - 1)
        xs = torch.cat([xb for xb, _ in got])
        assert torch.equal(xs[:, 0].sort().values, x[:, 0])
        assert torch.equal(torch.cat([yb for _, yb in got]), 10 * xs)


def test_shuffle_is_reproducible_from_the_generator_and_changes_between_epochs():
    x, y = numbered(100)

    def epoch(g):
        return torch.cat([xb for xb, _ in minibatches(x, y, 7, True, g)])

    g1, g2 = gen(3), gen(3)
    epoch1 = epoch(g1)
    assert torch.equal(epoch1, epoch(g2))
    epoch2 = epoch(g1)
    assert not torch.equal(epoch1, epoch2)
    assert not torch.equal(epoch1, x)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_minibatches_continue_across_split_chunks(batch_size):
    n = SPLIT_CHUNK * batch_size * 2 + 5  # two whole chunks and a short one, last batch short
    x, y = numbered(n)
    got = list(minibatches(x, y, batch_size, shuffle=False, generator=None))
    expected = [(x[s : s + batch_size], y[s : s + batch_size]) for s in range(0, n, batch_size)]
    assert len(got) == len(expected)
    for (xb, yb), (xe, ye) in zip(got, expected, strict=True):
        assert torch.equal(xb, xe) and torch.equal(yb, ye)
        assert xb.data_ptr() == xe.data_ptr() and yb.data_ptr() == ye.data_ptr()


def test_unshuffled_minibatches_are_views_not_copies():
    x, y = numbered(10)
    for xb, yb in minibatches(x, y, 4, False, None):
        assert xb.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert yb.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0, "shuffle": False, "generator": None}, "Invalid batch size: 0"),
        ({"batch_size": 4, "shuffle": True, "generator": None}, "needs a torch.Generator"),
    ],
)
def test_invalid_batching_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        list(minibatches(*numbered(10), **kwargs))


# ---------------------------------------------------------------- stratified splits


@pytest.mark.parametrize(
    "counts, shares",
    [
        ([50, 50, 50], {"val": 0.2, "test": 0.2}),
        ([90, 9, 1], {"val": 0.1}),  # a rare class keeps its one sample for training
        ([7, 13, 31, 2], {"val": 0.15, "test": 0.3}),
    ],
)
def test_a_stratified_split_gives_each_class_its_share_within_one_sample(counts, shares):
    labels = torch.cat([torch.full((c,), i) for i, c in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=gen(5))]
    parts = data.split_indices(len(labels), shares, gen(), labels)
    for name, share in shares.items():
        got = torch.bincount(labels[parts[name]], minlength=len(counts)).tolist()
        for have, count in zip(got, counts):
            assert abs(have - share * count) <= 1, (name, got, counts)
    train = torch.bincount(labels[parts["train"]], minlength=len(counts))
    assert (train >= 1).all()  # every class is seen in training
    everything = torch.cat(list(parts.values()))
    assert torch.equal(everything.sort().values, torch.arange(len(labels)))


def test_a_stratified_split_is_seeded_and_mixes_the_classes():
    labels = torch.arange(200) % 4
    first = data.split_indices(200, {"val": 0.25}, gen(1), labels)
    again = data.split_indices(200, {"val": 0.25}, gen(1), labels)
    other = data.split_indices(200, {"val": 0.25}, gen(2), labels)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["val"], other["val"])
    assert len(set(labels[first["val"][:8]].tolist())) > 1  # not one class after another


def test_a_stratified_split_too_small_for_a_part_is_refused():
    with pytest.raises(ValueError, match="too few to give val one sample of a class"):
        data.split_indices(3, {"val": 0.1}, gen(), torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------- standardization


def test_standardization_matches_sklearns_standard_scaler():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = torch.randn(300, 4, generator=gen(), dtype=torch.float64) * torch.tensor([1, 5, 0.1, 2])
    x[:, 3] = 7.0  # a constant input: sklearn, like nnrun, keeps its scale 1
    scaler = preprocessing.StandardScaler().fit(x.numpy())
    ours = data.Standardization.fit(x)
    np.testing.assert_allclose(ours.mean.numpy(), scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.std.numpy(), scaler.scale_, rtol=1e-12)
    np.testing.assert_allclose(ours.apply(x).numpy(), scaler.transform(x.numpy()), atol=1e-12)


def test_standardization_survives_plain_json():
    x = torch.randn(50, 3, generator=gen(), dtype=torch.float64)
    fitted = data.Standardization.fit(x)
    again = data.Standardization.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert torch.equal(again.apply(x.float()), fitted.apply(x.float()))
    with pytest.raises(ValueError, match="positive std"):
        data.Standardization.from_dict({"mean": [0.0], "std": [0.0]})


STANDARDIZED = """\
[experiment]
name = "scaled"
seed = 4

[data]
kind = "function"
inputs = 2
expr = "x0 + x1"
range = [[10.0, 20.0], [-1.0, 1.0]]
n = 200
split = { val = 0.3, test = 0.2 }
standardize = true

[model]
layers = [2, 4, 1]

[optimizer]
name = "sgd"
lr = 0.01

[train]
epochs = 1
"""


def test_make_data_standardizes_with_the_training_split_alone(tmp_path):
    from nnrun.config import load_experiment
    from nnrun.experiment.assemble import make_data

    path = tmp_path / "experiment.toml"
    path.write_text(STANDARDIZED)
    (run,) = load_experiment(path).runs
    scaled = make_data(run)
    raw = make_data(
        run.model_copy(update={"data": run.data.model_copy(update={"standardize": False})})
    )
    assert [len(p[0]) for p in (scaled.train, scaled.val, scaled.test)] == [100, 60, 40]
    x_train = raw.train[0].double()
    torch.testing.assert_close(scaled.standardization.mean, x_train.mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        scaled.standardization.std, x_train.std(0, correction=0), rtol=1e-12, atol=0
    )
    mean, std = x_train.mean(0), x_train.std(0, correction=0)
    for part_scaled, part_raw in zip((scaled.val, scaled.test), (raw.val, raw.test)):
        expected = ((part_raw[0].double() - mean) / std).float()
        torch.testing.assert_close(part_scaled[0], expected, rtol=1e-6, atol=1e-6)
        assert torch.equal(part_scaled[1], part_raw[1])  # targets are never scaled
    # the training split is exactly standard; the held-out parts are not (no leak from them)
    train_mean = scaled.train[0].double().mean(0)
    torch.testing.assert_close(train_mean, torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert scaled.metadata()["standardization"] == scaled.standardization.to_dict()
    assert scaled.metadata()["samples"] == {"train": 100, "val": 60, "test": 40}
