"""Classify many through the inference service: list, status and result travel as blobs."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import uuid
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar.datastructures import UploadFile
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, Unavailable
from digits_proto import codec, subjects
from digits_proto.inference import (
    ClassifyMany,
    ClassifyManyQueued,
    ManyResult,
    ManyStatus,
    many_status_name,
)
from digits_proto.replies import Rejected
from digits_proto.runtime import put_bytes, put_reader, read_bytes
from digits_proto.runtime import request as bus_request

TIMEOUT = 120.0  # synchronous lists are small (SYNC_LINES)
QUEUE_TIMEOUT = 30.0  # validating and queueing reads the list once
SYNC_LINES = 2000  # longer lists run as a job even on the .json route (DIGITS scripts: small)
INLINE_LIST_BYTES = 512 * 1024  # lists up to this size travel inside the command
ARCHIVE_TYPES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")
THUMBNAIL_URL = "/models/images/classification/thumbnail"
THUMBNAIL_MAX_BYTES = 4 * 1024 * 1024  # served as stored (the gateway has no image library)
IMAGE_TYPES = {
    b"\x89PNG": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF8": "image/gif",
    b"BM": "image/bmp",
}
# Signs the thumbnail links of the result pages this process rendered: a link names one path
# for one user, so the route serves only images a classify-many of that user read, never a
# path someone typed. A restart invalidates old links; reloading the result page signs anew.
_THUMBNAIL_KEY = secrets.token_bytes(32)
T = TypeVar("T")


async def submit(
    gw: Gateway, command: ClassifyMany, text: bytes, archive: UploadFile | None = None
) -> ManyResult | ClassifyManyQueued:
    """Upload the list (or stream the archive from the spooled form) and ask inference: the
    result now, or (`background`) the queued job."""
    name = ""  # the blob this request put, deleted if inference refuses or does not answer
    if archive is not None:
        name = f"archives/{uuid.uuid4().hex}/{_safe_filename(archive.filename)}"
        ref = await put_reader(gw.js, subjects.BUCKET_UPLOADS, name, archive.file)
        command = msgspec.structs.replace(command, image_archive=ref)
    elif len(text) <= min(INLINE_LIST_BYTES, gw.nc.max_payload // 4):
        # Small lists (every synchronous one) travel inside the command: no Object Store trips.
        listing = text.decode("utf-8", errors="replace")
        command = msgspec.structs.replace(command, image_list_text=listing)
    else:
        name = f"lists/{uuid.uuid4().hex}.txt"
        ref = await put_bytes(gw.js, subjects.BUCKET_UPLOADS, name, text)
        command = msgspec.structs.replace(command, image_list=ref)
    # A result that fits in one message comes back inside the reply (no blob to read back).
    command = msgspec.structs.replace(command, inline_result=True)
    store = await gw.js.object_store(subjects.BUCKET_UPLOADS)
    try:
        body, rejected = await bus_request(
            gw.nc,
            subjects.CMD_INFERENCE_CLASSIFY_MANY,
            command,
            timeout=QUEUE_TIMEOUT if command.background else TIMEOUT,
        )
    except TimeoutError as e:
        await _delete(store, name)
        raise Unavailable("The inference service did not answer in time; retry") from e
    reply = rejected or codec.classify_many_reply.decode(body)
    if isinstance(reply, Rejected):
        await _delete(store, name)
        raise CommandRejected(reply.code, reply.message, reply.field)
    if isinstance(reply, ClassifyManyQueued):
        return reply  # the job owns the list now; inference deletes it when done
    if reply.inline is not None:
        return reply.inline
    try:
        return await _read(gw, reply.result.name, ManyResult)
    finally:
        await _delete(store, reply.result.name)


def _safe_filename(filename: str) -> str:
    """The upload's base name reduced to safe characters (it keeps the archive's type)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".") or "archive"


