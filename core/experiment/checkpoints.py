"""Checkpoint files read back as untrusted input: loaded with `weights_only=True` and checked to
hold a training state, so a crafted or damaged file is an error, never code that runs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nnrun.experiment.safefiles import RunDirectoryError, is_plain_file, open_nofollow

#: What `save_checkpoint` names a checkpoint: the epochs done, and the step in the next one.
CHECKPOINT_NAME = re.compile(r"epoch(\d+)(?:-step(\d+))?\.pt")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint loaded with `weights_only=True`: tensors and plain containers only, so a
    crafted file cannot run code while it loads."""
    import torch

    try:
        with os.fdopen(open_nofollow(path, os.O_RDONLY), "rb") as stream:
            checkpoint = torch.load(stream, map_location="cpu", weights_only=True)
    except RunDirectoryError:
        raise
    except Exception as error:
        raise RunDirectoryError(
            f"{path}: damaged or not written by nnrun: it does not load as a checkpoint of "
            f"tensors and plain data ({type(error).__name__})"
        ) from None
    if not _is_checkpoint_state(checkpoint):
        raise RunDirectoryError(f"{path}: not an nnrun checkpoint (it lacks the training state)")
    return checkpoint


def _is_checkpoint_state(checkpoint: Any) -> bool:
    import torch

    if not (
        isinstance(checkpoint, dict) and {"model", "optimizer", "generator"} <= set(checkpoint)
    ):
        return False
    trainer = checkpoint.get("trainer")
    return (
        isinstance(checkpoint["generator"], torch.Tensor)
        and isinstance(trainer, dict)
        and all(isinstance(trainer.get(key), int) for key in ("epoch", "step"))
    )


def earlier_checkpoints(path: Path) -> list[Path]:
    """The checkpoints written before `path` in its folder, newest first."""

    def position(name: str) -> tuple[int, int]:
        match = CHECKPOINT_NAME.fullmatch(name)
        assert match is not None
        return int(match[1]), int(match[2] or 0)

    newest = position(path.name)
    earlier = [
        p
        for p in path.parent.iterdir()
        if CHECKPOINT_NAME.fullmatch(p.name) and is_plain_file(p) and position(p.name) < newest
    ]
    return sorted(earlier, key=lambda p: position(p.name), reverse=True)
