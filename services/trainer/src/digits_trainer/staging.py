"""Staging an attempt: its dataset and checkpoint blobs fetched, the child's config written.

The job's folder is the child's world: `config.json`, `inputs/` (the fetched blobs, linked
from the cache when the child is confined: it sees nothing else of the data directory) and
`work/`, the only folder the child may write (snapshots, resume points). The config names them
relative to the folder, the child's working folder inside the sandbox (`/job`) or out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import msgspec
import structlog

from digits_proto.datasets import DatasetBuilt, SplitBlobs
from digits_proto.gpus import LeaseAccepted
from digits_proto.models import SnapshotSaved, TrainSpec
from digits_trainer.config import (
    ChildConfig,
    ResumeFiles,
    ShardFiles,
    SplitFiles,
    write_config,
)
from digits_trainer.confine import WORK, Confiner, remove_tree
from digits_trainer.domain import ModelState
from digits_trainer.process import child_devices
from digits_trainer.resumepoints import Position
from digits_trainer.settings import Settings, preload_bytes
from digits_trainer.store import Store

log = structlog.get_logger(__name__)


async def prepare(
    store: Store,
    settings: Settings,
    state: ModelState,
    built: DatasetBuilt,
    lease: LeaseAccepted,
    *,
    folder: Path,
    cache: Path,
    point: tuple[Path, Position] | None,
    snapshot: SnapshotSaved | None,
    confiner: Confiner | None = None,
) -> Path:
    """Fetch the dataset blobs into the cache and write the child's config file.

    The child resumes from `point` (a fetched resume point) if given, else from `snapshot`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    remove_tree(folder / "resume")  # an older layout's
    if confiner is not None:
        confiner.prepare(folder)  # a fresh work/: an earlier attempt's is uploaded or stale
    else:
        remove_tree(folder / WORK)
        (folder / WORK).mkdir()
    points = Path(WORK) / "resume"
    inputs = Inputs(folder, confiner if confiner is not None and confiner.on else None)
    splits = {s.split: s for s in built.splits if s.entries > 0}
    if "train" not in splits:
        raise ValueError(f"dataset {state.dataset_id} has no train images")

    spec = with_snapshot_keep(state.spec, settings.snapshot_keep)
    resume = None
    if point is not None:
        resume = ResumeFiles(state=inputs.add(point[0]))
        log.info("resuming", model_id=state.model_id, point_epoch=point[1].epoch)
    elif snapshot is not None and snapshot.state is not None:
        resume = ResumeFiles(
            params=inputs.add(await store.fetch(snapshot.params, cache)),
            state=inputs.add(await store.fetch(snapshot.state, cache)),
        )
        log.info("resuming", model_id=state.model_id, epoch=snapshot.epoch)
    config = ChildConfig(
        model_id=state.model_id,
        dataset_id=state.dataset_id,
        spec=spec,
        classes=len(built.labels),
        channels=built.image_channels,
        height=built.image_height,
        width=built.image_width,
        encoding=built.encoding,
        train=await fetch_split(store, splits["train"], cache, inputs),
        val=await fetch_split(store, splits["val"], cache, inputs) if "val" in splits else None,
        mean=inputs.add(await store.fetch(built.mean, cache)) if spec.use_mean != "none" else None,
        devices=child_devices(lease),
        snapshot_dir=str(Path(WORK) / "snapshots"),
        network=spec.custom_network if spec.method != "standard" else "",
        resume=resume,
        pretrained=(
            inputs.add(p)
            if resume is None and (p := await pretrained_params(store, spec, cache))
            else None
        ),
        resume_points=str(points) if settings.resume_every > 0 else "",
        resume_every=settings.resume_every,
        preload_bytes=preload_bytes(settings),
    )
    path = folder / "config.json"
    write_config(config, str(path))
    if inputs.confiner is not None:
        inputs.confiner.share(path)
    return path


class Inputs:
    """The files a child reads. Confined: hard links (copies across file systems) in the
    folder's `inputs/`, readable by the child, named relative to the folder; unconfined: the
    cache's own paths (its decoded-split cache then serves every job)."""

    def __init__(self, folder: Path, confiner: Confiner | None) -> None:
        self.folder = folder
        self.confiner = confiner
        self.dir = folder / "inputs"
        remove_tree(self.dir)  # an earlier attempt's (and whatever else is there)
        if confiner is not None:
            self.dir.mkdir(mode=0o750)
            confiner.share(self.dir)

    def add(self, path: Path | str) -> str:
        """The name the child opens `path` by."""
        path = Path(path)
        if self.confiner is None:
            return str(path)
        target = self.dir / f"{path.parent.name}-{path.name}"  # cache/blobs/<key>/<name>
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:  # another file system
                shutil.copyfile(path, target)
            self.confiner.share(target)
        return str(target.relative_to(self.folder))


async def fetch_split(store: Store, split: SplitBlobs, cache: Path, inputs: Inputs) -> SplitFiles:
    """One split's shards fetched into the cache, keyed by their digests."""
    shards = [
        ShardFiles(
            rec=inputs.add(await store.fetch(shard.rec, cache)),
            idx=inputs.add(await store.fetch(shard.idx, cache)),
            entries=shard.entries,
        )
        for shard in split.all_shards()
    ]
    first = shards[0]
    digests = [f"{s.rec.digest}|{s.idx.digest}" for s in split.all_shards()]
    return SplitFiles(
        rec=first.rec,
        idx=first.idx,
        key=",".join(digests),
        entries=split.entries,
        shards=shards,
    )


async def pretrained_params(store: Store, spec: TrainSpec, cache: Path) -> str | None:
    """The params file of the previous job's (or pretrained model's) snapshot to fine-tune
    from (method previous or pretrained)."""
    if spec.method not in ("previous", "pretrained"):
        return None
    snapshot = await store.start_snapshot(spec.previous_network, spec.previous_snapshot)
    return str(await store.fetch(snapshot.params, cache))


def with_snapshot_keep(spec: TrainSpec, default: int) -> TrainSpec:
    """The spec with the trainer's retention where the job left it to the server (0)."""
    if spec.snapshot_keep > 0 or default <= 0:
        return spec
    return msgspec.structs.replace(spec, snapshot_keep=default)
