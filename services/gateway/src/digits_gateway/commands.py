"""What a route asks of the system: the same translation for DIGITS routes and `/api/v1`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import structlog

from digits_gateway import forms, idempotency
from digits_gateway.deps import Gateway
from digits_gateway.errors import (
    CommandRejected,
    Denied,
    GatewayError,
    JobNotFound,
    NotAborted,
    Unavailable,
)
from digits_gateway.idempotency import Keyed
from digits_gateway.readmodel import queries
from digits_gateway.readmodel.queries import Job
from digits_proto import subjects
from digits_proto.base import BlobRef, JobStatus, Principal, clean_tags
from digits_proto.datasets import AbortDataset, DeleteDataset, EditDataset
from digits_proto.inference import Classified, ClassifyOne
from digits_proto.models import AbortModel, DeleteModel, EditModel
from digits_proto.replies import Accepted
from digits_proto.runtime import put_bytes, put_reader

log = structlog.get_logger(__name__)


# Jobs that classify: trained models and pretrained models alike.
CLASSIFIERS = ("model", "pretrained_model")


def find_job(gw: Gateway, job_id: str, type: str | tuple[str, ...] | None = None) -> Job:
    """The live job, of the type (or one of the types) the route serves; 404 otherwise."""
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job_id)
    types = (type,) if isinstance(type, str) else type
    if job is None or (types is not None and job.type not in types):
        raise JobNotFound()
    return job


async def create_dataset(
    gw: Gateway,
    values: Mapping[str, Any],
    user: Principal,
    files: Mapping[str, Any] | None = None,
    key: Keyed | None = None,
) -> Accepted:
    """Validate the form, send CreateDataset, wait for the read model.

    Uploaded lists and archives (already spooled to disk by the form parser) go to the uploads
    bucket first, streamed in chunks; the command carries their references. A retry under the
    same Idempotency-Key returns the first answer, uploading nothing.
    """
    first = idempotency.first_answers(gw.db, user, key) if key is not None else None
    if first and first[0] is not None:
        return first[0]
    values = replay_clone(gw, values, "dataset")
    upload_id = str(values.get("upload_id") or "").strip()
    if upload_id and values.get("method") == "upload":
        # The archive came first through /api/v1/uploads: used once, if the create is accepted.
        if gw.uploads is None:
            raise Unavailable("Uploads are not ready yet; retry")
        async with gw.uploads.use(upload_id, user.username, "dataset") as claim:
            answer = await _create_dataset(gw, values, user, files, key, claim.ref)
            claim.job_id = answer.id
            return answer
    return await _create_dataset(gw, values, user, files, key)


async def _create_dataset(
    gw: Gateway,
    values: Mapping[str, Any],
    user: Principal,
    files: Mapping[str, Any] | None,
    key: Keyed | None,
    archive: BlobRef | None = None,
) -> Accepted:
    blobs: dict[str, BlobRef] = {}
    try:
        for field in forms.DATASET_FILES:
            upload = (files or {}).get(field)
            if archive is not None and field == "upload_archive":
                continue  # sent through /api/v1/uploads instead
            if upload is not None and upload.filename:
                name = f"datasets/{uuid.uuid4().hex}/{field}"
                await upload.seek(0)
                blobs[field] = await put_reader(gw.js, subjects.BUCKET_UPLOADS, name, upload.file)
        uploaded = {**blobs, "upload_archive": archive} if archive is not None else blobs
        command = forms.dataset_command(values, user, uploaded)
        if key is not None:
            command = msgspec.structs.replace(
                command, idempotency_key=key.key, request_digest=key.digest
            )
        return await gw.bus.send(subjects.CMD_DATASETS_CREATE, command)
    except Unavailable:
        raise  # perhaps accepted (a lagging read model, a lost reply): its build needs them
    except Exception:
        with contextlib.suppress(Exception):  # refused: the uploads are of no use
            store = await gw.js.object_store(subjects.BUCKET_UPLOADS)
            for ref in blobs.values():
                await store.delete(ref.name)
        raise


def usable_dataset(gw: Gateway, dataset_id: str) -> bool:
    """DIGITS's model form offers datasets that are running or Done."""
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, dataset_id)
    return job is not None and job.type == "dataset" and job.status not in ("Error", "Aborted")


def replay_clone(gw: Gateway, values: Mapping[str, Any], type: str) -> Mapping[str, Any]:
    """DIGITS's `clone=<id>`: the saved form replayed over whatever else was sent, as DIGITS's
    fill_form_from_job did, so a clone trains or builds exactly as its source; only a new job
    name, when one is sent, is kept."""
    clone = str(values.get("clone") or "").strip()
    if not clone:
        return values
    replayed = {**values, **forms.kept_form(find_job(gw, clone, type).form)}
    replayed.pop("clone", None)
    name = f"{type}_name"
    if str(values.get(name) or "").strip():
        replayed[name] = values[name]
    return replayed


