"""Chunked uploads: spooled to disk at their offset, bounded by a quota and the free-space floor,
moved into the Object Store once complete, used once by a job, expired when left.

Each upload is a folder under `<data_dir>/gateway/uploads/<id>/`: `meta.json` (who, what, state)
and `data` (the bytes so far, fsynced before an offset is answered). The file's length is the
offset, so a gateway restarted mid-upload resumes where the disk says. The HTTP contract is in
`controllers/uploads.py`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import BinaryIO, Literal

import msgspec
import structlog
from nats.js import JetStreamContext

from digits_gateway.errors import GatewayError, Unavailable
from digits_gateway.forms import FormErrors
from digits_gateway.settings import Settings
from digits_proto import subjects
from digits_proto.base import BlobRef, utcnow
from digits_proto.runtime import put_reader

log = structlog.get_logger(__name__)

Purpose = Literal["dataset", "pretrained"]
State = Literal["receiving", "storing", "complete", "used"]
ID_RE = re.compile(r"^[0-9a-f]{32}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Object names as the multipart forms name theirs: a dataset owns its `datasets/…` blobs
# (removed with it), the trainer copies a pretrained archive and the gateway removes it.
OBJECT_NAMES = {"dataset": "datasets/{id}/upload_archive", "pretrained": "pretrained/{id}/archive"}
WRITE_BLOCK = 1024 * 1024  # bytes gathered from the request before one write in a thread


class Upload(msgspec.Struct, kw_only=True):
    """One upload's meta.json; on loading, the data file's length says the offset."""

    id: str
    owner: str
    filename: str
    size: int
    purpose: Purpose
    sha256: str = ""
    state: State = "receiving"
    expires_at: datetime
    blob: BlobRef | None = None
    job_id: str = ""
    offset: int = 0

    def status(self) -> dict[str, object]:
        """What GET answers."""
        keys = ("id", "filename", "size", "purpose", "offset", "state", "expires_at", "job_id")
        return {k: getattr(self, k) for k in keys}


class UploadNotFound(GatewayError):
    """No such upload, or another user's (they are not told which)."""

    code = 404

    def __init__(self) -> None:
        super().__init__("Upload not found")


class UploadTooLarge(GatewayError):
    """Over the user's quota, the disk's free-space floor, the chunk limit or the declared size."""

    code = 413


class OffsetMismatch(GatewayError):
    """The chunk is not at the upload's current offset (which the answer carries)."""

    code = 409

    def __init__(self, upload: Upload):
        what = "all its bytes" if upload.state != "receiving" else f"{upload.offset} bytes"
        super().__init__(f"The upload has {what}; send from offset {upload.offset}")
        self.offset = upload.offset


class UploadUsed(GatewayError):
    """The upload was already used by a job."""

    code = 409


class DigestMismatch(GatewayError):
    """The bytes received do not have the SHA-256 announced at create; the upload is gone."""

    code = 422


def _digest_of(sha256_hex: str) -> str:
    """The Object Store's digest notation of a hex SHA-256."""
    return "SHA-256=" + base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).decode()


