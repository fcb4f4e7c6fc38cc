"""Classify many as a request (small lists) or as a job: a work-queue ticket, progress in a
status blob, the result in the uploads bucket."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import structlog
from mxnet.base import MXNetError
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_inference import access, archive, errors, faults, many, runkeys, takeover
from digits_inference.archives import unpack
from digits_inference.domain import Plan
from digits_inference.handlers import Deps, _mxnet_reason, _plan
from digits_proto import codec, headers, new_job_id, subjects, versions
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
from digits_proto.runtime import (
    fetch,
    publish_once,
    put_bytes,
    read_bytes,
    trace_headers,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A validated request: the plan, the parsed list and the snapshot's local files."""

    plan: Plan
    entries: list[many.Entry]
    symbol: Path
    params: Path
    folder: Path | None = None  # an extracted archive, removed once the job ends


async def classify_many(deps: Deps, cmd: ClassifyMany) -> ClassifiedMany | ClassifyManyQueued:
    """Validate; then classify now, or queue a job when `background` is set."""
    access.runner(cmd.principal)
    if cmd.background and cmd.idempotency_key and (first := await runkeys.first_run(deps, cmd)):
        await _forget(deps, cmd.image_list)  # this retry's upload: the first job has its own
        await _forget(deps, cmd.image_archive)
        return first
    started = time.perf_counter()
    prepared = await _prepare(deps, cmd, extract=not cmd.background)
    if not cmd.background:
        prepared_at = time.perf_counter()
        try:
            result = await _compute(deps, cmd, prepared)
        finally:
            if prepared.folder is not None:
                await asyncio.to_thread(archive.remove, prepared.folder)
        computed_at = time.perf_counter()
        encoded = msgspec.json.encode(result)
        inline = cmd.inline_result and len(encoded) <= deps.max_reply_bytes
        ref = BlobRef(bucket="", name="")
        if not inline:  # too big for one message: through the uploads bucket
            ref = await put_bytes(
                deps.js, subjects.BUCKET_UPLOADS, f"classify-many/{uuid.uuid4().hex}.json", encoded
            )
        await _forget(deps, cmd.image_list)
        await _forget(deps, cmd.image_archive)
        log.debug(  # where a request's time goes (the network's share is `computed`)
            "classify_many_timings",
            prepared=round(prepared_at - started, 4),
            computed=round(computed_at - prepared_at, 4),
            replied=round(time.perf_counter() - computed_at, 4),
            inline=inline,
            result_bytes=len(encoded),
        )
        return ClassifiedMany(
            job_id=result.job_id,
            snapshot_epoch=result.snapshot_epoch,
            result=ref,
            count=len(result.results),
            inline=result if inline else None,
        )
    run_id = new_job_id()
    total = len(prepared.entries)
    status = ManyStatus(
        run_id=run_id, job_id=cmd.job_id, status="Waiting", total=total, top_n=cmd.top_n > 0
    )
    ref = await _put(deps, many_status_name(run_id), status)
    ticket = ClassifyManyTicket(run_id=run_id, command=cmd)
    ack = await publish_once(
        deps.js,
        subjects.WORK_CLASSIFY_MANY,
        codec.encode(ticket),
        headers=trace_headers(
            {
                headers.MSG_ID: runkeys.ticket_msg_id(cmd, run_id),
                headers.SCHEMA: versions.schema_header(ticket),
            },
            command=True,
        ),
    )
    if ack.duplicate:  # a retry racing the first request under the same key: the first's job
        for blob in (ref, cmd.image_list, cmd.image_archive):
            await _forget(deps, blob)
        return await runkeys.winner(deps, cmd)
    if cmd.idempotency_key:
        await runkeys.record(deps, cmd, run_id, total)
    log.info("classify_many_queued", run_id=run_id, job_id=cmd.job_id, total=total)
    return ClassifyManyQueued(run_id=run_id, job_id=cmd.job_id, total=total, status=ref)


async def _prepare(
    deps: Deps, cmd: ClassifyMany, extract: bool = True, run_id: str = ""
) -> Prepared:
    """Validate and gather the inputs; an archive is extracted only when `extract` (the job:
    `run_id`, which names its folder)."""
    if cmd.top_n < 0:
        raise errors.BadTopN(cmd.top_n)
    plan = await _plan(deps, cmd.job_id, cmd.snapshot_epoch)
    try:  # the snapshot first: nothing is extracted for a job that cannot run
        with faults.writing(deps.cache_dir):  # fetch leaves no partial file behind
            symbol = await fetch(deps.js, plan.symbol, deps.cache_dir)
            params = await fetch(deps.js, plan.params, deps.cache_dir)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, "its files are missing") from e
    folder = None
    if cmd.image_archive is not None:
        entries, folder = await unpack(deps, cmd.image_archive, plan.labels, extract, run_id)
        if cmd.num_test_images and cmd.num_test_images > 0:
            entries = entries[: cmd.num_test_images]
    else:
        text = cmd.image_list_text  # a small list travels inside the command
        if not text:
            text = await _list_text(deps, cmd.image_list)
        elif (size := len(text.encode())) > deps.max_list_bytes:
            raise errors.BadList(f"Image list too large: {size} bytes")
        entries = many.parse_list(
            text, cmd.image_folder, deps.data_roots, len(plan.labels), cmd.num_test_images
        )
    if not entries:
        if folder is not None:
            await asyncio.to_thread(archive.remove, folder)
        raise errors.EmptyList()
    return Prepared(plan=plan, entries=entries, symbol=symbol, params=params, folder=folder)