async def create_models(
    gw: Gateway, values: Mapping[str, Any], user: Principal, key: Keyed | None = None
) -> list[Accepted]:
    """Validate the form, send one CreateModel per sweep combination, wait for each. A retry
    under the same Idempotency-Key returns the jobs the first request created and creates only
    those it did not get to (combination i is keyed `key`, then `key` + newline + i)."""
    values = replay_clone(gw, values, "model")
    commands = forms.model_commands(values, user, lambda d: usable_dataset(gw, d))
    if key is None:
        return [await gw.bus.send(subjects.CMD_MODELS_CREATE, c) for c in commands]
    first = idempotency.first_answers(gw.db, user, key, len(commands)) or [None] * len(commands)
    answers: list[Accepted] = []
    for index, (command, answer) in enumerate(zip(commands, first, strict=True)):
        if answer is None:
            command = msgspec.structs.replace(
                command, idempotency_key=key.part(index), request_digest=key.digest
            )
            answer = await gw.bus.send(subjects.CMD_MODELS_CREATE, command)
        answers.append(answer)
    return answers


def _check_may_change(user: Principal, job: Job, message: str) -> None:
    """The early, friendly answer (the owning service decides again): owners and admins."""
    if not (user.may_change(job.username) if job.username else user.may_create):
        raise Denied(message)


async def abort_job(
    gw: Gateway, job_id: str, user: Principal, type: str | None = None, key: str | None = None
) -> Accepted:
    """Abort a running job its principal may change. Under an Idempotency-Key the service finds
    a retry in the job's history and answers as it did the first time (so an ended job is not
    refused here first). An abort always answers: what fails on the way (the owning service, or
    here: the read model, a full disk) is a 409 "Job not aborted: <reason>", never a 500."""
    try:
        return await _abort_job(gw, job_id, user, type, key)
    except GatewayError:
        raise
    except Exception:  # the detail goes to the log under the id quoted
        error_id = uuid.uuid4().hex[:12]
        log.exception("abort_failed", job_id=job_id, error_id=error_id)
        raise NotAborted(f"internal error, id {error_id}; see the gateway log") from None


async def _abort_job(
    gw: Gateway, job_id: str, user: Principal, type: str | None, key: str | None
) -> Accepted:
    job = find_job(gw, job_id, type)
    _check_may_change(user, job, "You don't have permission to abort this job")
    if key is not None:
        idempotency.used_for_a_create(gw.db, user, key)
    elif not job.running:
        raise Denied("Job not aborted")
    if job.type == "dataset":
        subject, command = (
            subjects.CMD_DATASETS_ABORT,
            AbortDataset(
                dataset_id=job.id,
                username=user.username,
                principal=user,
                idempotency_key=key or "",
            ),
        )
    else:
        command = AbortModel(
            model_id=job.id, username=user.username, principal=user, idempotency_key=key or ""
        )
        subject = subjects.CMD_MODELS_ABORT
    try:
        return await gw.bus.send(subject, command)
    except CommandRejected as e:
        if e.code >= 500:  # the service failed to record it (its disk, its store): say so
            raise NotAborted(e.message) from e
        raise _refused(e, "Job not aborted") from e


async def delete_job(
    gw: Gateway, job_id: str, user: Principal, type: str | None = None, key: str | None = None
) -> Accepted:
    """Delete a job its principal may change; a dataset only once no model uses it. Under an
    Idempotency-Key, a job already deleted answers as the delete did (the retry of a delete
    whose answer was lost)."""
    if key is not None and (gone := _deleted_job(gw, job_id, type, user)) is not None:
        idempotency.used_for_a_create(gw.db, user, key)
        return gone
    job = find_job(gw, job_id, type)
    _check_may_change(user, job, "You don't have permission to delete job")
    if job.type == "dataset":
        with gw.db.cursor() as cur:
            users = queries.dependents(cur, job.id)
        if users:
            names = ", ".join(f"{name} ({mid})" for mid, name in users)
            raise Denied(
                f'Cannot delete "{job.name}" because {len(users)} model(s) depend on it: {names}'
            )
        subject, command = (
            subjects.CMD_DATASETS_DELETE,
            DeleteDataset(dataset_id=job.id, username=user.username, principal=user),
        )
    else:
        command = DeleteModel(model_id=job.id, username=user.username, principal=user)
        subject = subjects.CMD_MODELS_DELETE
    try:
        return await gw.bus.send(subject, command)
    except CommandRejected as e:
        raise _refused(e, e.message) from e