async def status(gw: Gateway, run_id: str) -> ManyStatus | None:
    """A job's status, or None when there is no such job."""
    try:
        return await _read(gw, many_status_name(run_id), ManyStatus)
    except (ObjectNotFoundError, ObjectDeletedError):
        return None


async def result(gw: Gateway, state: ManyStatus) -> ManyResult:
    """The result of a finished job (kept: the page may be reloaded)."""
    if state.result is None:
        raise Unavailable("The job has no result")
    try:
        return await _read(gw, state.result.name, ManyResult)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise Unavailable("The result of this job is gone") from e


async def _read(gw: Gateway, name: str, type_: type[T]) -> T:
    data = await read_bytes(gw.js, subjects.BUCKET_UPLOADS, name)
    return msgspec.json.decode(data, type=type_)


async def _delete(store: Any, name: str) -> None:
    if not name:
        return
    with contextlib.suppress(Exception):
        await store.delete(name)


def result_json(result: ManyResult) -> dict[str, Any]:
    """DIGITS's `classifications` plus what DIGITS only showed in HTML, and the bad lines."""
    # The decoded `(label, percent)` tuples are shared, not copied: they encode as the same
    # `[label, percent]` arrays, and a result has up to 100 000 rows.
    labels = result.labels
    body: dict[str, Any] = {
        "job_id": result.job_id,
        "snapshot_epoch": result.snapshot_epoch,
        "classifications": {r.path: r.predictions for r in result.results},
        "labels": labels,
        "results": [
            {
                "path": r.path,
                "ground_truth": labels[r.label] if r.label is not None else None,
                "top1": labels[r.top1] if r.top1 < len(labels) else None,
                "predictions": r.predictions,
            }
            for r in result.results
        ],
        "errors": msgspec.to_builtins(result.errors),
    }
    if result.top1_accuracy is not None:
        body |= {
            "top1_accuracy": result.top1_accuracy,
            "top5_accuracy": result.top5_accuracy,
            "confusion_matrix": result.confusion,
            "per_class_accuracy": dict(
                zip(result.labels, result.per_class_accuracy or [], strict=False)
            ),
        }
    if result.top_n:
        body["top_n"] = msgspec.to_builtins(result.top_n)
    return body


def _thumbnail_token(user: str, path: str) -> str:
    message = f"{user}\0{path}".encode()
    return hmac.new(_THUMBNAIL_KEY, message, hashlib.sha256).hexdigest()[:32]


def thumbnails(body: dict[str, Any], user: str | None, data_roots: list[str]) -> dict[str, str]:
    """Thumbnail links (path → URL) for the rows of a result page whose image the gateway can
    read too: absolute paths (an archive's members are relative, and the archive is gone once
    the job ends) when data roots are configured; rows inference refused are not in `results`."""
    if not data_roots:
        return {}
    who = user or ""
    return {
        row["path"]: f"{THUMBNAIL_URL}?"
        + urlencode({"path": row["path"], "t": _thumbnail_token(who, row["path"])})
        for row in body.get("results", [])
        if row["path"].startswith("/")
    }


def thumbnail(user: str | None, path: str, token: str, data_roots: list[str]) -> tuple[bytes, str]:
    """The image behind a signed thumbnail link and its media type; LookupError when the link
    was not signed for this user, or the file is not (or no longer) an image inside the roots."""
    if not hmac.compare_digest(_thumbnail_token(user or "", path), token):
        raise LookupError("This thumbnail link is not valid (reload the result page)")
    roots = [Path(r).resolve() for r in data_roots]
    target = Path(path).resolve()
    if not any(target.is_relative_to(r) for r in roots) or not target.is_file():
        raise LookupError("The image is no longer there")
    if target.stat().st_size > THUMBNAIL_MAX_BYTES:
        raise LookupError("The image is too large to show as a thumbnail")
    data = target.read_bytes()
    kind = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise LookupError("Not an image the browser can show")
    return data, kind
