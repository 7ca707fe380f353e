import nnrun_signum

import nnrun

EXPERIMENT = """
[experiment]
name = "signum"

[data]
expr = "x**2"
n = 32

[model]
layers = [1, 8, 1]

[optimizer]
name = "signum"
lr = 0.01

[train]
epochs = 3
batch_size = 8
"""


def test_signum_trains_a_network(nnrun_builtins_host, tmp_path):
    nnrun_builtins_host.register(nnrun_signum)  # beside the built-ins the experiment uses
    registry = nnrun.load_registry(nnrun_builtins_host)
    (tmp_path / "signum.toml").write_text(EXPERIMENT)
    experiment = nnrun.load_experiment(tmp_path / "signum.toml", registry=registry)
    summary = nnrun.run_experiment(experiment, tmp_path / "run", registry=registry)
    assert summary["runs"][0]["status"] == "ok"
