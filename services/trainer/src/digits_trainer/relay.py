"""A training child's reports relayed as the job's events and blobs, in report order.

The child is untrusted: the files it names are read only inside its job's `work/` folder (see
reported.py), and a report the parent refuses ends the relay with an error, the job failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import structlog

from digits_proto.models import (
    MetricsRecorded,
    ModelEvents,
    SnapshotDeleted,
    SnapshotSaved,
    TrainingProgressed,
)
from digits_trainer import reports
from digits_trainer.joblog import JobLog
from digits_trainer.reported import Refused, host_path, open_reported, remove_reported
from digits_trainer.resumepoints import resume_point_name
from digits_trainer.settings import Settings
from digits_trainer.store import Store

log = structlog.get_logger(__name__)

Append = Callable[[ModelEvents], Awaitable[None]]


class Relay:
    """What one attempt's child reports, turned into events (through the attempt's `append`),
    metric points and uploads; remembers whether the child said it was done or failed."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        model_id: str,
        log: JobLog,
        append: Append,
        folder: Path | None = None,
    ):
        self.folder = folder or log.path.parent  # the job's folder; the child writes its work/
        self.max_bytes = settings.sandbox_file_mb * 1024 * 1024
        self.refused = False
        self.store = store
        self.settings = settings
        self.model_id = model_id
        self.log = log
        self.append = append
        self.done = False
        self.error = ""
        self.last_progress = float("-inf")
        self.next_point_upload = float("-inf")  # uploads of resume points are paced
        self.recorded: dict[str, int] = {}  # per phase: points an earlier attempt recorded
        # What the node's routes show (see node.py): where the child stands, what is saved.
        self.epoch = 0.0
        self.images_per_second: float | None = None
        self.snapshot: float | None = None  # epoch of the last snapshot this attempt uploaded
        self.point: tuple[float, int] | None = None  # (epoch, iteration) of the last point kept
        # The node drains: the point the child writes when asked is uploaded, then this is set.
        self.handed_back = asyncio.Event()

    async def run(self, stdout: asyncio.StreamReader) -> None:
        """Turn each report line of the child into events, in order; stop at a report that
        is refused (the attempt then ends the child and fails the job with `error`)."""
        try:
            await self._relay(stdout)
        except Refused as e:
            log.warning("child_report_refused", model_id=self.model_id, reason=str(e))
            self.refused = True
            self.error = f"The training process sent a report that was refused: {e}"
        except ValueError:  # asyncio's limit on a line's length
            self.refused = True
            self.error = "The training process sent a report line over 1 MiB"

    async def _relay(self, stdout: asyncio.StreamReader) -> None:
        async for line in stdout:
            try:
                report = reports.decoder.decode(line)
            except msgspec.DecodeError:
                log.warning("child_line_unreadable", model_id=self.model_id, line=line[:200])
                continue
            match report:
                case reports.MetricsReport() if report.iteration > self.recorded.get(
                    report.phase, 0
                ):
                    await self.store.record_metrics(
                        MetricsRecorded(
                            model_id=self.model_id,
                            epoch=report.epoch,
                            iteration=report.iteration,
                            phase=report.phase,
                            values=report.values,
                        )
                    )
                case reports.ProgressReport():
                    await self.on_progress(report)
                case reports.SnapshotReport():
                    await self.on_snapshot(report)
                case reports.ResumePointReport():
                    await self.on_resume_point(report)
                case reports.DoneReport():
                    self.done = True
                case reports.ErrorReport(path=path, reason=reason) if path:
                    # The child sees its folder as /job: name the file as it lies on this node.
                    where = host_path(self.folder, path)
                    self.error = f"{reason} writing {where} on node {self.settings.node_id}"
                case reports.ErrorReport(message=message):
                    self.error = message

    async def on_progress(self, report: reports.ProgressReport) -> None:
        """A TrainingProgressed at most every `progress_every` seconds, and at epoch ends."""
        self.epoch = report.epoch
        if report.images_per_second is not None:
            self.images_per_second = report.images_per_second
        now = time.monotonic()
        if not report.epoch_end and now - self.last_progress < self.settings.progress_every:
            return
        self.last_progress = now
        await self.store.publish_progress(
            TrainingProgressed(
                model_id=self.model_id,
                epoch=report.epoch,
                progress=report.progress,
                eta_seconds=report.eta_seconds,
            )
        )
        await self.log.upload(force=False)

    async def on_snapshot(self, report: reports.SnapshotReport) -> None:
        """Upload a snapshot's three files, then say so; the local copies go."""
        prefix = f"{self.model_id}/snapshot-{report.epoch:g}"
        symbol = await self.upload(f"{prefix}-symbol.json", report.symbol)
        params = await self.upload(f"{prefix}.params", report.params)
        state = await self.upload(f"{prefix}.state", report.state)
        # The log first: whoever sees SnapshotSaved finds the stored log at least that far.
        await self.log.upload()
        await self.append(
            SnapshotSaved(
                model_id=self.model_id,
                epoch=report.epoch,
                symbol=symbol,
                params=params,
                state=state,
                input_shape=report.input_shape,
            )
        )
        self.snapshot = report.epoch
        for path in (report.symbol, report.params, report.state):
            remove_reported(self.folder, path)
        for epoch in report.dropped:  # retention: say so first, then free the blobs
            await self.append(SnapshotDeleted(model_id=self.model_id, epoch=epoch))
            old = f"{self.model_id}/snapshot-{epoch:g}"
            await self.store.delete_model_files(
                [f"{old}-symbol.json", f"{old}.params", f"{old}.state"]
            )

    async def on_resume_point(self, report: reports.ResumePointReport) -> None:
        """Upload a resume point over the job's previous one; the local file goes.

        Here, in report order: every point and snapshot the child reported before it is
        recorded first, so resuming from it never skips a snapshot or a metric point.
        """
        # The child paces its writes by their local cost; the upload (and the nats-server's
        # share of it) costs more for a large network: skipping points that come sooner than
        # 50 uploads' time after the last keeps it near 2% of the CPU as well.
        if report.asked or time.monotonic() >= self.next_point_upload:
            started = time.monotonic()
            await self.upload(resume_point_name(self.model_id), report.path)
            self.next_point_upload = time.monotonic() + 49 * (time.monotonic() - started)
            self.point = (report.epoch, report.iteration)
        remove_reported(self.folder, report.path)
        if report.asked:
            self.handed_back.set()

    async def upload(self, name: str, reported: str):
        """Upload a file the child reported, read only if it lies in its work/ (Refused)."""
        with open_reported(self.folder, reported, self.max_bytes) as path:
            return await self.store.put_model_file(name, path)
