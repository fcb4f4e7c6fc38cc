"""Delete what classify-many and other inference requests left in the uploads bucket, in time.

Rule: a classify-many job's blobs (`classify-many/<run_id>/…`: status, result, uploaded archive)
go `retention` seconds after they were last written (the status is rewritten until the job
ends, so this counts from the end), or at the first sweep after the model they belong to is
deleted. Blobs that a reader deletes once read go later in case that reader died: sync
results, visualizations and exports after `TRANSIENT` seconds, uploaded lists and archives
(read when a queued job starts, which may be much later) after `retention`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectDeletedError, ObjectNotFoundError

from digits_inference.registry import Registry
from digits_proto import subjects
from digits_proto.inference import ManyStatus
from digits_proto.runtime import read_bytes

log = structlog.get_logger(__name__)

RUNS = "classify-many/"
KEYS = "classify-many/keys/"  # which job an Idempotency-Key made (runkeys.py): kept like a job
TRANSIENT = 3600.0  # seconds: blobs their reader deletes at once; a leftover is a crash's trace
TRANSIENT_PREFIXES = ("visualizations/", "exports/")
INPUT_PREFIXES = ("lists/", "archives/")


def age_seconds(mtime: str | None, now: float) -> float:
    """Seconds since an Object Store `mtime` (ISO 8601); 0 when unknown (never swept by age)."""
    if not mtime:
        return 0.0
    try:
        return now - datetime.fromisoformat(mtime.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def run_of(name: str) -> str:
    """`<run_id>` of `classify-many/<run_id>/<file>`; "" for a synchronous result blob."""
    rest = name[len(RUNS) :]
    return rest.split("/", 1)[0] if "/" in rest else ""


class Sweeper:
    """One sweep lists the uploads bucket once and deletes what the rule says is due."""

    def __init__(self, js: JetStreamContext, registry: Registry, retention: float):
        self.js = js
        self.registry = registry
        self.retention = retention
        self._owners: dict[str, str] = {}  # run_id → model id, read once from its status

    async def sweep(self, now: float | None = None) -> list[str]:
        """Delete the due blobs; returns their names."""
        now = time.time() if now is None else now
        store = await self.js.object_store(subjects.BUCKET_UPLOADS)
        try:
            infos = await store.list(ignore_deletes=True)
        except NotFoundError:
            return []
        runs: dict[str, list[tuple[str, float]]] = {}
        due: list[str] = []
        for info in infos:
            name, age = info.name, age_seconds(info.mtime, now)
            if name.startswith(KEYS):
                if age > self.retention:
                    due.append(name)
            elif name.startswith(RUNS) and run_of(name):
                runs.setdefault(run_of(name), []).append((name, age))
            elif (name.startswith((RUNS, *TRANSIENT_PREFIXES)) and age > TRANSIENT) or (
                name.startswith(INPUT_PREFIXES) and age > self.retention
            ):
                due.append(name)
        for run_id, blobs in runs.items():
            newest = min(age for _, age in blobs)
            if newest > self.retention or await self._model_gone(run_id):
                due.extend(name for name, _ in blobs)
                self._owners.pop(run_id, None)
        for name in due:
            with contextlib.suppress(ObjectNotFoundError, ObjectDeletedError, NotFoundError):
                await store.delete(name)
        if due:
            log.info("uploads_swept", deleted=len(due))
        return due

    async def _model_gone(self, run_id: str) -> bool:
        owner = self._owners.get(run_id)
        if owner is None:
            try:
                data = await read_bytes(
                    self.js, subjects.BUCKET_UPLOADS, f"{RUNS}{run_id}/status.json"
                )
                owner = msgspec.json.decode(data, type=ManyStatus).job_id
            except (ObjectNotFoundError, ObjectDeletedError, NotFoundError, msgspec.DecodeError):
                return False  # no readable status (yet): age alone decides
            self._owners[run_id] = owner
        model = await self.registry.model(owner)
        return model.deleted or not model.exists

    async def run_forever(self, interval: float, stop: asyncio.Event) -> None:
        """Sweep every `interval` seconds until `stop` (a failed sweep is retried next time)."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.warning("uploads_sweep_failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
