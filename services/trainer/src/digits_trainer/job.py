"""One training attempt: fetch the data, run the child, relay its reports, stop it on abort."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import traceback
from pathlib import Path

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from digits_proto import codec, subjects, versions
from digits_proto.datasets import DatasetBuilt
from digits_proto.gpus import LeaseAccepted
from digits_proto.models import (
    ModelAborted,
    ModelDeleted,
    ModelEvents,
    ModelWaiting,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
)
from digits_proto.runtime import ConcurrencyError
from digits_trainer import staging
from digits_trainer.confine import SandboxUnavailable
from digits_trainer.confined import Confined
from digits_trainer.domain import ModelState, resume_point
from digits_trainer.faults import write_failure
from digits_trainer.joblog import TRAINER_MARK, JobLog
from digits_trainer.process import terminate
from digits_trainer.relay import Relay
from digits_trainer.reports import HAND_BACK_FILE
from digits_trainer.resumepoints import Position, find_resume_point, resume_point_name
from digits_trainer.settings import Settings
from digits_trainer.spares import Spares
from digits_trainer.store import Store

log = structlog.get_logger(__name__)


class Ending(enum.Enum):
    """How an attempt ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    DELETED = "deleted"
    HANDED_BACK = "handed back"  # its node drains: another node continues from its resume point


UNEXPECTED = "this attempt ended unexpectedly; the job resumes from its last snapshot"


class JobStopped(Exception):
    """The job was aborted or deleted while this attempt ran."""

    def __init__(self, ending: Ending):
        super().__init__(ending.value)
        self.ending = ending


