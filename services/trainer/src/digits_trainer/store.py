"""The trainer's view of JetStream: model and dataset aggregates, tickets, metrics, blobs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from digits_proto import codec, headers, subjects, versions
from digits_proto.base import BlobRef
from digits_proto.models import (
    MetricsRecorded,
    ModelEvents,
    SnapshotSaved,
    TrainingProgressed,
    TrainModelTicket,
)
from digits_proto.runtime import (
    EventStore,
    delete_prefix,
    fetch,
    publish_once,
    put_bytes,
    put_file,
    read_bytes,
    trace_headers,
)
from digits_trainer.domain import DatasetState, ModelState, fold_dataset, fold_model, pick_snapshot

# Job ids are `YYYYMMDD-HHMMSS-xxxx`; anything else must never reach a subject (`>` or `.`
# would turn "this job's events" into a wildcard).
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_job_id(job_id: str) -> bool:
    """True if `job_id` can name an aggregate subject."""
    return bool(JOB_ID.match(job_id))


def resume_point_name(model_id: str) -> str:
    """The blob holding a job's latest resume point (one per job, overwritten, not a snapshot:
    no event lists it and retention never counts it; deleting the job's files takes it)."""
    return f"{model_id}/resume.ckpt"


@dataclass(frozen=True)
class Store:
    """Everything the trainer reads and writes on the bus, in the trainer's terms."""

    js: JetStreamContext
    models: EventStore[ModelEvents]
    datasets: EventStore
    metrics: EventStore

    @classmethod
    def on(cls, js: JetStreamContext) -> Store:
        """The store over one JetStream context."""
        return cls(
            js=js,
            models=EventStore(js, subjects.STREAM_MODELS, codec.model_events),
            datasets=EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events),
            metrics=EventStore(js, subjects.STREAM_METRICS, codec.metric_events),
        )

    async def model(self, model_id: str) -> tuple[ModelState | None, int]:
        """A model job's state and the sequence of its last event."""
        events, seq = await self.models.load(subjects.model_events(model_id))
        return fold_model(events), seq

    async def start_snapshot(self, model_id: str, epoch: float | None) -> SnapshotSaved:
        """The snapshot a fine-tuning job starts from: `model_id`'s at `epoch` (None or 0: its
        latest), or with -1 the one `model_id` itself started from (DIGITS's "pretrained model"
        of a job), followed back through jobs that were fine-tuned in turn. ValueError if none."""
        seen: set[str] = set()
        while True:
            previous, _ = await self.model(model_id)
            if epoch != -1:
                return pick_snapshot(previous, epoch)
            if previous is None or previous.deleted or model_id in seen:
                raise ValueError("the previous network has no snapshot")
            if previous.spec.method not in ("previous", "pretrained"):
                raise ValueError("the previous network did not start from a pretrained model")
            seen.add(model_id)
            model_id, epoch = previous.spec.previous_network, previous.spec.previous_snapshot

    async def dataset(self, dataset_id: str) -> DatasetState | None:
        """A dataset's state (the datasets service owns it; we only read)."""
        events, _ = await self.datasets.load(subjects.dataset_events(dataset_id))
        return fold_dataset(events)

    async def append(self, model_id: str, events: Sequence[ModelEvents], seq: int) -> int:
        """Append to a model job, expecting its last event at `seq`."""
        return await self.models.append(subjects.model_events(model_id), events, seq)

    async def update(
        self, model_id: str, decide: Callable[[list[ModelEvents]], Sequence[ModelEvents]]
    ) -> int:
        """Load, decide and append to a model job (retried on concurrent appends)."""
        _, seq = await self.models.update(subjects.model_events(model_id), decide)
        return seq

    async def submit_ticket(self, model_id: str) -> None:
        """Queue the job for a trainer worker (deduplicated by the job id)."""
        ticket = TrainModelTicket(model_id=model_id)
        hdrs = {headers.MSG_ID: model_id, headers.SCHEMA: versions.schema_header(ticket)}
        await publish_once(
            self.js,
            subjects.WORK_TRAIN_MODEL,
            codec.encode(ticket),
            headers=trace_headers(hdrs, command=True),
        )

    async def record_metrics(self, event: MetricsRecorded) -> None:
        """One metric point on the job's metrics subject; a resend of a point is deduplicated."""
        msg_id = f"{event.model_id}:{event.phase}:{event.iteration}"
        await publish_once(
            self.js,
            subjects.model_metrics(event.model_id),
            codec.encode(event),
            headers=trace_headers(
                {headers.MSG_ID: msg_id, headers.SCHEMA: versions.schema_header(event)}
            ),
        )

    async def publish_progress(self, event: TrainingProgressed) -> None:
        """The job's latest progress, on its progress subject (the stream keeps the last few)."""
        await publish_once(
            self.js,
            subjects.model_progress(event.model_id),
            codec.encode(event),
            headers=trace_headers(
                {headers.MSG_ID: event.event_id, headers.SCHEMA: versions.schema_header(event)}
            ),
        )

    async def recorded_iterations(self, model_id: str) -> dict[str, int]:
        """The last iteration recorded per phase: a resumed attempt must not repeat points."""
        points, _ = await self.metrics.load(subjects.model_metrics(model_id))
        last: dict[str, int] = {}
        for point in points:
            last[point.phase] = max(last.get(point.phase, 0), point.iteration)
        return last

    async def fetch(self, ref: BlobRef, cache_dir: Path) -> Path:
        """A local copy of a blob (cached by digest)."""
        return await fetch(self.js, ref, cache_dir)

    async def fetch_resume_point(self, model_id: str, cache_dir: Path) -> Path | None:
        """A local copy of the job's latest resume point, None if it has none."""
        bucket = await self.js.object_store(subjects.BUCKET_MODELS)
        name = resume_point_name(model_id)
        try:
            info = await bucket.get_info(name)
        except NotFoundError:
            return None
        if info.deleted:
            return None
        ref = BlobRef(
            bucket=subjects.BUCKET_MODELS, name=name, digest=info.digest or "", size=info.size or 0
        )
        return await self.fetch(ref, cache_dir)

    async def put_model_file(self, name: str, path: str | Path) -> BlobRef:
        """Upload one of a model's files to the models bucket."""
        return await put_file(self.js, subjects.BUCKET_MODELS, name, path)

    async def put_model_bytes(self, name: str, data: bytes) -> BlobRef:
        """Upload a small file of a model from memory (a log its disk could not take)."""
        return await put_bytes(self.js, subjects.BUCKET_MODELS, name, data)

    async def read_model_file(self, name: str) -> bytes | None:
        """A small file of a model (its log), None if there is none."""
        try:
            return await read_bytes(self.js, subjects.BUCKET_MODELS, name)
        except NotFoundError:
            return None

    async def delete_model_files(self, names: Sequence[str]) -> None:
        """Delete some of a model's files (retention), ignoring those already gone."""
        bucket = await self.js.object_store(subjects.BUCKET_MODELS)
        for name in names:
            try:
                await bucket.delete(name)
            except Exception:  # noqa: BLE001 - already deleted (a resumed attempt's retry)
                continue

    async def forget_model(self, model_id: str) -> None:
        """Delete a job's snapshots and its metric series."""
        await delete_prefix(self.js, subjects.BUCKET_MODELS, f"{model_id}/")
        await self.js.purge_stream(
            subjects.STREAM_METRICS, subject=subjects.model_metrics(model_id)
        )
