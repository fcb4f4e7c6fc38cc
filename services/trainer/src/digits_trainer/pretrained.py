"""Pretrained models (DIGITS §6.4): register an uploaded archive or files, or a trained job's
snapshot, as a model job of its own that has one snapshot and no dataset.

The job lives on the model's own subject like any training job: PretrainedModelCreated, then
SnapshotSaved (its files copied into the models bucket under the new id) and TrainingCompleted.
So classify, download, delete and fine-tuning (`method=pretrained`) read it the way they read a
trained job, and deleting the original job leaves it intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import structlog

from digits_proto import new_job_id, subjects
from digits_proto.base import BlobRef, JobStatus
from digits_proto.datasets import DatasetCreated
from digits_proto.models import (
    CreatePretrainedModel,
    MakePretrained,
    ModelEvents,
    PretrainedModelCreated,
    SnapshotSaved,
    TrainingCompleted,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import Conflict, append_created, create_msg_id, same_request
from digits_trainer import access, unpack
from digits_trainer.domain import ModelState, pick_snapshot
from digits_trainer.errors import InvalidField, ModelNotFound, StorageFailed
from digits_trainer.faults import write_failure
from digits_trainer.importer import Importer, Probe, network_source
from digits_trainer.store import Store, valid_job_id

log = structlog.get_logger(__name__)

RESIZE_MODES = ("crop", "squash", "fill", "half_crop")
# The rebuilt network source embeds the symbol and travels in events (1 MB message cap): a
# bigger one is not kept, and that model classifies but cannot be fine-tuned.
MAX_SOURCE = 512 * 1024


class Imports:
    """What registering an upload needs: the importer, a work folder and the size limit."""

    def __init__(
        self,
        importer: Importer,
        work_dir: Path,
        cache_dir: Path,
        max_bytes: int,
        node_id: str = "",
    ):
        self.importer = importer
        self.work_dir = work_dir
        self.cache_dir = cache_dir  # blobs by digest, shared with training attempts
        self.max_bytes = max_bytes
        self.node_id = node_id or socket.gethostname()  # named when this node's disk fails


@contextlib.contextmanager
def _disk_faults(imports: Imports, where: Path) -> Iterator[None]:
    """A full or read-only disk while the files are copied: a 507 naming the file (else
    `where`) and the node. The temporary folder and `fetch` remove what they wrote."""
    try:
        yield
    except (TimeoutError, ConnectionError):  # OSErrors too, but the network's
        raise
    except OSError as e:
        log.warning("pretrained_write_failed", error=str(e))
        raise StorageFailed(write_failure(e, imports.node_id, where)) from e


async def create_pretrained(
    store: Store, imports: Imports, command: CreatePretrainedModel
) -> Accepted:
    """`/pretrained_models/upload_archive` and `/new`: check the files by loading them in a
    child, copy them into the models bucket, record the job."""
    access.writer(command.principal)  # before any upload is read or loaded for who asks
    with _disk_faults(imports, imports.work_dir):
        imports.work_dir.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.TemporaryDirectory(prefix="pretrained-", dir=imports.work_dir)
    with tmp, _disk_faults(imports, Path(tmp.name)):
        work = Path(tmp.name)
        if command.archive is not None:
            found = await _from_archive(store, imports, command.archive, work)
        else:
            found = await _from_files(store, imports, command, work)
        name = command.name.strip() or found["name"]
        if not name:
            raise InvalidField("job_name", "This field is required.")
        return await _register(store, imports, command, found, name)


async def _download(store: Store, ref: BlobRef, work: Path, field: str, limit: int) -> Path:
    if ref.bucket != subjects.BUCKET_UPLOADS:
        raise InvalidField(field, f"Uploads are read from {subjects.BUCKET_UPLOADS} only")
    if ref.size > limit:
        raise InvalidField(field, f"The file is larger than the {limit} byte limit")
    return await store.fetch(ref, work / "download")


async def _from_archive(store: Store, imports: Imports, ref: BlobRef, work: Path) -> dict:
    path = await _download(store, ref, work, "archive", imports.max_bytes)
    # Off the event loop: a big archive takes a while to unpack, and heartbeats must go on.
    root = await asyncio.to_thread(unpack.extract, path, work / "archive", imports.max_bytes)
    info = unpack.read_info(root)
    params_name = unpack.required(info, "snapshot file")
    framework = unpack.required(info, "framework").lower()
    name = unpack.required(info, "name")
    symbol_name = unpack.required(info, "model file", "network file")
    if framework != "mxnet":
        raise unpack.refuse(f"Framework {framework!r} is not supported here (mxnet only)")
    labels_name = info.get("labels file")
    mean_name = info.get("mean file")
    mean_jpg = info.get("mean image file")  # the means are for downloads: optional
    return {
        "name": name,
        "symbol": unpack.member(root, symbol_name, "model file"),
        "params": unpack.member(root, params_name, "snapshot file"),
        "labels": unpack.member(root, labels_name, "labels file") if labels_name else None,
        "mean": unpack.optional(root, mean_name) if _npy(mean_name) else None,
        "mean_jpg": unpack.optional(root, mean_jpg),
        "epoch": _epoch(info.get("snapshot epoch")),
        "field": "archive",
        "source": "archive",
        **unpack.preprocessing(info),
    }


async def _from_files(
    store: Store, imports: Imports, command: CreatePretrainedModel, work: Path
) -> dict:
    if command.weights is None:
        raise InvalidField("weights_file", "This field is required.")
    if command.model_def is None:
        raise InvalidField("model_def_file", "This field is required.")
    if command.channels not in (1, 3):
        raise InvalidField("image_type", "Not a valid choice")
    if command.resize_mode not in RESIZE_MODES:
        raise InvalidField("resize_mode", "Not a valid choice")
    for field, value in (("width", command.width), ("height", command.height)):
        if not 0 < value <= 8192:
            raise InvalidField(field, "Number must be between 1 and 8192.")
    limit = imports.max_bytes
    labels = mean = None
    if command.labels is not None:
        labels = await _download(store, command.labels, work / "l", "labels_file", limit)
    if command.mean is not None:
        mean = await _download(store, command.mean, work / "m", "mean_file", limit)
    return {
        "name": "",
        "symbol": await _download(store, command.model_def, work / "s", "model_def_file", limit),
        "params": await _download(store, command.weights, work / "p", "weights_file", limit),
        "labels": labels,
        "mean": mean,
        "mean_jpg": None,
        "epoch": 1.0,
        "field": "weights_file",
        "source": "files",
        "width": command.width,
        "height": command.height,
        "channels": command.channels,
        "resize_mode": command.resize_mode,
        "crop_size": None,
        "input_shape": [command.channels, command.height, command.width],
        "use_mean": "image",
    }


async def _register(
    store: Store, imports: Imports, command: CreatePretrainedModel, found: dict, name: str
) -> Accepted:
    symbol: Path = found["symbol"]
    if symbol.stat().st_size > 64 * 1024 * 1024:
        raise InvalidField("model_def_file", "The network definition is too large")
    try:
        symbol_text = symbol.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidField(_field(found, "model_def_file"), "Not an MXNet symbol file") from e
    source = network_source(name, symbol_text)
    probe = Probe(
        symbol=str(symbol),
        params=str(found["params"]),
        input_shape=found["input_shape"],
        source=source,
    )
    verdict = await imports.importer.check(probe, found["field"])
    labels = unpack.read_labels(found["labels"]) or [str(i) for i in range(verdict.outputs)]
    model_id = new_job_id()
    epoch = found["epoch"]
    prefix = f"{model_id}/snapshot-{epoch:g}"
    blobs = {
        "symbol": await store.put_model_file(f"{prefix}-symbol.json", symbol),
        "params": await store.put_model_file(f"{prefix}.params", found["params"]),
    }
    for key, filename in (("mean", "mean.npy"), ("mean_jpg", "mean.jpg")):
        if found[key] is not None:
            blobs[key] = await store.put_model_file(f"{model_id}/{filename}", found[key])
    owner = access.writer(command.principal).username
    created = PretrainedModelCreated(
        model_id=model_id,
        name=name,
        username=owner,
        group=command.group,
        source=found["source"],
        width=found["width"],
        height=found["height"],
        channels=found["channels"],
        resize_mode=found["resize_mode"],
        labels=labels,
        use_mean=found["use_mean"],
        crop_size=found["crop_size"],
        mean=blobs.get("mean"),
        mean_jpg=blobs.get("mean_jpg"),
        custom_network=source if verdict.source_ok and len(source) <= MAX_SOURCE else "",
        actor=owner,
        idempotency_key=command.idempotency_key,
        request_digest=command.request_digest,
    )
    return await _append(store, created, blobs, epoch, found["input_shape"])


async def make_pretrained(store: Store, imports: Imports, command: MakePretrained) -> Accepted:
    """`/models/<id>/to_pretrained`: a trained job's snapshot (the latest unless `epoch`)
    becomes a pretrained model, its files copied so it outlives the job."""
    who = access.writer(command.principal)
    state, _ = await store.model(command.model_id) if valid_job_id(command.model_id) else (None, 0)
    if state is None or state.deleted:
        raise ModelNotFound(command.model_id)
    owner = access.actor(who, state.username, "make a pretrained model of")
    if state.pretrained:
        raise InvalidField("job_id", f"{command.model_id} is already a pretrained model")
    if state.last_snapshot is None:
        raise Conflict(f"Job {command.model_id} has no snapshot yet", field="job_id")
    try:
        snapshot = pick_snapshot(state, command.epoch)
    except ValueError as e:
        raise InvalidField("snapshot_epoch", str(e).replace("previous network", "job")) from None
    created, means = await _trained_origin(store, state)
    model_id = new_job_id()
    created = PretrainedModelCreated(  # DIGITS: whoever made it owns it
        **{**_fields(created), "model_id": model_id, "username": owner, "actor": owner}
    )
    prefix = f"{model_id}/snapshot-{snapshot.epoch:g}"
    blobs: dict[str, BlobRef] = {}
    for key, ref, target in (
        ("symbol", snapshot.symbol, f"{prefix}-symbol.json"),
        ("params", snapshot.params, f"{prefix}.params"),
        ("mean", means[0], f"{model_id}/mean.npy"),
        ("mean_jpg", means[1], f"{model_id}/mean.jpg"),
    ):
        if ref is not None:
            with _disk_faults(imports, imports.cache_dir):
                local = await store.fetch(ref, imports.cache_dir)
            blobs[key] = await store.put_model_file(target, local)
    created = PretrainedModelCreated(
        **{**_fields(created), "mean": blobs.get("mean"), "mean_jpg": blobs.get("mean_jpg")}
    )
    return await _append(store, created, blobs, snapshot.epoch, list(snapshot.input_shape))


async def _trained_origin(
    store: Store, state: ModelState
) -> tuple[PretrainedModelCreated, tuple[BlobRef | None, BlobRef | None]]:
    """The new job's description from the trained job and its dataset's events."""
    events, _ = await store.datasets.load(subjects.dataset_events(state.dataset_id))
    created = next((e for e in events if isinstance(e, DatasetCreated)), None)
    dataset = await store.dataset(state.dataset_id)
    if created is None or dataset is None or dataset.built is None:
        raise Conflict(f"Dataset {state.dataset_id} of this job was never built", field="job_id")
    built = dataset.built
    spec = state.spec
    custom = spec.custom_network.strip() != ""
    return (
        PretrainedModelCreated(
            model_id=state.model_id,
            name=state.name,
            username=state.username,
            source="model",
            source_model_id=state.model_id,
            width=built.image_width,
            height=built.image_height,
            channels=built.image_channels,
            resize_mode=created.spec.resize_mode,
            labels=list(built.labels),
            use_mean=spec.use_mean,
            crop_size=spec.crop_size,
            standard_network="" if custom else spec.standard_network,
            custom_network=spec.custom_network if custom else "",
        ),
        (built.mean, built.mean_jpg),
    )


async def _append(
    store: Store,
    created: PretrainedModelCreated,
    blobs: dict[str, BlobRef],
    epoch: float,
    input_shape: list[int],
) -> Accepted:
    model_id = created.model_id
    events: list[ModelEvents] = [
        created,
        SnapshotSaved(
            model_id=model_id,
            epoch=epoch,
            symbol=blobs["symbol"],
            params=blobs["params"],
            input_shape=input_shape,
        ),
        TrainingCompleted(model_id=model_id),
    ]
    if not created.idempotency_key:
        seq = await store.append(model_id, events, 0)
    else:
        msg_id = create_msg_id(created.actor, created.idempotency_key)
        subject = subjects.model_events(model_id)
        seq, original = await append_created(store.models, subject, events, msg_id)
        # A retried import: the first one's job is the answer, this one's copied files go.
        if isinstance(original, PretrainedModelCreated):
            await store.delete_model_files([ref.name for ref in blobs.values()])
            same_request(original, created.request_digest)
            model_id, created = original.model_id, original
    log.info("pretrained_registered", model_id=model_id, source=created.source, epoch=epoch)
    return Accepted(
        id=model_id,
        name=created.name,
        status=JobStatus.DONE,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


def _fields(struct: object) -> dict:
    return {f: getattr(struct, f) for f in struct.__struct_fields__}  # type: ignore[attr-defined]


def _field(found: dict, default: str) -> str:
    return "archive" if found["source"] == "archive" else default


def _npy(name: object) -> bool:
    return isinstance(name, str) and name.endswith(".npy")


def _epoch(value: object) -> float:
    """The archive's snapshot epoch when it is a positive number, else 1."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and value > 0 else 1.0  # type: ignore[arg-type]
