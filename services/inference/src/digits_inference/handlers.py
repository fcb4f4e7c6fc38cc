"""Command handlers: classify one image with a model's snapshot."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
from mxnet.base import MXNetError
from nats.js import JetStreamContext
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_imaging import ImageLoadError
from digits_inference import errors
from digits_inference.domain import DatasetView, Plan, choose_snapshot, plan_classification
from digits_inference.predictor import Predictor, top_k
from digits_inference.registry import Registry
from digits_proto import subjects
from digits_proto.inference import Classified, ClassifyOne
from digits_proto.runtime import Metrics, fetch

log = structlog.get_logger(__name__)

# A job id becomes a subject token: anything else (dots, wildcards, spaces) names no job.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Deps:
    """What the handlers need, passed explicitly."""

    js: JetStreamContext
    registry: Registry
    predictor: Predictor
    metrics: Metrics
    cache_dir: Path
    max_image_bytes: int


async def classify_one(deps: Deps, cmd: ClassifyOne) -> Classified:
    """Classify one image; refusals name the field at fault (job_id, snapshot_epoch, image_file)."""
    if cmd.top_k < 1:
        raise errors.BadTopK(cmd.top_k)
    plan = await _plan(deps, cmd.job_id, cmd.snapshot_epoch)
    image = await _image_bytes(deps, cmd)
    try:
        batch = await deps.predictor.preprocess(
            image,
            width=plan.width,
            height=plan.height,
            channels=plan.channels,
            resize_mode=plan.resize_mode,
            input_shape=plan.input_shape,
        )
    except ImageLoadError as e:
        raise errors.NotAnImage(str(e)) from e
    probs = await _forward(deps, plan, batch)
    deps.metrics.inc("classifications")
    predictions = top_k(probs[0], plan.labels, cmd.top_k)
    log.info("classified", job_id=plan.job_id, epoch=plan.epoch, top=predictions[:1])
    return Classified(job_id=plan.job_id, snapshot_epoch=plan.epoch, predictions=predictions)


async def _plan(deps: Deps, job_id: str, epoch: float | None) -> Plan:
    if not JOB_ID.fullmatch(job_id):
        raise errors.JobNotFound(job_id)
    model = await deps.registry.model(job_id)
    choose_snapshot(job_id, model, epoch)  # refuse (404/409/400) before reading the dataset
    dataset = (
        await deps.registry.dataset(model.dataset_id)
        if JOB_ID.fullmatch(model.dataset_id)
        else DatasetView()
    )
    return plan_classification(job_id, model, dataset, epoch)


async def _image_bytes(deps: Deps, cmd: ClassifyOne) -> bytes:
    """The image inline, or fetched whole from the uploads bucket."""
    if cmd.image:
        if len(cmd.image) > deps.max_image_bytes:
            raise errors.BadImageInput(_too_large(len(cmd.image), deps.max_image_bytes))
        return cmd.image
    ref = cmd.image_blob
    if ref is None:
        raise errors.BadImageInput("An image is required (image_file)")
    if ref.bucket != subjects.BUCKET_UPLOADS:
        raise errors.BadImageInput(
            f"Images are read from the uploads bucket only, not {ref.bucket}"
        )
    store = await deps.js.object_store(ref.bucket)
    try:
        info = await store.get_info(ref.name)
        if (info.size or 0) > deps.max_image_bytes:
            raise errors.BadImageInput(_too_large(info.size or 0, deps.max_image_bytes))
        buffer = io.BytesIO()
        await store.get(ref.name, writeinto=buffer)  # writeinto avoids nats-py's quadratic concat
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.BadImageInput(f"Uploaded image {ref.name} not found") from e
    return buffer.getvalue()


async def _forward(deps: Deps, plan: Plan, batch: np.ndarray) -> np.ndarray:
    """Fetch the snapshot's blobs (disk cache) and run the network (memory cache)."""
    try:
        symbol = await fetch(deps.js, plan.symbol, deps.cache_dir)
        params = await fetch(deps.js, plan.params, deps.cache_dir)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, "its files are missing") from e
    key = (plan.job_id, plan.epoch, plan.params.digest or plan.params.name)
    try:
        return await deps.predictor.probabilities(key, symbol, params, batch)
    except MXNetError as e:
        log.exception("snapshot_unusable", job_id=plan.job_id, epoch=plan.epoch)
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, _mxnet_reason(e)) from e


def _too_large(size: int, limit: int) -> str:
    return f"Image too large: {size} bytes (the limit is {limit})"


def _mxnet_reason(error: MXNetError) -> str:
    """The last line of MXNet's message (the first is a C++ traceback header)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__