def _deleted_job(gw: Gateway, job_id: str, type: str | None, user: Principal) -> Accepted | None:
    """The answer of a delete already done, for a retry its principal may send."""
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job_id, include_deleted=True)
    types = (type,) if isinstance(type, str) else None
    if job is None or not job.deleted or (types is not None and job.type not in types):
        return None
    _check_may_change(user, job, "You don't have permission to delete job")
    return Accepted(id=job.id, name=job.name, status=JobStatus(job.status))


async def edit_job(
    gw: Gateway,
    job_id: str,
    user: Principal,
    name: str | None,
    notes: str | None,
    tags: list[str] | None = None,
) -> tuple[Job, Accepted]:
    """DIGITS's `PUT /jobs/<id>`: a new name, notes and/or tags (None = unchanged), by the
    owner."""
    job = find_job(gw, job_id)
    _check_may_change(user, job, "You don't have permission to edit this job")
    name = None if name is None else name.strip()
    notes = None if notes is None else notes.strip()
    if name == "":
        raise forms.FormErrors({"job_name": ["name cannot be blank"]})
    if tags is not None:
        try:
            tags = clean_tags(tags)
        except ValueError as e:
            raise forms.FormErrors({"job_tags": [str(e)]}) from None
    if job.type == "dataset":
        subject: str = subjects.CMD_DATASETS_EDIT
        command: EditDataset | EditModel = EditDataset(
            dataset_id=job.id,
            username=user.username,
            name=name,
            notes=notes,
            tags=tags,
            principal=user,
        )
    else:
        subject = subjects.CMD_MODELS_EDIT
        command = EditModel(
            model_id=job.id,
            username=user.username,
            name=name,
            notes=notes,
            tags=tags,
            principal=user,
        )
    try:
        return job, await gw.bus.send(subject, command)
    except CommandRejected as e:
        raise _refused(e, e.message) from e


def _refused(e: CommandRejected, message: str) -> Exception:
    if e.code == 404:
        return JobNotFound()
    if e.code in (403, 409):
        return Denied(message if message else e.message)
    return e


def snapshot_epoch(values: Mapping[str, Any]) -> float | None:
    """The snapshot to use; absent, empty or ≤ 0 means the latest."""
    fields = forms.Fields(values)
    epoch = fields.number("snapshot_epoch")
    fields.check()
    return epoch if epoch is not None and epoch > 0 else None


def server_image(gw: Gateway, path: str) -> bytes:
    """DIGITS's `image_path`: allowed only inside DIGITS_DATA_ROOTS, never elsewhere."""
    roots = [Path(r).resolve() for r in gw.settings.data_roots]
    target = Path(path).resolve()
    if not roots:
        raise forms.FormErrors({"image_path": ["Server paths are disabled; upload image_file"]})
    if not any(target.is_relative_to(r) for r in roots) or not target.is_file():
        raise forms.FormErrors({"image_path": [f"Not an image file inside the data roots: {path}"]})
    if target.stat().st_size > gw.settings.max_upload_bytes:
        raise forms.FormErrors({"image_path": ["File too large"]})
    return target.read_bytes()


async def classify_one(
    gw: Gateway,
    job_id: str,
    image: bytes,
    epoch: float | None,
    visualize: bool = False,
    principal: Principal | None = None,
) -> Classified:
    """Send ClassifyOne; a big image travels through the Object Store (1 MB message cap)."""
    model = find_job(gw, job_id, CLASSIFIERS)
    if not image:
        raise forms.FormErrors({"image_file": ["Provide an image: image_file (upload)"]})
    command = ClassifyOne(
        job_id=model.id,
        image=image,
        snapshot_epoch=epoch,
        show_visualizations=visualize,
        principal=principal,
    )
    blob_name = ""
    if len(image) > gw.settings.inline_image_limit:
        blob_name = f"classify/{uuid.uuid4().hex}"
        ref = await put_bytes(gw.js, subjects.BUCKET_UPLOADS, blob_name, image)
        command = ClassifyOne(
            job_id=model.id,
            image_blob=ref,
            snapshot_epoch=epoch,
            show_visualizations=visualize,
            principal=principal,
        )
    try:
        return await gw.bus.classify(subjects.CMD_INFERENCE_CLASSIFY_ONE, command)
    except CommandRejected as e:
        if e.code == 400 and e.field in (None, "image", "image_blob"):
            e.field = "image_file"
        raise
    finally:
        if blob_name:
            with contextlib.suppress(Exception):
                store = await gw.js.object_store(subjects.BUCKET_UPLOADS)
                await store.delete(blob_name)
