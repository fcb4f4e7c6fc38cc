"""`/api/v1/uploads`: large files sent in chunks, resumable after a dropped connection.

The contract (tus-like; used by the `digits` CLI and the browser's upload forms). Every route
needs a signed-in user who may create jobs (session cookie + CSRF header, or a Bearer token), and
an upload is seen and written by its owner only: anyone else gets 404, as for an unknown id.

`POST /api/v1/uploads` JSON `{"filename": str, "size": int, "purpose": "dataset"|"pretrained",
"sha256": hex (optional)}` → 201 with the upload's status (below) and `Location`.
    400 names the bad field. 413 `{"error": {"message": <reason>, "type":
    "RequestEntityTooLarge"}}` when `size` would take the user past their quota
    (DIGITS_GATEWAY_UPLOAD_QUOTA_BYTES, summed over their uploads not yet used by a job) or
    the data disk under its free-space floor (DIGITS_GATEWAY_UPLOAD_MIN_FREE_BYTES; the
    reservation counts the spool file and its copy in the Object Store).

`PATCH /api/v1/uploads/{id}` with headers `Upload-Offset: <n>` and `Content-Type:
application/offset+octet-stream`, the body the next bytes (at most
DIGITS_GATEWAY_UPLOAD_CHUNK_BYTES, 16 MiB; this route alone may exceed the general body cap)
→ 200 with the status.
    409 `{"error": {...}, "offset": <current>}` (and the `Upload-Offset` header) when `<n>` is not
    the current offset, or the upload already has all its bytes: resume from `offset`.
    413 when the body is over the chunk limit, runs past the declared size, or the disk reached
    its floor. 415 for another Content-Type. 400 for a missing or malformed Upload-Offset.
    Bytes that arrived before a connection dropped are kept: ask for the offset and go on.
    The PATCH that brings the last byte moves the file into the Object Store before it answers
    (a few seconds a GB: give that request a generous read timeout); if the connection drops
    meanwhile, the move goes on and the status reads `"state": "complete"` once it is done (a
    PATCH at `Upload-Offset: <size>` while it is `storing` waits for the move and answers 200;
    a move that failed answers 503 and is tried again by that PATCH or within 10 minutes).
    With `sha256` given at create, a mismatch answers 422 and discards the upload.

`GET /api/v1/uploads/{id}` → 200 with the status; `HEAD` → 200, the headers `Upload-Offset`
and `Upload-Length` only. `DELETE /api/v1/uploads/{id}` → 200 `{"id"}`: abandoned, its bytes
removed. An upload not used by a job expires DIGITS_GATEWAY_UPLOAD_EXPIRY_HOURS (24) after its
last write and is removed.

The status: `{"id", "filename", "size", "purpose", "offset", "state", "expires_at", "job_id"}`,
`state` one of `receiving` (send more), `storing` (all bytes in, moving to the Object Store),
`complete` (ready to be used), `used` (a job took it: `job_id`). Answers with a status (and
HEAD's) carry the `Upload-Offset` and `Upload-Length` headers; a 409 carries `Upload-Offset`.

Using a complete upload: `upload_id` in place of the multipart file. Datasets: the form or
`POST /api/v1/datasets` JSON with `"method": "upload", "upload_id": id` (purpose "dataset");
pretrained models: `POST /pretrained_models/upload_archive` with `upload_id` instead of
`archive` (purpose "pretrained"). An upload is used once: a second use is 409; an unknown,
another user's, incomplete or other-purpose upload is a 400 naming `upload_id`. A create the
service refuses leaves the upload complete, to be used again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar import (
    Controller,
    Litestar,
    MediaType,
    Request,
    Response,
    delete,
    get,
    head,
    patch,
    post,
)
from litestar.exceptions import InternalServerException

from digits_gateway.controllers._common import require_user
from digits_gateway.deps import Gateway
from digits_gateway.errors import Unavailable
from digits_gateway.schemas import UploadCreate, UploadStatus
from digits_gateway.settings import Settings
from digits_gateway.uploads import OffsetMismatch, Upload, Uploads

log = structlog.get_logger(__name__)

CHUNK_TYPE = "application/offset+octet-stream"
SWEEP_SECONDS = 600.0  # expired uploads are looked for this often (and at start)
# What any PATCH may carry whatever DIGITS_GATEWAY_UPLOAD_CHUNK_BYTES says (which is checked in
# the handler): a body the framework reads itself before the handler (a form, for its CSRF
# field) is bounded too.
CHUNK_CEILING = 256 * 1024 * 1024


def registry(gw: Gateway) -> Uploads:
    """The uploads the lifespan loaded."""
    if gw.uploads is None:
        raise Unavailable("Uploads are not ready yet; retry")
    return gw.uploads


def _headers(upload: Upload) -> dict[str, str]:
    return {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.size)}


def _status(upload: Upload) -> UploadStatus:
    return UploadStatus(**upload.status())  # type: ignore[arg-type]


def _answer(upload: Upload, status_code: int = 200, **headers: str) -> Response[UploadStatus]:
    return Response(_status(upload), status_code=status_code, headers=_headers(upload) | headers)


def _bad_offset(raw: str | None) -> Response[Any] | int:
    """The Upload-Offset header as a number, or the 400 naming it."""
    if raw is not None and raw.strip().isdigit():
        return int(raw.strip())
    message = "Upload-Offset must be the number of bytes already sent (GET the upload for it)"
    return Response(
        {"errors": {"Upload-Offset": [message]}}, status_code=400, media_type=MediaType.JSON
    )


class UploadApi(Controller):
    """Chunked, resumable uploads of dataset archives and pretrained models."""

    path = "/api/v1/uploads"
    tags = ["uploads"]

    @post("/", status_code=201)
    async def create_upload(
        self, request: Request[Any, Any, Any], gw: Gateway, data: UploadCreate
    ) -> Response[UploadStatus]:
        """Announce an upload; 413 with the reason when over the quota or the free-space floor."""
        user = require_user(request)
        upload = registry(gw).create(
            user.username, data.filename, data.size, data.purpose, data.sha256
        )
        return _answer(upload, 201, Location=f"{self.path}/{upload.id}")

    @patch("/{upload_id:str}", request_max_body_size=CHUNK_CEILING)
    async def append_upload(
        self, request: Request[Any, Any, Any], gw: Gateway, upload_id: str
    ) -> Response[Any]:
        """The next bytes at `Upload-Offset`; 409 with the current offset when it is not that."""
        user = require_user(request)
        uploads = registry(gw)
        uploads.owned(upload_id, user.username)  # 404 before anything else is said
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != CHUNK_TYPE:
            message = f"Send the bytes as {CHUNK_TYPE}"
            return Response(
                {"error": {"message": message, "type": "UnsupportedMediaType"}},
                status_code=415,
            )
        offset = _bad_offset(request.headers.get("upload-offset"))
        if isinstance(offset, Response):
            return offset
        try:
            upload = await uploads.append(
                upload_id, user.username, offset, request.content_length, request.stream()
            )
        except OffsetMismatch as e:
            return Response(
                {"error": {"message": e.message, "type": e.kind}, "offset": e.offset},
                status_code=409,
                headers={"Upload-Offset": str(e.offset)},
            )
        except InternalServerException:  # the client went away mid-chunk: what came is kept
            kept = uploads.owned(upload_id, user.username)
            log.info("upload_interrupted", upload_id=upload_id, offset=kept.offset)
            return Response(None, status_code=400)  # nobody reads it
        return _answer(upload)

    @get("/{upload_id:str}")
    async def get_upload(
        self, request: Request[Any, Any, Any], gw: Gateway, upload_id: str
    ) -> Response[UploadStatus]:
        """Where the upload stands (its `offset` is where to resume)."""
        return _answer(registry(gw).owned(upload_id, require_user(request).username))

    @head("/{upload_id:str}")
    async def head_upload(
        self, request: Request[Any, Any, Any], gw: Gateway, upload_id: str
    ) -> Response[None]:
        """The offset and length as headers only."""
        upload = registry(gw).owned(upload_id, require_user(request).username)
        return Response(None, headers=_headers(upload))

    @delete("/{upload_id:str}", status_code=200)
    async def delete_upload(
        self, request: Request[Any, Any, Any], gw: Gateway, upload_id: str
    ) -> dict[str, str]:
        """Abandon the upload: its bytes are removed."""
        await registry(gw).abandon(upload_id, require_user(request).username)
        return {"id": upload_id}


def lifespan(settings: Settings) -> Any:
    """Load the uploads a previous run left and sweep expired ones while the app runs (after
    the gateway's own lifespan, whose NATS connection they use)."""

    @contextlib.asynccontextmanager
    async def uploads_lifespan(app: Litestar) -> AsyncIterator[None]:
        gw: Gateway = app.state.gateway
        uploads = Uploads(settings, gw.js)
        await asyncio.to_thread(uploads.load)
        gw.uploads = uploads
        sweeper = asyncio.create_task(_sweep_forever(uploads), name="upload-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    return uploads_lifespan


async def _sweep_forever(uploads: Uploads) -> None:
    while True:
        try:
            await uploads.sweep()
        except Exception:
            log.exception("upload_sweep_failed")
        await asyncio.sleep(SWEEP_SECONDS)
