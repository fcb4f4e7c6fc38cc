"""The config file a training child is started with: the spec plus local paths, no NATS."""

from __future__ import annotations

import msgspec

from digits_proto.models import TrainSpec


class ShardFiles(msgspec.Struct, frozen=True, kw_only=True):
    """One RecordIO pair of a split on the local disk, and how many records it holds."""

    rec: str
    idx: str
    entries: int = 0


class SplitFiles(msgspec.Struct, frozen=True, kw_only=True):
    """One split's RecordIO files on the local disk: `rec`/`idx` (the first shard, or the only
    pair), and every shard in record order when the split has several."""

    rec: str
    idx: str
    # The blobs' content (every shard's digests): the decoded split is cached under it;
    # "" = no cache.
    key: str = ""
    entries: int = 0  # records of the whole split; 0 = count them from the .idx files
    shards: list[ShardFiles] = []

    def all_shards(self) -> list[ShardFiles]:
        """Every shard in order (the single pair when `shards` is empty)."""
        return list(self.shards) or [ShardFiles(rec=self.rec, idx=self.idx, entries=self.entries)]


class ResumeFiles(msgspec.Struct, frozen=True, kw_only=True):
    """Where an earlier attempt left off: a snapshot's weights and `.state` tar, or a resume
    point (`state` only: its tar holds the weights too)."""

    state: str
    params: str = ""


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
    resume_points: str = ""  # folder for resume points between snapshots; "" = none
    resume_every: float = 2.0  # at least this many seconds between resume points
    # Splits whose decoded pixels together pass this many bytes are read from disk batch by
    # batch instead of preloaded; 0 = always preload.
    preload_bytes: int = 0


def write_config(config: ChildConfig, path: str) -> None:
    """Write the config file the child reads."""
    with open(path, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(config)))


def read_config(path: str) -> ChildConfig:
    """Read a child's config file."""
    with open(path, "rb") as f:
        return msgspec.json.decode(f.read(), type=ChildConfig)