async def _compute(
    deps: Deps,
    cmd: ClassifyMany,
    prep: Prepared,
    progress: dict[str, int] | None = None,
    checkpoints: takeover.Checkpoints | None = None,
) -> ManyResult:
    """Run the list on the predictor's thread, in batches; a job (`checkpoints`) continues
    from its last checkpoint and writes new ones as it goes."""
    plan = prep.plan
    key = (plan.job_id, plan.epoch, plan.params.digest or plan.params.name)
    how = {
        "width": plan.width,
        "height": plan.height,
        "channels": plan.channels,
        "resize_mode": plan.resize_mode,
        "input_shape": plan.input_shape,
        "max_pixels": deps.max_pixels,
    }

    tally = many.Tally(labels=plan.labels, top_n=cmd.top_n)
    readable = [e for e in prep.entries if e.resolved is not None]
    first = await checkpoints.resume(tally, readable) if checkpoints is not None else 0
    tally.fail_unresolved(prep.entries)
    if progress is not None:  # a job taken over shows its checkpoints' count at once
        progress["done"] = len(tally.results) + len(tally.errors)
    step = max(1, deps.batch_size)
    starts = range(first, len(readable), step)
    chunks = [readable[i : i + step] for i in starts]
    ends = [min(i + step, len(readable)) for i in starts]
    load = partial(many.load_batch, how=how, max_bytes=deps.max_image_bytes)

    def forward(loaded: many.Loaded, ctx: object) -> np.ndarray:
        return deps.predictor.forward_here(key, prep.symbol, prep.params, loaded.batch, ctx)

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

    order = takeover.InOrder(tally, ends, first)
    started = time.perf_counter()
    # A bounded pipeline (at most `decode_ahead` + 2 batches in memory): the decode threads
    # read and decode the next batches while the predictor's thread runs the network; as soon
    # as batch i leaves the network, batch i+1 enters it and batch i is tallied here meanwhile,
    # so the network never waits for Python bookkeeping. One batch at a time on the predictor's
    # thread: a classify-one request waits for one batch at most. Batches are awaited in order,
    # so the results keep the list's order.
    ahead = deps.predictor.decode_ahead
    decoding = deque(deps.predictor.decode(load, chunk) for chunk in chunks[:ahead])
    queued, popped = len(decoding), 0
    running: tuple[many.Loaded, int, asyncio.Future[np.ndarray]] | None = None
    try:
        while decoding or running is not None:
            ready = None
            if decoding:
                loaded, index = await decoding.popleft(), popped
                popped += 1
                if queued < len(chunks):
                    decoding.append(deps.predictor.decode(load, chunks[queued]))
                    queued += 1
                order.hold(index, loaded.failures)
                if loaded.batch is None:
                    order.settle(index)  # nothing decoded: the network keeps its current batch
                    continue
                ready = loaded, index
            finished = None if running is None else (running[0], running[1], await running[2])
            running = None
            if ready is not None:
                submitted = deps.predictor.submit(forward, ready[0], deps.predictor.context())
                running = (ready[0], ready[1], submitted)
            if finished is not None:
                tally.add_batch(finished[0].entries, finished[2])
                order.settle(finished[1])
                if checkpoints is not None:
                    await checkpoints.save(tally, order.end)
            if progress is not None:
                progress["done"] = len(tally.results) + len(tally.errors)
        if checkpoints is not None:  # a process taking over from here only writes the result
            await checkpoints.save(tally, len(readable), now=True)
        result = await deps.predictor.run(finish)
    except MXNetError as e:
        log.exception("snapshot_unusable", job_id=plan.job_id, epoch=plan.epoch)
        raise errors.SnapshotUnusable(plan.job_id, plan.epoch, _mxnet_reason(e)) from e
    finally:
        await _drain([*decoding, *([running[2]] if running is not None else [])])
    deps.metrics.inc("classifications", len(result.results))
    log.info(
        "classified_many",
        job_id=plan.job_id,
        count=len(result.results),
        classified=len(readable) - first,  # here: a job taken over skips its checkpoints'
        seconds=round(time.perf_counter() - started, 3),
    )
    return result


async def _drain(futures: list[asyncio.Future[Any]]) -> None:
    """After a failure: cancel the batches not started, wait for those running (their
    threads must not outlive the request's state), and drop their results or errors."""
    for future in futures:
        future.cancel()
    for future in futures:
        with contextlib.suppress(BaseException):
            await future


async def _list_text(deps: Deps, ref: BlobRef) -> str:
    """The uploaded list (uploads bucket only, bounded size), decoded leniently."""
    if ref.bucket != subjects.BUCKET_UPLOADS:
        raise errors.BadList(f"Lists are read from the uploads bucket only, not {ref.bucket}")
    store = await deps.js.object_store(ref.bucket)
    try:
        info = await store.get_info(ref.name)
        if (info.size or 0) > deps.max_list_bytes:
            raise errors.BadList(f"Image list too large: {info.size} bytes")
        data = await read_bytes(deps.js, ref.bucket, ref.name)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.BadList(f"Uploaded list {ref.name} not found") from e
    return data.decode("utf-8", errors="replace")


async def _put(deps: Deps, name: str, value: msgspec.Struct) -> BlobRef:
    return await put_bytes(deps.js, subjects.BUCKET_UPLOADS, name, msgspec.json.encode(value))


async def _forget(deps: Deps, ref: BlobRef | None) -> None:
    """Delete the uploaded list (or archive) once it has been used."""
    if ref is None or not ref.name:
        return
    with contextlib.suppress(Exception):
        store = await deps.js.object_store(ref.bucket)
        await store.delete(ref.name)