class Attempt:
    """Run one job on a lease until it completes, fails, or is aborted or deleted."""

    def __init__(
        self,
        nc: Client,
        store: Store,
        settings: Settings,
        state: ModelState,
        seq: int,
        spares: Spares | None = None,
    ):
        self.nc = nc
        self.spares = spares or Spares(enabled=False)
        self.store = store
        self.settings = settings
        self.state = state
        self.seq = seq  # the last event of the job we know of; our appends expect it
        self.model_id = state.model_id
        self.folder = Path(settings.data_dir) / "trainer" / "jobs" / state.model_id
        self.stopped = asyncio.Event()
        self.ending = Ending.ABORTED
        self.error = ""
        self.resume = resume_point(state)  # the last snapshot, unless a resume point is newer
        self.point: tuple[Path, Position] | None = None
        self.cache = Path(settings.data_dir) / "cache"
        self.log = JobLog(store, self.model_id, self.folder, settings.log_upload_every)
        self.relay = Relay(store, settings, self.model_id, self.log, self.append, self.folder)
        self.lease: LeaseAccepted | None = None  # what the node's routes show (node.py)
        self.child: Confined | None = None
        self.ended = asyncio.Event()
        self.result: Ending | None = None  # how `run` ended (None: it raised)
        self.requeued = ""  # why it was handed back when its node does not drain (a lost lease)

    async def run(self, built: DatasetBuilt, lease: LeaseAccepted) -> Ending:
        """Started → (snapshots, progress, metrics) → Completed or Failed; or stopped."""
        # Subscribe before TrainingStarted: an abort after the state we loaded is either seen
        # here or makes our next append conflict; none is missed.
        self.lease = lease
        sub = await self.nc.subscribe(subjects.model_events(self.model_id), cb=self._watch)
        ending: Ending | None = None
        live = None
        try:
            if self.stopped.is_set():  # handed back (its node drains) before it started
                raise JobStopped(self.ending)
            if self.state.attempts > 0 and self.settings.resume_every > 0:
                self.point = await find_resume_point(self.store, self.state, self.cache)
            resume_epoch = self.point[1].epoch if self.point else None
            if resume_epoch is None:
                resume_epoch = self.resume.epoch if self.resume else 0.0
            await self.append(
                TrainingStarted(
                    model_id=self.model_id,
                    node_id=self.settings.node_id,
                    devices=[d.device_id for d in lease.devices],
                    lease_id=lease.lease_id,
                    attempt=self.state.attempts + 1,
                    resume_epoch=resume_epoch,
                )
            )
            await self.open_log(lease)
            live = await self.nc.subscribe(subjects.model_log(self.model_id), cb=self.log.answer)
            try:
                config = await self.prepare(built, lease)
            except OSError as e:  # a full or read-only disk: which file on which node
                log.exception("prepare_failed", model_id=self.model_id)
                ending = await self.fail(self.write_failure(e, self.cache))
                return ending
            except Exception as e:  # a dataset we cannot read fails the job (logged)
                log.exception("prepare_failed", model_id=self.model_id)
                self.error = f"Data: {e}"
                self.log.write(f"{self.error}\n{traceback.format_exc().rstrip()}")
                await self.close_log(Ending.FAILED)
                await self.append(TrainingFailed(model_id=self.model_id, error=self.error))
                ending = Ending.FAILED
                return ending
            ending = await self.supervise(config, lease)
            return ending
        except JobStopped as stop:
            ending = stop.ending
            return ending
        except OSError as e:  # the job's folder or log cannot be written here: it ends Error
            log.exception("attempt_write_failed", model_id=self.model_id)
            ending = await self.fail(self.write_failure(e, self.folder))
            return ending
        finally:
            for subscription in filter(None, (sub, live)):
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            await self.close_log(ending)
            if ending is Ending.HANDED_BACK and self.requeued:
                await self.say_waiting(self.requeued)
            # A deleted job's files go; a handed-back job continues from its point elsewhere; a
            # completed one's point went as it completed (supervise).
            if ending in (Ending.FAILED, Ending.ABORTED):
                await self.drop_resume_point()
            self.result = ending
            self.ended.set()

    async def open_log(self, lease: LeaseAccepted) -> None:
        """Continue the job's log with this attempt's header (where it runs, where it resumes)."""
        devices = ", ".join(d.device_id for d in lease.devices) or "cpu"
        header = f"attempt {self.state.attempts + 1} of {self.model_id} on {self.settings.node_id}"
        header += f" ({devices}, {lease.threads} threads)"
        if self.point is not None:
            header += f", resuming from the resume point at epoch {self.point[1].epoch:g}"
        elif self.resume is not None:
            header += f", resuming from the snapshot at epoch {self.resume.epoch:g}"
        await self.log.open(header)

    async def close_log(self, ending: Ending | None) -> None:
        """Say how the attempt ended and upload the log, once (a deleted job's files are gone);
        before the final event when the attempt ends it, so a finished job's log is complete."""
        if ending is not Ending.DELETED:
            error = f": {self.error}" if ending is Ending.FAILED else ""
            if ending is Ending.HANDED_BACK and self.requeued:
                error = f": {self.requeued}"
            await self.log.close(f"training {ending.value}{error}" if ending else UNEXPECTED)

    async def prepare(self, built: DatasetBuilt, lease: LeaseAccepted) -> Path:
        """Fetch the dataset blobs into the cache and write the child's config file (see
        staging.py); on a later attempt, learn which metric points are recorded already."""
        config = await staging.prepare(
            self.store,
            self.settings,
            self.state,
            built,
            lease,
            folder=self.folder,
            cache=self.cache,
            point=self.point,
            snapshot=self.resume,
            confiner=self.spares.confiner,
        )
        if self.state.attempts > 0:  # an earlier attempt's points stay; none is sent twice
            self.relay.recorded = await self.store.recorded_iterations(self.model_id)
        return config

    async def supervise(self, config: Path, lease: LeaseAccepted) -> Ending:
        """Run the child until it ends or the job is stopped; record how it ended."""
        if self.stopped.is_set():
            return self.ending
        try:  # network source (custom, or fine-tuning from it) never runs unconfined
            spec = self.state.spec
            self.spares.require(spec.method != "standard" and bool(spec.custom_network.strip()))
        except SandboxUnavailable as e:
            return await self.fail(f"{e}")
        child = self.child = await self.spares.start(config, self.folder, lease)
        log.info("child_started", model_id=self.model_id, pid=child.pid)
        assert child.stdout is not None
        relaying = asyncio.create_task(self.relay.run(child.stdout))
        stopping = asyncio.create_task(self.stopped.wait())
        try:
            await asyncio.wait({relaying, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                return self.ending
            relaying.result()  # raises JobStopped if an append found the job stopped
            if self.relay.refused:  # it would go on writing to a pipe nobody reads
                await terminate(child, 0)
            returncode = await child.wait()
            if self.relay.done and returncode == 0:
                await self.close_log(Ending.COMPLETED)  # complete before the job says Done
                await self.append(TrainingCompleted(model_id=self.model_id))
                await self.drop_resume_point()  # now: the spare's start below may take a while
                return Ending.COMPLETED
            return await self.fail(
                self.relay.error
                or f"Training exited with code {returncode}: {self.last_log_line()}"
            )
        finally:
            for task in (relaying, stopping):
                task.cancel()
            await terminate(child, self.settings.kill_grace)
            log.info("child_ended", model_id=self.model_id, returncode=child.returncode)
            if self.ending is not Ending.HANDED_BACK:  # a drained node starts no next job
                try:  # now, not beside the child: it would share the CPU
                    await self.spares.refill(lease)
                except OSError:  # a full disk: the next job starts a fresh child; this one ended
                    log.warning("spare_refill_failed", model_id=self.model_id, exc_info=True)

    async def hand_back(self, wait: float, reason: str = "") -> None:
        """The node drains (or, with a `reason`, the job lost its lease): have the child write a
        resume point at its next metric point (at most `wait` seconds), then stop this attempt;
        its ticket goes back for another node (or another lease), the reason in its history."""
        if self.stopped.is_set() or self.ended.is_set():
            return
        with contextlib.suppress(OSError):  # still fetching its data: no folder, no child yet
            (self.folder / HAND_BACK_FILE).touch()
        if self.child is not None and self.settings.resume_every > 0:
            waits = {asyncio.ensure_future(e.wait()) for e in (self.relay.handed_back, self.ended)}
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
        if not self.stopped.is_set() and not self.ended.is_set():
            log.info("job_handed_back", model_id=self.model_id, point=self.relay.point)
            self.ending = Ending.HANDED_BACK
            self.requeued = reason
            self.stopped.set()

    async def fail(self, error: str) -> Ending:
        """The attempt failed: say why in the log, then in the job's events."""
        self.error = error
        await self.close_log(Ending.FAILED)
        await self.append(TrainingFailed(model_id=self.model_id, error=error))
        return Ending.FAILED

    async def say_waiting(self, reason: str) -> None:
        """The job waits again, and why, in its status history (before its ticket goes back:
        the next attempt's TrainingStarted follows it)."""
        with contextlib.suppress(JobStopped):  # aborted or deleted meanwhile: nothing to say
            await self.append(ModelWaiting(model_id=self.model_id, reason=reason))

    def write_failure(self, error: OSError, where: Path) -> str:
        """The job's error for a failed write on this node, naming the file and the node."""
        return write_failure(error, self.settings.node_id, where)

    async def drop_resume_point(self) -> None:
        """A job that completed, failed or was aborted is never resumed: its point goes."""
        try:
            await self.store.delete_model_files([resume_point_name(self.model_id)])
        except Exception:  # a leftover only costs space until the job's delete
            log.warning("resume_point_kept", model_id=self.model_id, exc_info=True)

    async def append(self, event: ModelEvents) -> None:
        """Append after the last event we know; if someone else appended (an abort, a rename…),
        see whether it stopped us, else append after it."""
        for _ in range(8):
            try:
                self.seq = await self.store.append(self.model_id, [event], self.seq)
                return
            except ConcurrencyError:
                state, self.seq = await self.store.model(self.model_id)
                if state is None or state.deleted:
                    raise JobStopped(Ending.DELETED) from None
                if not state.status.is_running:
                    raise JobStopped(Ending.ABORTED) from None
        raise ConcurrencyError(subjects.model_events(self.model_id))

    async def _watch(self, msg: Msg) -> None:
        try:
            event = versions.decode_event(codec.model_events, msg.data, msg.headers)
        except msgspec.DecodeError:
            return
        if isinstance(event, ModelDeleted | ModelAborted):
            self.ending = Ending.DELETED if isinstance(event, ModelDeleted) else Ending.ABORTED
            log.info("job_stopping", model_id=self.model_id, by=type(event).__name__)
            self.stopped.set()

    def last_log_line(self) -> str:
        """The child's last log line: where DIGITS also took a failed job's message from."""
        try:
            lines = (self.folder / "train.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        child = (line for line in reversed(lines) if line.strip() and TRAINER_MARK not in line)
        return next(child, "")
