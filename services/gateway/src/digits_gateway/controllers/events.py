"""Server-sent events: `/events` (every job, for the home page) and `/jobs/<id>/events`.

Every message's `id` is a cursor of stream positions (`DIGITS_MODELS:12,DIGITS_METRICS:340`).
A reconnect sends it back as Last-Event-ID and gets exactly what is newer, from DuckDB, then
live changes: subscribing before reading makes the two overlap, and the cursor drops the
overlap, so there is no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.params import Parameter
from litestar.response import Stream

from digits_gateway import views
from digits_gateway.deps import Gateway
from digits_gateway.errors import JobNotFound
from digits_gateway.readmodel import queries
from digits_gateway.readmodel.live import LiveEvent, Subscription
from digits_proto import subjects

JOB_KINDS = ("status", "progress", "metric", "snapshot", "deleted", "gpu")
HOME_KINDS = ("status", "progress", "snapshot", "deleted", "gpu")
HOME_STREAMS = (subjects.STREAM_DATASETS, subjects.STREAM_MODELS)
RETRY_MS = 2000

LastEventId = Annotated[str | None, Parameter(header="last-event-id", required=False)]


def encode_cursor(cursor: dict[str, int]) -> str:
    """`STREAM:seq,...` in a stable order."""
    return ",".join(f"{stream}:{seq}" for stream, seq in sorted(cursor.items()))


def parse_cursor(text: str | None, streams: Iterable[str]) -> dict[str, int] | None:
    """The positions in a Last-Event-ID, or None if it is not one of ours for these streams."""
    if not text:
        return None
    cursor: dict[str, int] = {}
    for part in text.split(","):
        stream, _, seq = part.strip().rpartition(":")
        if not stream or not seq.isdigit():
            return None
        cursor[stream] = int(seq)
    wanted = set(streams)
    return {s: cursor[s] for s in wanted} if wanted <= cursor.keys() else None


def with_progress(cursor: dict[str, int] | None, text: str | None) -> dict[str, int] | None:
    """The cursor with its progress position (progress has its own stream): 0 when the cursor
    predates that stream, so a resumed client gets each job's latest progress once."""
    if cursor is None:
        return None
    found = parse_cursor(text, (subjects.STREAM_PROGRESS,))
    return {**cursor, subjects.STREAM_PROGRESS: found[subjects.STREAM_PROGRESS] if found else 0}


def _frame(
    kind: str, data: bytes, cursor: dict[str, int] | None, retry: int | None = None
) -> bytes:
    """One SSE message. The data is one line of JSON (msgspec writes no newline), so it needs
    no splitting; built directly, as Litestar's per-message encoder costs more than the rest
    of a delivery."""
    event_id = b"id: %s\r\n" % encode_cursor(cursor).encode() if cursor is not None else b""
    retry_line = b"retry: %d\r\n" % retry if retry is not None else b""
    return b"%sevent: %s\r\ndata: %s\r\n%s\r\n" % (event_id, kind.encode(), data, retry_line)


def _message(kind: str, data: Any, cursor: dict[str, int], retry: int | None = None) -> bytes:
    return _frame(kind, msgspec.json.encode(data), cursor, retry)


KEEPALIVE = b": keepalive\r\n\r\n"


async def _stream(
    gw: Gateway,
    sub: Subscription,
    first: list[bytes],
    replay: list[LiveEvent],
    cursor: dict[str, int],
    floor: dict[str, int],
) -> AsyncIterator[bytes]:
    try:
        chunk = list(first)
        for event in replay:
            cursor[event.stream] = max(cursor[event.stream], event.seq)
            chunk.append(_message(event.kind, event.data, cursor))
        if chunk:
            yield b"".join(chunk)
        # Everything up to the read positions was in the replay (or superseded in it).
        for stream, seq in floor.items():
            cursor[stream] = max(cursor[stream], seq)
        while True:
            try:
                async with asyncio.timeout(gw.settings.keepalive_seconds):
                    delivery = await sub.queue.get()
            except TimeoutError:
                yield KEEPALIVE
                continue
            # Whatever queued meanwhile goes out in the same write: one send, however many.
            batch = [delivery]
            while not sub.queue.empty():
                batch.append(sub.queue.get_nowait())
            chunk = []
            ended = False
            for item in batch:
                if item is None:  # shutdown, or this client fell too far behind
                    ended = True
                    break
                event, data = item
                if event.kind == "gpu":  # telemetry: not persisted, so no cursor position
                    chunk.append(_frame("gpu", data, None))
                elif event.stream in cursor and event.seq > cursor[event.stream]:
                    cursor[event.stream] = event.seq
                    chunk.append(_frame(event.kind, data, cursor))
            if chunk:
                yield b"".join(chunk)
            if ended:
                return
    finally:
        gw.hub.unsubscribe(sub)


