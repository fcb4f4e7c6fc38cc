"""The config file a training child is started with: the spec plus local paths, no NATS."""

from __future__ import annotations

import msgspec

from digits_proto.models import TrainSpec


class SplitFiles(msgspec.Struct, frozen=True, kw_only=True):
    """One split's RecordIO pair on the local disk."""

    rec: str
    idx: str


class ResumeFiles(msgspec.Struct, frozen=True, kw_only=True):
    """The last snapshot of an earlier attempt: weights and the `.state` tar."""

    params: str
    state: str


class ChildConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `digits_trainer.child` needs to train one job, written as JSON."""

    model_id: str
    dataset_id: str
    spec: TrainSpec
    classes: int
    channels: int
    height: int
    width: int
    encoding: str
    train: SplitFiles
    val: SplitFiles | None = None
    mean: str | None = None  # mean.npy, float32 C×H×W
    devices: list[str] = []  # "cpu", "cpu:<i>" or "gpu:<index>", from the lease
    snapshot_dir: str = "snapshots"
    log_every: int = 0  # batches between log lines; 0 = about 8 per epoch (DIGITS's display)
    network: str = ""  # Gluon source defining build_network(classes, input_shape)
    resume: ResumeFiles | None = None  # continue an earlier attempt from its last snapshot
    pretrained: str | None = None  # params file to fine-tune from (method "previous")


def write_config(config: ChildConfig, path: str) -> None:
    """Write the config file the child reads."""
    with open(path, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(config)))


def read_config(path: str) -> ChildConfig:
    """Read a child's config file."""
    with open(path, "rb") as f:
        return msgspec.json.decode(f.read(), type=ChildConfig)
