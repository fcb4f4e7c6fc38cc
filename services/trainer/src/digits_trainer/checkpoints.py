"""Snapshots: the exported network (symbol + params) and a `.state` tar for resuming.

The `.state` file is an uncompressed tar of two members: `trainer.states` (MXNet's
`Trainer.save_states`: optimizer state such as momentum) and `checkpoint.json` (the sidecar
below: config, epoch, iteration, seed and the latest metrics).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import msgspec
from mxnet import gluon

from digits_proto.models import TrainSpec
from digits_trainer.reports import SnapshotReport

STATES_MEMBER = "trainer.states"
SIDECAR_MEMBER = "checkpoint.json"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a snapshot says about the training that produced it."""

    version: int = 1
    model_id: str
    dataset_id: str
    spec: TrainSpec
    epoch: float
    iteration: int
    max_iteration: int
    seed: int
    input_shape: list[int]
    metrics: dict[str, float] = {}


def save_snapshot(
    net: gluon.HybridBlock, trainer: gluon.Trainer, folder: str | Path, checkpoint: Checkpoint
) -> SnapshotReport:
    """Write one snapshot's three files under `folder/<epoch>/` and describe them."""
    out = Path(folder) / f"{checkpoint.epoch:g}"
    out.mkdir(parents=True, exist_ok=True)
    net.export(str(out / "net"), epoch=0)  # epoch only names the file; ours is in the folder
    trainer.save_states(str(out / STATES_MEMBER))
    (out / SIDECAR_MEMBER).write_bytes(msgspec.json.encode(checkpoint))
    state = out / "snapshot.state"
    with tarfile.open(state, "w") as tar:
        tar.add(out / STATES_MEMBER, arcname=STATES_MEMBER)
        tar.add(out / SIDECAR_MEMBER, arcname=SIDECAR_MEMBER)
    return SnapshotReport(
        epoch=checkpoint.epoch,
        symbol=str(out / "net-symbol.json"),
        params=str(out / "net-0000.params"),
        state=str(state),
        input_shape=checkpoint.input_shape,
    )


def read_checkpoint(state_file: str | Path) -> tuple[Checkpoint, bytes]:
    """The sidecar and the optimizer-state bytes of a `.state` file (for a later resume)."""
    with tarfile.open(state_file, "r") as tar:
        sidecar = tar.extractfile(SIDECAR_MEMBER)
        states = tar.extractfile(STATES_MEMBER)
        assert sidecar is not None and states is not None
        return msgspec.json.decode(sidecar.read(), type=Checkpoint), states.read()
