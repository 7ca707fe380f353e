#!/usr/bin/env bash
# The checks that need a GPU, in one go and under 5 minutes, each step with its own timeout:
#   1. the CUDA tests (`pytest -m cuda`: every test that is skipped without a CUDA device);
#   2. a training run with [experiment] device = "cuda" counted for host synchronisations per
#      step (torch's sync debug mode warns at each one; metrics should be read once per epoch);
#   3. the benchmark suite on the GPU, its table written as Markdown.
# Run from the repository root in an environment with nnrun installed and a CUDA build of torch:
#     bash benchmarks/gpu_check.sh [OUT_DIR]          # OUT_DIR defaults to $OUT, else gpu-check/
# Prepared but not yet run: no GPU has been available to this project so far (README).
set -uo pipefail
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
status=0

step() {  # step NAME SECONDS COMMAND...: run, log to $out/NAME.log, remember a failure
    local name=$1 seconds=$2
    shift 2
    echo "== $name (at most ${seconds}s)"
    local started=$SECONDS
    timeout --kill-after=10 "$seconds" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - started))s; tail of $out/$name.log:"
    tail -n 5 "$out/$name.log" | sed 's/^/   /'
    [ "$rc" -eq 0 ] || status=1
}

step device 30 python -c "
import torch
assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no CUDA device'
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))
"
[ "$status" -eq 0 ] || { echo "no usable CUDA device: stopping"; exit 1; }

step cuda-tests 120 python -m pytest -m cuda -q -n 0 -p no:cacheprovider

step syncs-per-step 90 python - <<'EOF'
"""Count host synchronisations in one epoch of each x_squared run on CUDA (2000 steps)."""
import dataclasses
import os
import warnings

import torch

import nnrun
from nnrun.experiment.assemble import make_data, make_model, shuffle_generator
from nnrun.experiment.execute import train_settings
from nnrun.experiment.train import Trainer
from nnrun.factory import build

device = os.environ.get("DEVICE", "cuda")
registry = nnrun.load_registry()
overrides = [f"experiment.device={device}", "train.epochs=1", "train.shuffle=true"]
for run in nnrun.load_experiment("examples/x_squared.toml", overrides).runs:
    data = make_data(run, registry)
    model = make_model(run, registry)
    optimizer = build(registry, "optimizers", run.optimizer, model.parameters())
    settings = train_settings(run.train)
    trainer = Trainer(
        model, build(registry, "losses", run.loss), optimizer, None, settings,
        data.train, data.val, shuffle_generator(run),
    )
    trainer.fit()  # a warm-up epoch: allocation, kernel selection
    trainer.settings = dataclasses.replace(settings, epochs=2)
    if device != "cpu":
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()  # one more epoch, counted
    if device != "cpu":
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    places = sorted({f"{w.filename}:{w.lineno}" for w in syncs})
    print(f"{run.name}: {len(syncs)} synchronisations in one epoch of "
          f"{trainer.steps_per_epoch} steps, at {places}")
EOF

step benchmarks 240 python -m benchmarks --device cuda --repeats 7 --markdown
cp "$out/benchmarks.log" "$out/benchmarks-cuda.md" 2>/dev/null

echo "== done: exit $status; logs in $out/"
exit "$status"
