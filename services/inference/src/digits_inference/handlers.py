"""Command handlers: classify one image with a model's snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import structlog
from mxnet.base import MXNetError
from nats.js import JetStreamContext
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError
from PIL import UnidentifiedImageError

from digits_imaging import MAX_PIXELS, ImageLoadError, ImageTooLarge
from digits_inference import access, deploy, errors
from digits_inference.archive import Limits
from digits_inference.domain import (
    DatasetView,
    ModelView,
    Plan,
    choose_snapshot,
    plan_classification,
)
from digits_inference.predictor import Predictor, top_k
from digits_inference.registry import Registry
from digits_proto import subjects
from digits_proto.inference import (
    Classified,
    ClassifyOne,
    Exported,
    ExportModel,
    Visualizations,
)
from digits_proto.runtime import Metrics, fetch, put_bytes, put_file, read_bytes

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
    max_pixels: int = MAX_PIXELS  # more in an image's header: refused before decoding
    data_roots: tuple[str, ...] = ()
    max_list_bytes: int = 16 * 1024 * 1024
    batch_size: int = 64
    max_archive_bytes: int = 1 << 30  # uploaded image archives (compressed)
    archive_limits: Limits = field(default_factory=Limits)  # members, expanded, per image
    max_reply_bytes: int = 0  # a classify-many result up to this size may travel in the reply
    checkpoint_every: float = 2.0  # seconds between a classify-many job's checkpoints
    # Classify-many jobs this instance is working on, by run id (the HTTP routes list them).
    in_flight: dict[str, InFlight] = field(default_factory=dict)


@dataclass
class InFlight:
    """A classify-many job being worked here; `progress` is updated as batches finish."""

    run_id: str
    job_id: str
    started_at: float  # epoch seconds
    progress: dict[str, int]


async def classify_one(deps: Deps, cmd: ClassifyOne) -> Classified:
    """Classify one image; refusals name the field at fault (job_id, snapshot_epoch, image_file)."""
    access.runner(cmd.principal)
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
            max_pixels=deps.max_pixels,
        )
    except ImageTooLarge as e:
        raise errors.BadImageInput(f"{e} (DIGITS_INFERENCE_MAX_PIXELS)") from e
    except ImageLoadError as e:
        # Pillow tells a file of no image format from a damaged image of a known one.
        unknown = isinstance(e.__cause__, UnidentifiedImageError)
        raise errors.NotAnImage(str(e), known_format=not unknown) from e
    probs = await _forward(deps, plan, batch)
    deps.metrics.inc("classifications")
    predictions = top_k(probs[0], plan.labels, cmd.top_k)
    log.info("classified", job_id=plan.job_id, epoch=plan.epoch, top=predictions[:1])
    if not cmd.show_visualizations:
        return Classified(job_id=plan.job_id, snapshot_epoch=plan.epoch, predictions=predictions)
    visuals = await _explain(deps, plan, batch)
    # Tiles of a real network exceed the 1 MB message cap: the reply carries a blob reference.
    ref = await put_bytes(
        deps.js,
        subjects.BUCKET_UPLOADS,
        f"visualizations/{uuid.uuid4().hex}",
        msgspec.json.encode(visuals),
    )
    return Classified(
        job_id=plan.job_id,
        snapshot_epoch=plan.epoch,
        predictions=predictions,
        visualizations=ref,
        total_parameters=visuals.total_parameters,
    )


async def export_model(deps: Deps, cmd: ExportModel) -> Exported:
    """Pack the snapshot into an archive in the uploads bucket (built in a temporary folder);
    a full or read-only disk is a 507 naming the file and this node, never a 500."""
    try:
        return await _export_model(deps, cmd)
    except OSError as e:
        log.exception("export_failed", job_id=cmd.job_id)
        raise errors.StorageFailed(e, socket.gethostname()) from e


async def _export_model(deps: Deps, cmd: ExportModel) -> Exported:
    access.reader(cmd.principal)
    fmt = deploy.check_format(cmd.archive_format)
    model, dataset, plan = await _views(deps, cmd.job_id, cmd.snapshot_epoch)
    names = deploy.member_names(plan.epoch)
    with tempfile.TemporaryDirectory(prefix="digits-export-") as tmp:
        folder = Path(tmp)
        try:
            members = {
                names["symbol"]: await fetch(deps.js, plan.symbol, deps.cache_dir),
                names["params"]: await fetch(deps.js, plan.params, deps.cache_dir),
            }
        except (ObjectNotFoundError, ObjectDeletedError) as e:
            raise errors.SnapshotUnusable(plan.job_id, plan.epoch, "its files are missing") from e
        for key in ("mean", "mean_jpg"):
            ref = getattr(dataset, key)
            # The network holds its mean itself: the files are for reference, not required.
            with contextlib.suppress(ObjectNotFoundError, ObjectDeletedError):
                if ref is not None:
                    members[names[key]] = await fetch(deps.js, ref, deps.cache_dir)
        if cmd.onnx:
            target = folder / names["onnx"]
            try:
                await deps.predictor.run(
                    deploy.export_onnx,
                    members[names["symbol"]],
                    members[names["params"]],
                    plan.input_shape,
                    target,
                )
            except OSError:  # a full disk is not the exporter's fault: a 507 (export_model)
                raise
            except Exception as e:  # the exporter raises many kinds; the user gets one line
                log.exception("onnx_export_failed", job_id=plan.job_id)
                raise errors.OnnxUnavailable(str(e).splitlines()[0][:200] if str(e) else "") from e
            members[names["onnx"]] = target
        else:
            names.pop("onnx")
        present = {k: v for k, v in names.items() if v in members or k in ("labels", "script")}
        info = deploy.info_json(plan, model, present)
        written = deploy.labels_and_info(folder, plan, info)
        members |= {"labels.txt": written["labels"], "info.json": written["info"]}
        members["classify.py"] = written["script"]
        filename = deploy.archive_name(plan.job_id, plan.epoch, fmt)
        archive = await asyncio.to_thread(deploy.write_archive, folder / "archive", fmt, members)
        ref = await put_file(
            deps.js, subjects.BUCKET_UPLOADS, f"exports/{uuid.uuid4().hex}/{filename}", archive
        )
    log.info("exported", job_id=plan.job_id, epoch=plan.epoch, size=ref.size, onnx=cmd.onnx)
    return Exported(job_id=plan.job_id, snapshot_epoch=plan.epoch, filename=filename, archive=ref)


async def _plan(deps: Deps, job_id: str, epoch: float | None) -> Plan:
    return (await _views(deps, job_id, epoch))[2]


async def _views(
    deps: Deps, job_id: str, epoch: float | None
) -> tuple[ModelView, DatasetView, Plan]:
    if not JOB_ID.fullmatch(job_id):
        raise errors.JobNotFound(job_id)
    model = await deps.registry.model(job_id)
    choose_snapshot(job_id, model, epoch)  # refuse (404/409/400) before reading the dataset
    if model.preprocessing is not None:  # a pretrained model: no dataset of its own
        dataset = model.preprocessing
    elif JOB_ID.fullmatch(model.dataset_id):
        dataset = await deps.registry.dataset(model.dataset_id)
    else:
        dataset = DatasetView()
    return model, dataset, plan_classification(job_id, model, dataset, epoch)


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
        return await read_bytes(deps.js, ref.bucket, ref.name)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.BadImageInput(f"Uploaded image {ref.name} not found") from e


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


async def _explain(deps: Deps, plan: Plan, batch: np.ndarray) -> Visualizations:
    """The layer visualizations of one image (the snapshot's blobs come from the disk cache)."""
    symbol = await fetch(deps.js, plan.symbol, deps.cache_dir)
    params = await fetch(deps.js, plan.params, deps.cache_dir)
    key = (plan.job_id, plan.epoch, plan.params.digest or plan.params.name)
    try:
        return await deps.predictor.explain(key, symbol, params, batch, plan.labels)
    except MXNetError as e:
        log.exception("visualization_failed", job_id=plan.job_id, epoch=plan.epoch)
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, _mxnet_reason(e)) from e


def _too_large(size: int, limit: int) -> str:
    return f"Image too large: {size} bytes (the limit is {limit})"


def _mxnet_reason(error: MXNetError) -> str:
    """The last line of MXNet's message (the first is a C++ traceback header)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__
