"""Classify many as a request (small lists) or as a job: a work-queue ticket, progress in a
status blob, the result in the uploads bucket."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import msgspec
import structlog
from mxnet.base import MXNetError
from nats.aio.msg import Msg
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_inference import errors, many
from digits_inference.domain import Plan
from digits_inference.handlers import Deps, _mxnet_reason, _plan
from digits_proto import codec, headers, new_job_id, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import (
    ClassifiedMany,
    ClassifyMany,
    ClassifyManyQueued,
    ClassifyManyTicket,
    ManyResult,
    ManyStatus,
    many_status_name,
)
from digits_proto.runtime import Outcome, fetch, heartbeat, put_bytes

log = structlog.get_logger(__name__)

PROGRESS_EVERY = 0.5  # seconds between status rewrites (≤ 2/s per job)


@dataclass(frozen=True)
class Prepared:
    """A validated request: the plan, the parsed list and the snapshot's local files."""

    plan: Plan
    entries: list[many.Entry]
    symbol: Path
    params: Path


async def classify_many(deps: Deps, cmd: ClassifyMany) -> ClassifiedMany | ClassifyManyQueued:
    """Validate; then classify now, or queue a job when `background` is set."""
    prepared = await _prepare(deps, cmd)
    if not cmd.background:
        result = await _compute(deps, cmd, prepared)
        ref = await _put(deps, f"classify-many/{uuid.uuid4().hex}.json", result)
        await _forget(deps, cmd.image_list)
        return ClassifiedMany(
            job_id=result.job_id,
            snapshot_epoch=result.snapshot_epoch,
            result=ref,
            count=len(result.results),
        )
    run_id = new_job_id()
    total = len(prepared.entries)
    status = ManyStatus(
        run_id=run_id, job_id=cmd.job_id, status="Waiting", total=total, top_n=cmd.top_n > 0
    )
    ref = await _put(deps, many_status_name(run_id), status)
    ticket = ClassifyManyTicket(run_id=run_id, command=cmd)
    await deps.js.publish(
        subjects.WORK_CLASSIFY_MANY, codec.encode(ticket), headers={headers.MSG_ID: run_id}
    )
    log.info("classify_many_queued", run_id=run_id, job_id=cmd.job_id, total=total)
    return ClassifyManyQueued(run_id=run_id, job_id=cmd.job_id, total=total, status=ref)


async def run_ticket(deps: Deps, msg: Msg) -> Outcome:
    """Work one queued classify-many job; refusals and failures end as status Error."""
    try:
        ticket = codec.classify_many_ticket.decode(msg.data)
    except msgspec.DecodeError:
        log.warning("ticket_undecodable")
        return Outcome.TERM
    cmd, run_id = ticket.command, ticket.run_id
    status = ManyStatus(run_id=run_id, job_id=cmd.job_id, status="Running", top_n=cmd.top_n > 0)
    progress = {"done": 0, "total": 0}

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            await _put(deps, many_status_name(run_id), msgspec.structs.replace(status, **progress))

    async with heartbeat(msg):
        reporter = None
        try:
            prepared = await _prepare(deps, cmd)
            progress["total"] = len(prepared.entries)
            reporter = asyncio.create_task(report())
            result = await _compute(deps, cmd, prepared, progress)
            ref = await _put(deps, f"classify-many/{run_id}/result.json", result)
            final = msgspec.structs.replace(
                status, status="Done", done=progress["total"], total=progress["total"], result=ref
            )
        except errors.InferenceError as e:
            final = msgspec.structs.replace(status, status="Error", error=str(e))
        except Exception:  # a bug or an outage: the user sees an error, not "Running" forever
            log.exception("classify_many_failed", run_id=run_id)
            final = msgspec.structs.replace(status, status="Error", error="Internal error")
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
    await _put(deps, many_status_name(run_id), final)
    await _forget(deps, cmd.image_list)
    log.info("classify_many_finished", run_id=run_id, status=final.status)
    return Outcome.ACK


