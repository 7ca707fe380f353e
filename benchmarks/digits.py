"""The external yardstick: examples/digits.toml trained by nnrun and by scikit-learn's
MLPClassifier of the same shape, side by side in one process: same split (nnrun's stratified
70/10/20 split of the same seed, standardized on the training split), 64-128-10 ReLU, Adam with
the same learning rate, batch size and number of epochs, no weight decay. Prints the test
accuracy and the training time of each, medians over repeats, both on one thread.

    python benchmarks/digits.py                 # 3 repeats
    python benchmarks/digits.py --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import nnrun
from nnrun.experiment.assemble import make_data, make_model, shuffle_generator
from nnrun.experiment.execute import train_settings
from nnrun.experiment.train import Trainer
from nnrun.factory import build

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"


def nnrun_fit(config, registry, data) -> tuple[float, float]:
    """(test accuracy, training seconds) of the example's run as nnrun trains it."""
    model = make_model(config, registry)
    optimizer = build(registry, "optimizers", config.optimizer, model.parameters())
    trainer = Trainer(
        model,
        build(registry, "losses", config.loss),
        optimizer,
        None,
        train_settings(config.train),
        data.train,
        data.val,
        shuffle_generator(config),
        metrics={"accuracy": registry.metrics["accuracy"]()},
    )
    started = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - started
    return trainer.score(model.forward(data.test[0]), data.test[1])["accuracy"], seconds


def sklearn_fit(config, data, seed: int) -> tuple[float, float]:
    """(test accuracy, training seconds) of MLPClassifier with the same shape and settings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    train, hidden = config.train, config.model.layers[1:-1]
    classifier = MLPClassifier(
        hidden_layer_sizes=tuple(hidden),
        activation="relu",
        solver="adam",
        alpha=0.0,  # nnrun's Adam has no weight decay here
        batch_size=train.batch_size,
        learning_rate_init=config.optimizer.params["lr"],
        max_iter=train.epochs,  # epochs, for adam
        shuffle=train.shuffle,
        tol=0.0,
        n_iter_no_change=train.epochs + 1,  # every epoch runs, as in nnrun
        random_state=seed,
    )
    x, y = (t.numpy() for t in data.train)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it ran max_iter epochs, as asked
        classifier.fit(x, y)
    seconds = time.perf_counter() - started
    accuracy = float(classifier.score(data.test[0].numpy(), data.test[1].numpy()))
    return accuracy, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import sklearn
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    registry = nnrun.load_registry()
    (config,) = nnrun.load_experiment(EXAMPLE).runs
    data = make_data(config, registry)
    sizes = [len(part[0]) for part in (data.train, data.val, data.test)]
    ours, theirs = [], []
    with threadpool_limits(1):  # numpy's BLAS on one thread too
        for repeat in range(args.repeats):
            ours.append(nnrun_fit(config, registry, data))
            theirs.append(sklearn_fit(config, data, seed=repeat))
    print(
        f"nnrun {nnrun.__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"python {sys.version.split()[0]}, {platform.machine()}, 1 thread; "
        f"median of {args.repeats} repeats"
    )
    print(
        f"digits: {sizes[0]} train / {sizes[1]} val / {sizes[2]} test samples, "
        f"layers {config.model.layers}, adam lr {config.optimizer.params['lr']}, "
        f"batch {config.train.batch_size}, {config.train.epochs} epochs"
    )
    print(f"{'':22}{'test accuracy':>15}{'train seconds':>15}")
    for name, results in (("nnrun", ours), ("sklearn MLPClassifier", theirs)):
        accuracy = statistics.median(a for a, _ in results)
        seconds = statistics.median(s for _, s in results)
        print(f"{name:22}{accuracy:>15.4f}{seconds:>15.2f}")
    print(
        f"nnrun / sklearn time: {statistics.median(s for _, s in ours) / statistics.median(s for _, s in theirs):.2f}"
    )


if __name__ == "__main__":
    main()
