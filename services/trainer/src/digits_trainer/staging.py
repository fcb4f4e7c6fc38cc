"""Staging an attempt: its dataset and checkpoint blobs fetched, the child's config written."""

from __future__ import annotations

import shutil
from pathlib import Path

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
) -> Path:
    """Fetch the dataset blobs into the cache and write the child's config file.

    The child resumes from `point` (a fetched resume point) if given, else from `snapshot`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    points = folder / "resume"
    shutil.rmtree(points, ignore_errors=True)  # an earlier attempt's, uploaded or stale
    splits = {s.split: s for s in built.splits if s.entries > 0}
    if "train" not in splits:
        raise ValueError(f"dataset {state.dataset_id} has no train images")

    spec = state.spec
    resume = None
    if point is not None:
        resume = ResumeFiles(state=str(point[0]))
        log.info("resuming", model_id=state.model_id, point_epoch=point[1].epoch)
    elif snapshot is not None and snapshot.state is not None:
        resume = ResumeFiles(
            params=str(await store.fetch(snapshot.params, cache)),
            state=str(await store.fetch(snapshot.state, cache)),
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
        train=await fetch_split(store, splits["train"], cache),
        val=await fetch_split(store, splits["val"], cache) if "val" in splits else None,
        mean=str(await store.fetch(built.mean, cache)) if spec.use_mean != "none" else None,
        devices=child_devices(lease),
        snapshot_dir=str(folder / "snapshots"),
        network=spec.custom_network if spec.method != "standard" else "",
        resume=resume,
        pretrained=await pretrained_params(store, spec, cache) if resume is None else None,
        resume_points=str(points) if settings.resume_every > 0 else "",
        resume_every=settings.resume_every,
        preload_bytes=preload_bytes(settings),
    )
    path = folder / "config.json"
    write_config(config, str(path))
    return path


async def fetch_split(store: Store, split: SplitBlobs, cache: Path) -> SplitFiles:
    """One split's shards fetched into the cache, keyed by their digests."""
    shards = [
        ShardFiles(
            rec=str(await store.fetch(shard.rec, cache)),
            idx=str(await store.fetch(shard.idx, cache)),
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
