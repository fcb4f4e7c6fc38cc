"""The build worker: take a ticket, parse the folder, pack the splits, upload, record the result."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from digits_datasets import domain, upload
from digits_datasets.errors import BuildError, BuildStopped
from digits_datasets.faults import build_failure
from digits_datasets.inflight import BuildProgress, InFlight
from digits_datasets.packing import EncodeSpec
from digits_datasets.pool import BuildPool
from digits_datasets.settings import Settings
from digits_datasets.shards import Packer
from digits_datasets.sources import parse_sources
from digits_datasets.splits import SplitPlan
from digits_proto import codec, headers, stamps, subjects, versions
from digits_proto.datasets import (
    BuildDatasetTicket,
    DatasetAborted,
    DatasetBuildStarted,
    DatasetDeleted,
    DatasetEvent,
    DatasetFailed,
    DatasetFolderParsed,
    DatasetProgressed,
    DatasetSpec,
)
from digits_proto.runtime import (
    BusUnavailable,
    ConcurrencyError,
    EventStore,
    Outcome,
    delete_prefix,
    internal_error,
    publish_once,
    trace_headers,
)

log = structlog.get_logger(__name__)

MAX_LISTED = 1000  # warnings/errors carried in one event (NATS caps a message at 1 MB)


@dataclass
class BuildDeps:
    """What a build needs, passed explicitly."""

    nc: Client
    js: JetStreamContext
    store: EventStore[DatasetEvent]
    settings: Settings
    pool: BuildPool
    worker: str = f"{socket.gethostname()}:{os.getpid()}"
    inflight: InFlight = field(default_factory=InFlight)  # what `GET /builds` shows


async def build_dataset(deps: BuildDeps, msg: Msg) -> Outcome:
    """Handle one BuildDatasetTicket; every outcome but a crash of NATS itself is an ACK."""
    try:
        ticket = versions.decode_event(codec.dataset_commands, msg.data, msg.headers)
    except msgspec.DecodeError:
        log.warning("ticket_undecodable", data=msg.data[:200])
        return Outcome.TERM
    if not isinstance(ticket, BuildDatasetTicket):
        return Outcome.TERM
    await Build(deps, ticket.dataset_id).run()  # consume_tickets heartbeats meanwhile
    return Outcome.ACK


async def give_up_build(deps: BuildDeps, msg: Msg, losses: int) -> None:
    """The build's ticket came back `losses` times without an end (its worker killed, or
    crashing, each time): the dataset ends Error naming the cause instead of looping."""
    try:
        ticket = versions.decode_event(codec.dataset_commands, msg.data, msg.headers)
    except msgspec.DecodeError:
        return
    if not isinstance(ticket, BuildDatasetTicket):
        return
    dataset_id = ticket.dataset_id

    def decide(history: list[DatasetEvent]) -> list[DatasetEvent]:
        if not domain.fold(history).building:
            return []
        starts = [e.worker for e in history if isinstance(e, DatasetBuildStarted)]
        error = (
            f"the worker was lost {losses} times while building this dataset; "
            f"last on {starts[-1] if starts else 'an unknown worker'}"
        )
        return [DatasetFailed(dataset_id=dataset_id, error=error)]

    await deps.store.update(subjects.dataset_events(dataset_id), decide)
    log.error("build_given_up", dataset_id=dataset_id, losses=losses)


class Build:
    """One build of one dataset; follows the aggregate so that abort/delete stop it."""

    def __init__(self, deps: BuildDeps, dataset_id: str):
        self.deps = deps
        self.dataset_id = dataset_id
        self.subject = subjects.dataset_events(dataset_id)
        self.workdir = Path(deps.settings.jobs_dir()) / dataset_id
        self.state = domain.DatasetState()
        self.seq = 0
        self.stop_seen = False
        self.started = 0.0
        self.last_progress = 0.0
        self.tracked: BuildProgress | None = None
        self.packer: Packer | None = None

    async def run(self) -> None:
        """Build, or skip a dataset that is over; failures become DatasetFailed."""
        sub = await self.deps.nc.subscribe(self.subject, cb=self._watch)
        try:
            await self._refresh()
            if not await self._append(
                lambda s: domain.decide_start(s, self.deps.worker, stamps.live())
            ):
                log.info("build_skipped", dataset_id=self.dataset_id, status=self.state.status)
                return
            log.info("build_started", dataset_id=self.dataset_id)
            inflight = self.deps.inflight.building(self.dataset_id, self.deps.pool.workers)
            try:
                with inflight as self.tracked:
                    await self._build()
            except BuildStopped:
                log.info("build_stopped", dataset_id=self.dataset_id)
                await delete_prefix(
                    self.deps.js, subjects.BUCKET_DATASETS, upload.blob_prefix(self.dataset_id)
                )
            except BuildError as e:
                await self._step(DatasetFailed(dataset_id=self.dataset_id, error=str(e)))
            except OSError as e:  # disk full, read-only folder: the job names file and node
                log.exception("build_failed", dataset_id=self.dataset_id)
                node = self.deps.worker.rsplit(":", 1)[0]  # the host name, without the pid
                await self._fail(build_failure(e, node, self.workdir))
            except (nats.errors.Error, BusUnavailable):
                # The bus failed, not the build (a leader election outlasting the retries, a
                # lost connection): the ticket comes back and a worker continues it, bounded
                # by DIGITS_MAX_DELIVER like a lost worker.
                log.exception("build_interrupted_by_the_bus", dataset_id=self.dataset_id)
                raise
            except Exception:  # noqa: BLE001 - a bug: on the job (no crash loop), detail logged
                error = internal_error(
                    subjects.SERVICE_DATASETS, "build_failed", dataset_id=self.dataset_id
                )
                await self._fail(error)
        finally:
            with contextlib.suppress(Exception):  # the connection may be closing
                await sub.unsubscribe()
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _fail(self, error: str) -> None:
        """End the build Error; blobs an interrupted upload left go (nothing will read them)."""
        with contextlib.suppress(Exception):  # the bus may be what failed: the event matters
            prefix = upload.blob_prefix(self.dataset_id)
            await delete_prefix(self.deps.js, subjects.BUCKET_DATASETS, prefix)
        await self._step(DatasetFailed(dataset_id=self.dataset_id, error=error))

    async def _build(self) -> None:
        spec = self.state.spec
        assert spec is not None
        plan = await self._parse(spec)
        encode = EncodeSpec(
            width=spec.resize_width,
            height=spec.resize_height,
            channels=spec.resize_channels,
            resize_mode=spec.resize_mode,
            encoding=spec.encoding,
            max_pixels=self.deps.settings.max_pixels,
        )
        pool = self.deps.pool
        settings = self.deps.settings
        packer = Packer(
            pool.executor(),
            encode,
            settings.chunk_size,
            inflight=2 * pool.workers,
            shard_bytes=int(settings.shard_mb * 1024**2),
        )
        self.started = time.monotonic()
        self.packer = packer
        packed = await packer.pack(plan, self.workdir, self._stopped, self._progress)
        if self._stopped():
            raise BuildStopped(self.dataset_id)
        if self.tracked is not None:
            self.tracked.phase = "upload"
        built = await upload.upload_build(
            self.deps.js, self.dataset_id, plan.labels, encode, packed
        )
        if not await self._step(built):
            raise BuildStopped(self.dataset_id)
        log.info(
            "build_done", dataset_id=self.dataset_id, entries=[s.entries for s in built.splits]
        )

    async def _parse(self, spec: DatasetSpec) -> SplitPlan:
        parsed = await parse_sources(spec, self.deps.js, self.deps.settings, self.workdir)
        plan, warnings = parsed.plan, parsed.warnings
        for warning in warnings[:MAX_LISTED]:
            log.warning("folder_warning", dataset_id=self.dataset_id, warning=warning)
        event = DatasetFolderParsed(
            dataset_id=self.dataset_id,
            folder=_source_name(spec),
            labels=plan.labels,
            split_counts=plan.counts(),
            warnings=warnings[:MAX_LISTED],
            folders=parsed.folders if len(parsed.folders) > 1 else {},
        )
        if not await self._step(event):
            raise BuildStopped(self.dataset_id)
        return plan

    async def _progress(self, phase: str, done: int, total: int) -> None:
        if self.tracked is not None:  # the route sees every chunk; events are throttled
            self.tracked.phase, self.tracked.done, self.tracked.total = phase, done, total
            self.tracked.skipped = self.packer.skipped if self.packer is not None else 0
        now = time.monotonic()
        if now - self.last_progress < self.deps.settings.progress_interval:
            return
        self.last_progress = now
        elapsed = now - self.started
        eta = elapsed / done * (total - done) if done else None
        event = DatasetProgressed(
            dataset_id=self.dataset_id, phase=phase, done=done, total=total, eta_seconds=eta
        )
        if self._stopped():
            return
        # Its own subject, not the dataset's history: the stream keeps the last few per dataset.
        await publish_once(
            self.deps.js,
            subjects.dataset_progress(self.dataset_id),
            codec.encode(event),
            headers=trace_headers(
                {headers.MSG_ID: event.event_id, headers.SCHEMA: versions.schema_header(event)}
            ),
        )

    def _stopped(self) -> bool:
        return self.stop_seen or not self.state.building

    async def _watch(self, msg: Msg) -> None:
        # Core subscription on the aggregate's subject: an abort/delete is seen at once.
        try:
            event = versions.decode_event(codec.dataset_events, msg.data, msg.headers)
        except msgspec.DecodeError:
            return
        if isinstance(event, DatasetAborted | DatasetDeleted):
            self.stop_seen = True

    async def _refresh(self) -> None:
        history, self.seq = await self.deps.store.load(self.subject)
        self.state = domain.fold(history)

    async def _step(self, event: DatasetEvent) -> bool:
        """Append a build event if the build still runs; False if it no longer does."""
        return bool(await self._append(lambda s: domain.decide_step(s, event)))

    async def _append(
        self, decide: Callable[[domain.DatasetState], list[DatasetEvent]]
    ) -> list[DatasetEvent]:
        # Append at the sequence we know; a conflict means someone else wrote: reload, re-decide.
        for _ in range(8):
            events = decide(self.state)
            if not events:
                return []
            try:
                self.seq = await self.deps.store.append(self.subject, events, self.seq)
            except ConcurrencyError:
                await self._refresh()
                continue
            for event in events:
                self.state = domain.evolve(self.state, event)
            return events
        raise ConcurrencyError(self.subject)


def _source_name(spec: DatasetSpec) -> str:
    """What the parse read, for the dataset page."""
    if spec.method == "textfile":
        if spec.textfile_use_local_files:
            return spec.textfile_local_train_images
        return spec.textfile_train_images.name if spec.textfile_train_images else ""
    if spec.method == "upload":
        return spec.upload_archive.name if spec.upload_archive else ""
    return spec.folder_train
