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
from litestar.response import ServerSentEvent, ServerSentEventMessage

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


def _message(
    kind: str, data: Any, cursor: dict[str, int], retry: int | None = None
) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        event=kind, data=msgspec.json.encode(data).decode(), id=encode_cursor(cursor), retry=retry
    )


async def _stream(
    gw: Gateway,
    sub: Subscription,
    first: list[ServerSentEventMessage],
    replay: list[LiveEvent],
    cursor: dict[str, int],
    floor: dict[str, int],
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        for message in first:
            yield message
        for event in replay:
            cursor[event.stream] = max(cursor[event.stream], event.seq)
            yield _message(event.kind, event.data, cursor)
        # Everything up to the read positions was in the replay (or superseded in it).
        for stream, seq in floor.items():
            cursor[stream] = max(cursor[stream], seq)
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), gw.settings.keepalive_seconds)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keepalive", data=None)
                continue
            if event is None:  # shutdown, or this client fell too far behind
                return
            if event.kind == "gpu":  # telemetry: not persisted, so no cursor position
                yield ServerSentEventMessage(
                    event="gpu", data=msgspec.json.encode(event.data).decode()
                )
                continue
            if event.stream not in cursor or event.seq <= cursor[event.stream]:
                continue
            cursor[event.stream] = event.seq
            yield _message(event.kind, event.data, cursor)
    finally:
        gw.hub.unsubscribe(sub)


def _sse(content: AsyncIterator[ServerSentEventMessage]) -> ServerSentEvent:
    # X-Accel-Buffering: a proxy in front must not hold events back.
    return ServerSentEvent(
        content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@get("/events")
async def all_events(gw: Gateway, last_event_id: LastEventId = None) -> ServerSentEvent:
    """Every job's status/progress/snapshot/deleted; a first `history` lists all jobs."""
    cursor = with_progress(parse_cursor(last_event_id, HOME_STREAMS), last_event_id)
    sub = gw.hub.subscribe(None, HOME_KINDS)
    floor = {s: gw.projection.positions[s] for s in (*HOME_STREAMS, subjects.STREAM_PROGRESS)}
    first: list[ServerSentEventMessage] = []
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
async def job_events(
    gw: Gateway, job_id: str, last_event_id: LastEventId = None
) -> ServerSentEvent:
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
    first: list[ServerSentEventMessage] = []
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
    if job.type == "model":
        data["snapshots"] = [s.epoch for s in queries.snapshots(cur, job.id)]
        data["metrics"] = [
            {
                "seq": p.seq,
                "epoch": p.epoch,
                "iteration": p.iteration,
                "phase": p.phase,
                "values": p.values,
            }
            for p in queries.metrics(cur, job.id)
        ]
    return data
