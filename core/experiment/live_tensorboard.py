"""`[report] tensorboard = true`: each epoch's record also written as TensorBoard scalars in
`tensorboard/<run>/` of the run directory, so a long sweep can be watched with
`tensorboard --logdir RUN_DIR/tensorboard` while it runs. Off, it costs one test per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnrun.experiment.export_tensorboard import scalars, summary_writer
from nnrun.names import slug

#: The folder of a run directory that holds the live event files.
FOLDER = "tensorboard"


class LiveScalars:
    """One run's event writer. On resume, events at or after the epoch resumed from are dropped
    (`purge_step`), so epochs run again are not drawn twice."""

    def __init__(self, run_dir: Path, run: str, resumed_at: int):
        folder = Path(run_dir) / FOLDER / slug(run)
        self.writer = summary_writer(folder, purge_step=resumed_at + 1 if resumed_at else None)

    def epoch(self, record: dict[str, Any]) -> None:
        scalars(self.writer, record)
        self.writer.flush()  # the point is to watch it live

    def close(self) -> None:
        self.writer.close()
