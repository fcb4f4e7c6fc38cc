"""`GET /api/v1/events`: the stored events, for consumers who cannot reach NATS.

JSON pages (`{"events": [...], "next": cursor}`) or, with `Accept: text/event-stream`, SSE that
follows live (each message's `id` is the cursor, so Last-Event-ID resumes without gap or
duplicate). Served streams: DIGITS_DATASETS, DIGITS_MODELS, DIGITS_METRICS, DIGITS_PROGRESS,
DIGITS_GPUS — what every signed-in account reads on the read side too (jobs are readable by any
account). DIGITS_USERS is served to nobody: its events hold password and token hashes (admins
read accounts and the audit view at /api/v1/users and /api/v1/audit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Response, Stream
from nats.errors import Error as NatsError

from digits_gateway import eventfeed
from digits_gateway.deps import Gateway
from digits_gateway.errors import JobNotFound, Unavailable
from digits_gateway.forms import FormErrors
from digits_gateway.readmodel import queries
from digits_proto import subjects as s
from digits_proto.permissions import CONSUMER_STREAMS

DEFAULT_LIMIT = 100
MAX_CURSOR = 2000
MAX_SEQUENCE = 2**63 - 1  # JetStream's sequences are uint64; a larger one is no cursor of ours
MAX_LIMIT = 1000
RETRY_MS = 2000
KEEPALIVE = b": keepalive\r\n\r\n"


class EventPage(msgspec.Struct, kw_only=True):
    """One page of events and the cursor after its last (pass it back as `after`)."""

    events: list[eventfeed.Envelope]
    next: str


def _stream_names(text: str | None) -> list[str]:
    """The streams asked for (full or short names, comma-separated); all served ones if none."""
    if not text:
        return list(CONSUMER_STREAMS)
    names: list[str] = []
    for part in text.split(","):
        name = part.strip().upper()
        name = name if name.startswith("DIGITS_") else f"DIGITS_{name}"
        if name == s.STREAM_USERS:
            raise FormErrors(
                {"stream": ["DIGITS_USERS is not served (accounts' password and token hashes)"]}
            )
        if name not in CONSUMER_STREAMS:
            served = ", ".join(CONSUMER_STREAMS)
            raise FormErrors({"stream": [f"Unknown stream {part.strip()!r}: one of {served}"]})
        names.append(name)
    return list(dict.fromkeys(names))


def _job_subjects(job: queries.Job) -> dict[str, str]:
    """The subject of each stream that holds this job's events."""
    if job.type == "dataset":
        return {
            s.STREAM_DATASETS: s.dataset_events(job.id),
            s.STREAM_PROGRESS: s.dataset_progress(job.id),
        }
    return {
        s.STREAM_MODELS: s.model_events(job.id),
        s.STREAM_METRICS: s.model_metrics(job.id),
        s.STREAM_PROGRESS: s.model_progress(job.id),
    }


def _filters(gw: Gateway, stream: str | None, job_id: str | None) -> dict[str, str]:
    """stream → the subject read on it (the whole stream's, or the job's)."""
    names = _stream_names(stream)
    if not job_id:
        return {name: s.EVENT_STREAMS[name] for name in names}
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job_id, include_deleted=True)
    if job is None:
        raise JobNotFound(f"Job {job_id} not found")
    subjects = _job_subjects(job)
    found = {name: subjects[name] for name in names if name in subjects}
    if not found:
        raise FormErrors({"stream": [f"No {job.type}'s events are on {', '.join(names)}"]})
    return found


def parse_cursor(text: str | None, streams: list[str], field: str) -> eventfeed.Cursor:
    """`after` as a sequence (one stream) or a cursor (`STREAM:seq,...`); streams it does not
    name start from the beginning."""
    cursor = dict.fromkeys(streams, 0)
    if not text:
        return cursor
    if len(text) > MAX_CURSOR:
        raise FormErrors({field: [f"A cursor is at most {MAX_CURSOR} characters"]})
    if text.isdigit():
        if len(streams) != 1:
            raise FormErrors({field: ["A sequence needs exactly one stream= (else pass `next`)"]})
        text = f"{streams[0]}:{text}"
    for part in text.split(","):
        stream, _, seq = part.strip().rpartition(":")
        if stream not in cursor or not seq.isdigit() or int(seq) > MAX_SEQUENCE:
            raise FormErrors(
                {field: [f"Not a cursor of these streams: {part.strip()!r} (STREAM:seq,...)"]}
            )
        cursor[stream] = int(seq)
    return cursor


def _wants_stream(request: Request[Any, Any, Any]) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


@get(
    "/api/v1/events",
    summary="Stored events as JSON pages, or followed live as SSE",
    description="Envelope per event: type, version, subject, stream, sequence, time, "
    "correlation_id, causation_id, payload. `after` is a sequence (with one `stream`), the "
    "`next` cursor of a page, or `end` (only what comes next); `job` keeps one job's events; "
    "SSE with Accept: text/event-stream "
    "(message id = cursor; Last-Event-ID resumes).",
    responses={
        200: ResponseSpec(
            data_container=EventPage, description="A page of events", generate_examples=False
        )
    },
)
async def list_events(
    request: Request[Any, Any, Any],
    gw: Gateway,
    after: Annotated[str | None, Parameter(query="after", max_length=MAX_CURSOR)] = None,
    stream: Annotated[str | None, Parameter(query="stream", max_length=200)] = None,
    job: Annotated[str | None, Parameter(query="job", max_length=64)] = None,
    limit: Annotated[int, Parameter(query="limit", ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    last_event_id: Annotated[str | None, Parameter(header="last-event-id")] = None,
) -> Response[EventPage] | Stream:
    """A page of events after `after`, or (SSE) every event after it, live."""
    filters = _filters(gw, stream, job)
    streams = list(filters)
    if after == "end" and not last_event_id:
        after = await _end(gw, streams)
    if _wants_stream(request):
        resume = last_event_id or after
        field = "last-event-id" if last_event_id else "after"
        cursor = parse_cursor(resume, streams, field)
        return _sse(_frames(gw, filters, cursor))
    cursor = parse_cursor(after, streams, "after")
    try:
        events, following = await eventfeed.page(gw.js, filters, cursor, limit)
    except (NatsError, TimeoutError) as e:
        raise Unavailable(f"JetStream did not answer: {e or type(e).__name__}") from e
    return Response(EventPage(events=events, next=eventfeed.encode_cursor(following)))


async def _end(gw: Gateway, streams: list[str]) -> str:
    """The cursor of what is stored now: `after=end` follows only what comes next."""
    infos = [await gw.js.stream_info(name) for name in streams]
    return eventfeed.encode_cursor({i.config.name or "": i.state.last_seq for i in infos})


async def _frames(
    gw: Gateway, filters: dict[str, str], cursor: eventfeed.Cursor
) -> AsyncIterator[bytes]:
    yield b"retry: %d\r\n\r\n" % RETRY_MS
    position = dict(cursor)
    async for event in eventfeed.follow(gw.js, filters, cursor, gw.settings.keepalive_seconds):
        if event is None:
            yield KEEPALIVE
            continue
        position[event.stream] = event.sequence
        cursor_id = eventfeed.encode_cursor(position).encode()
        yield b"id: %s\r\ndata: %s\r\n\r\n" % (cursor_id, msgspec.json.encode(event))


def _sse(content: AsyncIterator[bytes]) -> Stream:
    # X-Accel-Buffering: a proxy in front must not hold events back.
    return Stream(
        content,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