def _sse(content: AsyncIterator[bytes]) -> Stream:
    # X-Accel-Buffering: a proxy in front must not hold events back.
    return Stream(
        content,
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Accel-Buffering": "no",
        },
    )


@get("/events")
async def all_events(gw: Gateway, last_event_id: LastEventId = None) -> Stream:
    """Every job's status/progress/snapshot/deleted; a first `history` lists all jobs."""
    cursor = with_progress(parse_cursor(last_event_id, HOME_STREAMS), last_event_id)
    sub = gw.hub.subscribe(None, HOME_KINDS)
    floor = {s: gw.projection.positions[s] for s in (*HOME_STREAMS, subjects.STREAM_PROGRESS)}
    first: list[bytes] = []
    replay: list[LiveEvent] = []
    with gw.db.cursor() as cur:
        if cursor is None:
            cursor = dict(floor)
            jobs = [views.summary(j) for j in queries.list_jobs(cur)]
            first.append(_message("history", {"jobs": jobs}, cursor, RETRY_MS))
        else:
            replay = queries.changes_since(cur, None, cursor)
    return _sse(_stream(gw, sub, first, replay, cursor, floor))


@get("/jobs/{job_id:str}/events")
async def job_events(gw: Gateway, job_id: str, last_event_id: LastEventId = None) -> Stream:
    """One job: a first `history` (status, progress, snapshots, every metric point), then live."""
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job_id, include_deleted=True)
    if job is None:
        raise JobNotFound()
    streams = [job.stream] + ([subjects.STREAM_METRICS] if job.type == "model" else [])
    cursor = with_progress(parse_cursor(last_event_id, streams), last_event_id)
    if job.deleted and cursor is None:
        raise JobNotFound()
    sub = gw.hub.subscribe(job.id, JOB_KINDS)
    floor = {s: gw.projection.positions[s] for s in (*streams, subjects.STREAM_PROGRESS)}
    first: list[bytes] = []
    replay: list[LiveEvent] = []
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job.id, include_deleted=True) or job  # re-read after subscribe
        if cursor is None:
            cursor = dict(floor)
            first.append(_message("history", _history(cur, job), cursor, RETRY_MS))
        else:
            since = {s: cursor[s] for s in (job.stream, subjects.STREAM_PROGRESS)}
            replay = queries.changes_since(cur, job.id, since)
            if job.type == "model":
                replay += queries.metric_events_since(cur, job.id, cursor[subjects.STREAM_METRICS])
    return _sse(_stream(gw, sub, first, replay, cursor, floor))


def _history(cur: queries.Cursor, job: queries.Job) -> dict[str, Any]:
    data = views.summary(job)
    data["job_id"] = job.id
    data["status_history"] = [[s, at.timestamp()] for s, at in queries.status_history(cur, job.id)]
    data["status_notes"] = queries.status_notes(cur, job.id)
    if job.type == "model":
        data["snapshots"] = [s.epoch for s in queries.snapshots(cur, job.id)]
        data["metrics"] = [
            {
                "seq": p.seq,
                "epoch": p.epoch,
                "iteration": p.iteration,
                "phase": p.phase,
                "values": p.values,
                "occurred": p.occurred,  # charts by wall time
            }
            for p in queries.metrics(cur, job.id)
        ]
    return data