class Uploads:
    """Every upload this gateway holds, on its disk; one lock per upload orders its writes."""

    def __init__(
        self, settings: Settings, js: JetStreamContext, clock: Callable[[], datetime] = utcnow
    ):
        self.root = settings.uploads_dir
        self.settings, self.js, self.clock = settings, js, clock
        self.entries: dict[str, Upload] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._stores: dict[str, asyncio.Task[None]] = {}
        self._in_use: set[str] = set()

    # -- keeping the folder ----------------------------------------------------------------
    def load(self) -> None:
        """Read what a previous run left: offsets from the data files' lengths."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in self.root.iterdir():
            try:
                upload = msgspec.json.decode((folder / "meta.json").read_bytes(), type=Upload)
            except (OSError, msgspec.DecodeError):
                shutil.rmtree(folder, ignore_errors=True)  # a create that died half-way
                continue
            data = folder / "data"
            upload.offset = data.stat().st_size if data.exists() else upload.size
            self.entries[upload.id] = upload

    def _save(self, upload: Upload) -> None:
        folder = self.root / upload.id
        tmp = folder / "meta.json.tmp"
        tmp.write_bytes(msgspec.json.encode(upload))
        os.replace(tmp, folder / "meta.json")

    def _forget(self, upload_id: str) -> None:
        self.entries.pop(upload_id, None)
        self._locks.pop(upload_id, None)
        shutil.rmtree(self.root / upload_id, ignore_errors=True)

    # -- the routes' operations -----------------------------------------------------------
    def owned(self, upload_id: str, owner: str) -> Upload:
        """The owner's upload; 404 for anyone else (and for an unknown or malformed id)."""
        upload = self.entries.get(upload_id) if ID_RE.match(upload_id) else None
        if upload is None or upload.owner != owner:
            raise UploadNotFound()
        return upload

    def create(
        self, owner: str, filename: str, size: int, purpose: Purpose, sha256: str = ""
    ) -> Upload:
        """A new, empty upload, once the quota and the free-space floor allow `size` more."""
        self._check_quota(owner, size)
        self._check_floor(2 * size + self._reserved(), f"an upload of {size} bytes")
        upload = Upload(
            id=uuid.uuid4().hex,
            owner=owner,
            filename=filename,
            size=size,
            purpose=purpose,
            sha256=sha256,
            expires_at=self._expiry(),
        )
        folder = self.root / upload.id
        folder.mkdir(parents=True, mode=0o700)
        (folder / "data").touch(mode=0o600)
        self._save(upload)
        self.entries[upload.id] = upload
        log.info("upload_created", upload_id=upload.id, owner=owner, size=size, purpose=purpose)
        return upload

    async def append(
        self,
        upload_id: str,
        owner: str,
        offset: int,
        length: int | None,
        body: AsyncIterator[bytes],
    ) -> Upload:
        """Write `body` at `offset`; bytes that arrived before a failure are kept (fsynced),
        so the client resumes from the offset it reads next. The last byte stores the file."""
        upload = self.owned(upload_id, owner)
        async with self._locks.setdefault(upload_id, asyncio.Lock()):
            if upload.state != "receiving" or offset != upload.offset:
                if upload.state == "storing" and offset == upload.size:
                    await self._store(upload)  # asked again after a cut or a failed move
                    return upload
                raise OffsetMismatch(upload)
            limit = min(self.settings.upload_chunk_bytes, upload.size - upload.offset)
            if length is not None and length > limit:
                raise UploadTooLarge(self._over(upload, length))
            self._check_floor(length or limit, "this chunk")
            with open(self.root / upload_id / "data", "r+b") as out:
                out.seek(upload.offset)
                try:
                    await self._copy(body, out, limit, upload)
                finally:
                    upload.offset = out.tell()
                    upload.expires_at = self._expiry()
                    await asyncio.to_thread(_flush, out)
                    self._save(upload)
            if upload.offset == upload.size:
                upload.state = "storing"
                self._save(upload)
        if upload.state == "storing":
            await self._store(upload)
        return upload

    async def _copy(
        self, body: AsyncIterator[bytes], out: BinaryIO, limit: int, upload: Upload
    ) -> None:
        pending, received = bytearray(), 0
        try:
            async for piece in body:
                received += len(piece)
                if received > limit:
                    raise UploadTooLarge(self._over(upload, received))
                pending += piece
                if len(pending) >= WRITE_BLOCK:
                    await asyncio.to_thread(out.write, bytes(pending))
                    pending.clear()
        finally:
            if pending:
                await asyncio.to_thread(out.write, bytes(pending))

    def _over(self, upload: Upload, length: int) -> str:
        room = upload.size - upload.offset
        if length > room:
            return f"The chunk of {length} bytes runs past the declared size ({room} bytes left)"
        return f"A chunk is at most {self.settings.upload_chunk_bytes} bytes (this one: {length})"

    async def abandon(self, upload_id: str, owner: str) -> None:
        """DELETE: the bytes go, from the disk and (when stored) the Object Store."""
        upload = self.owned(upload_id, owner)
        if upload_id in self._in_use:
            raise UploadUsed("The upload is being used by a job being created")
        async with self._locks.setdefault(upload_id, asyncio.Lock()):
            await self._drop(upload)

    async def _drop(self, upload: Upload) -> None:
        task = self._stores.pop(upload.id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if upload.blob is not None and upload.state != "used":
            await self._delete_blob(upload.blob)
        self._forget(upload.id)

    async def _delete_blob(self, ref: BlobRef) -> None:
        with contextlib.suppress(Exception):  # already gone
            store = await self.js.object_store(ref.bucket)
            await store.delete(ref.name)

    # -- into the Object Store ---------------------------------------------------------------
    async def _store(self, upload: Upload) -> None:
        """Move the complete file into the uploads bucket; one move per upload, which goes on
        if the request that started it is cut (the caller's wait is shielded)."""
        task = self._stores.get(upload.id)
        if task is None or task.done():
            task = asyncio.create_task(self._move(upload), name=f"upload-{upload.id}")
            self._stores[upload.id] = task
        await asyncio.shield(task)

    async def _move(self, upload: Upload) -> None:
        name = OBJECT_NAMES[upload.purpose].format(id=upload.id)
        data = self.root / upload.id / "data"
        try:
            with open(data, "rb") as f:
                ref = await put_reader(self.js, subjects.BUCKET_UPLOADS, name, f)
        except Exception as e:
            log.warning("upload_store_failed", upload_id=upload.id, error=repr(e))
            raise Unavailable(
                "The upload could not be moved into the Object Store; PATCH again at "
                f"Upload-Offset {upload.size} (no body needed) or wait: it is retried"
            ) from e
        if upload.sha256 and ref.digest != _digest_of(upload.sha256):
            await self._delete_blob(ref)
            self._forget(upload.id)
            raise DigestMismatch(
                "The bytes received do not have the SHA-256 given at create; upload again"
            )
        upload.blob, upload.state = ref, "complete"
        self._save(upload)
        data.unlink(missing_ok=True)  # the spool's room back: the Object Store holds it now
        log.info("upload_stored", upload_id=upload.id, name=name, size=ref.size)

    # -- used by a job ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def use(
        self, upload_id: str, owner: str, purpose: Purpose, field: str = "upload_id"
    ) -> AsyncIterator[Claim]:
        """The stored blob for one create. The upload is used once the create is accepted (or
        perhaps accepted: a 503 after sending); a refused create leaves it to be used again."""
        upload = self.entries.get(upload_id) if ID_RE.match(upload_id) else None
        if upload is None or upload.owner != owner:
            raise FormErrors({field: [f"No upload {upload_id!r} of yours (expired?)"]})
        if upload.state == "used" or upload_id in self._in_use:
            raise UploadUsed(f"Upload {upload_id} was already used (job {upload.job_id or '?'})")
        if upload.purpose != purpose:
            raise FormErrors({field: [f"The upload is for a {upload.purpose}, not a {purpose}"]})
        if upload.state == "storing":
            await self._store(upload)
        if upload.blob is None:
            raise FormErrors(
                {field: [f"The upload is not complete: {upload.offset} of {upload.size} bytes"]}
            )
        claim = Claim(ref=upload.blob)
        self._in_use.add(upload_id)
        try:
            yield claim
        except Unavailable:
            self._used(upload, "")
            raise
        else:
            self._used(upload, claim.job_id)
        finally:
            self._in_use.discard(upload_id)

    def _used(self, upload: Upload, job_id: str) -> None:
        upload.state, upload.job_id, upload.expires_at = "used", job_id, self._expiry()
        (self.root / upload.id / "data").unlink(missing_ok=True)
        self._save(upload)  # kept until it expires, so that a second use reads 409
        log.info("upload_used", upload_id=upload.id, job_id=job_id)

    # -- limits and expiry ---------------------------------------------------------------------
    def _expiry(self) -> datetime:
        return self.clock() + timedelta(hours=self.settings.upload_expiry_hours)

    def _check_quota(self, owner: str, size: int) -> None:
        held = sum(u.size for u in self.entries.values() if u.owner == owner and u.state != "used")
        quota = self.settings.upload_quota_bytes
        if held + size > quota:
            raise UploadTooLarge(
                f"Upload quota exceeded: {size} bytes asked, {held} held in uploads not yet "
                f"used by a job, the quota is {quota} bytes (DIGITS_GATEWAY_UPLOAD_QUOTA_BYTES)"
            )

    def _reserved(self) -> int:
        """Bytes promised to uploads still arriving: their rest on disk and in the store."""
        return sum(
            (u.size - u.offset) + u.size
            for u in self.entries.values()
            if u.state in ("receiving", "storing")
        )

    def _check_floor(self, needed: int, what: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        floor = self.settings.upload_min_free_bytes
        left = shutil.disk_usage(self.root).free - needed
        if left < floor:
            raise UploadTooLarge(
                f"Not enough free space for {what}: it would leave {max(left, 0)} bytes free on "
                f"the data disk, under the free-space floor of {floor} bytes "
                f"(DIGITS_GATEWAY_UPLOAD_MIN_FREE_BYTES)"
            )

    async def sweep(self) -> int:
        """Remove expired uploads (and their stored blobs, unless a job used them); resume the
        moves a restart interrupted. The number removed."""
        now, removed = self.clock(), 0
        for upload in list(self.entries.values()):
            if upload.expires_at <= now and upload.id not in self._in_use:
                async with self._locks.setdefault(upload.id, asyncio.Lock()):
                    await self._drop(upload)
                removed += 1
                log.info("upload_expired", upload_id=upload.id, owner=upload.owner)
            elif upload.state == "storing" and (
                upload.id not in self._stores or self._stores[upload.id].done()
            ):
                with contextlib.suppress(GatewayError):
                    await self._store(upload)
        return removed


class Claim(msgspec.Struct, kw_only=True):
    """An upload being used: the blob, and the job that took it once the create answers."""

    ref: BlobRef
    job_id: str = ""


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
