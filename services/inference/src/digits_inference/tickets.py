"""A queued classify-many job, worked from its ticket: progress in its status blob, its
checkpoints (takeover.py) so that a process taking over a job whose worker died continues it,
the end (Done or Error) written once, whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError, ObjectDeletedError

from digits_inference import archive, errors, faults, jobs, takeover
from digits_inference.archives import archive_folder
from digits_inference.handlers import Deps, InFlight
from digits_proto import codec, subjects, versions
from digits_proto.inference import ClassifyMany, ManyStatus, many_status_name
from digits_proto.runtime import Outcome, heartbeat, internal_error, read_bytes

log = structlog.get_logger(__name__)

# The job's steps are jobs.py's (the synchronous request's too), called through the module.

PROGRESS_EVERY = 0.5  # seconds between status rewrites (≤ 2/s per job)


async def run_ticket(deps: Deps, msg: Msg) -> Outcome:
    """Work one queued classify-many job; refusals and failures end as status Error. A job
    whose worker died is continued from its last checkpoint (takeover.py)."""
    try:
        ticket = versions.decode_event(codec.classify_many_ticket, msg.data, msg.headers)
    except msgspec.DecodeError:
        log.warning("ticket_undecodable")
        return Outcome.TERM
    cmd, run_id = ticket.command, ticket.run_id
    if await _ended(deps, run_id):  # its worker died between the end and the ticket's ack
        log.info("classify_many_already_ended", run_id=run_id)
        return Outcome.ACK
    status = ManyStatus(run_id=run_id, job_id=cmd.job_id, status="Running", top_n=cmd.top_n > 0)
    progress = {"done": 0, "total": 0}
    deps.in_flight[run_id] = InFlight(run_id, cmd.job_id, time.time(), progress)
    checkpoints = takeover.Checkpoints(deps.js, run_id, deps.checkpoint_every)

    async def report() -> None:
        # A failed write must not end the reporter: the page would show the last count written
        # (a dead worker's 15000/15000, say) until the job ends, minutes later.
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            try:
                current = msgspec.structs.replace(status, **progress)
                await jobs._put(deps, many_status_name(run_id), current)
            except Exception:  # the bus busy or electing: the next report tries again
                log.warning("many_status_not_written", run_id=run_id, exc_info=True)

    async with heartbeat(msg):
        reporter = None
        prepared: jobs.Prepared | None = None
        try:
            prepared = await jobs._prepare(deps, cmd, run_id=run_id)
            progress["total"] = len(prepared.entries)
            reporter = asyncio.create_task(report())
            result = await jobs._compute(deps, cmd, prepared, progress, checkpoints)
            ref = await jobs._put(deps, f"classify-many/{run_id}/result.json", result)
            final = msgspec.structs.replace(
                status, status="Done", done=progress["total"], total=progress["total"], result=ref
            )
        except errors.InferenceError as e:
            final = msgspec.structs.replace(status, status="Error", error=str(e))
        except Exception as e:  # noqa: BLE001 - a bug or an outage: an error, not "Running" forever
            if faults.on_disk(e):  # this node's disk: the message names it
                log.warning("classify_many_disk_fault", run_id=run_id, error=str(e))
                error = faults.write_failure(e, deps.cache_dir.parent)
            else:
                error = internal_error(
                    subjects.SERVICE_INFERENCE, "classify_many_failed", run_id=run_id
                )
            final = msgspec.structs.replace(status, status="Error", error=error)
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            deps.in_flight.pop(run_id, None)
            if prepared is not None and prepared.folder is not None:
                await asyncio.to_thread(archive.remove, prepared.folder)
    await _end(deps, cmd, final, checkpoints)
    return Outcome.ACK


async def give_up(deps: Deps, msg: Msg, losses: int) -> None:
    """The end of a ticket whose worker was lost `losses` times (killed, out of memory, or a
    list that crashes it): the job ends Error saying so, rather than Running forever."""
    try:
        ticket = versions.decode_event(codec.classify_many_ticket, msg.data, msg.headers)
    except msgspec.DecodeError:
        return
    cmd, run_id = ticket.command, ticket.run_id
    if await _ended(deps, run_id):
        return
    checkpoints = takeover.Checkpoints(deps.js, run_id)
    await asyncio.to_thread(archive.remove, archive_folder(deps, run_id))
    error = (
        f"the inference worker was lost {losses} times while running this job (killed, out "
        "of memory or crashed each time)"
    )
    final = ManyStatus(
        run_id=run_id, job_id=cmd.job_id, status="Error", error=error, top_n=cmd.top_n > 0
    )
    await _end(deps, cmd, final, checkpoints)
    log.error("classify_many_given_up", run_id=run_id, losses=losses)


async def _ended(deps: Deps, run_id: str) -> bool:
    """Whether the job's status already says Done or Error."""
    try:
        data = await read_bytes(deps.js, subjects.BUCKET_UPLOADS, many_status_name(run_id))
        return msgspec.json.decode(data, type=ManyStatus).status in ("Done", "Error")
    except (NotFoundError, ObjectDeletedError, msgspec.DecodeError):
        return False  # ObjectNotFoundError is a NotFoundError
    except Exception:  # unreadable now: work it (raising would NAK it, a delivery spent)
        log.warning("many_status_unread", run_id=run_id, exc_info=True)
        return False


async def _end(
    deps: Deps, cmd: ClassifyMany, final: ManyStatus, checkpoints: takeover.Checkpoints
) -> None:
    """Write the final status, then drop what only a takeover needed and the inputs."""
    await jobs._put(deps, many_status_name(final.run_id), final)
    await checkpoints.clear()
    await jobs._forget(deps, cmd.image_list)
    await jobs._forget(deps, cmd.image_archive)
    log.info("classify_many_finished", run_id=final.run_id, status=final.status)