async def _prepare(deps: Deps, cmd: ClassifyMany) -> Prepared:
    if cmd.top_n < 0:
        raise errors.BadTopN(cmd.top_n)
    plan = await _plan(deps, cmd.job_id, cmd.snapshot_epoch)
    text = await _list_text(deps, cmd.image_list)
    entries = many.parse_list(
        text, cmd.image_folder, deps.data_roots, len(plan.labels), cmd.num_test_images
    )
    if not entries:
        raise errors.EmptyList()
    try:
        symbol = await fetch(deps.js, plan.symbol, deps.cache_dir)
        params = await fetch(deps.js, plan.params, deps.cache_dir)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, "its files are missing") from e
    return Prepared(plan=plan, entries=entries, symbol=symbol, params=params)


async def _compute(
    deps: Deps, cmd: ClassifyMany, prep: Prepared, progress: dict[str, int] | None = None
) -> ManyResult:
    """Run the list on the predictor's thread, in batches."""
    plan = prep.plan
    key = (plan.job_id, plan.epoch, plan.params.digest or plan.params.name)
    how = {
        "width": plan.width,
        "height": plan.height,
        "channels": plan.channels,
        "resize_mode": plan.resize_mode,
        "input_shape": plan.input_shape,
    }

    tally = many.Tally(labels=plan.labels, top_n=cmd.top_n)
    forward = partial(deps.predictor.forward_here, key, prep.symbol, prep.params)
    step = max(1, deps.batch_size)

    def chunk(entries: list[many.Entry]) -> None:
        many.run(entries, tally, how, forward, deps.max_image_bytes, step)

    def finish() -> ManyResult:
        return ManyResult(
            job_id=plan.job_id,
            snapshot_epoch=plan.epoch,
            labels=list(plan.labels),
            results=tally.results,
            errors=sorted(tally.errors, key=lambda e: e.line),
            top_n=many.top_n_mosaics(tally, how, deps.max_image_bytes) if cmd.top_n else [],
            **tally.summary(),  # type: ignore[arg-type]
        )

    started = time.perf_counter()
    try:
        # One predictor call per batch: classify-one requests queued meanwhile get in between.
        for start in range(0, len(prep.entries), step):
            await deps.predictor.run(chunk, prep.entries[start : start + step])
            if progress is not None:
                progress["done"] = min(start + step, len(prep.entries))
        result = await deps.predictor.run(finish)
    except MXNetError as e:
        log.exception("snapshot_unusable", job_id=plan.job_id, epoch=plan.epoch)
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, _mxnet_reason(e)) from e
    deps.metrics.inc("classifications", len(result.results))
    log.info(
        "classified_many",
        job_id=plan.job_id,
        count=len(result.results),
        seconds=round(time.perf_counter() - started, 3),
    )
    return result


async def _list_text(deps: Deps, ref: BlobRef) -> str:
    """The uploaded list (uploads bucket only, bounded size), decoded leniently."""
    if ref.bucket != subjects.BUCKET_UPLOADS:
        raise errors.BadList(f"Lists are read from the uploads bucket only, not {ref.bucket}")
    store = await deps.js.object_store(ref.bucket)
    try:
        info = await store.get_info(ref.name)
        if (info.size or 0) > deps.max_list_bytes:
            raise errors.BadList(f"Image list too large: {info.size} bytes")
        buffer = io.BytesIO()
        await store.get(ref.name, writeinto=buffer)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.BadList(f"Uploaded list {ref.name} not found") from e
    return buffer.getvalue().decode("utf-8", errors="replace")


async def _put(deps: Deps, name: str, value: msgspec.Struct) -> BlobRef:
    return await put_bytes(deps.js, subjects.BUCKET_UPLOADS, name, msgspec.json.encode(value))


async def _forget(deps: Deps, ref: BlobRef) -> None:
    """Delete the uploaded list once it has been used."""
    with contextlib.suppress(Exception):
        store = await deps.js.object_store(ref.bucket)
        await store.delete(ref.name)
