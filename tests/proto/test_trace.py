"""Correlation and causation ids travel with commands, tickets and events (real nats-server)."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from digits_proto import codec, headers, subjects
from digits_proto.datasets import DeleteDataset
from digits_proto.models import ModelAborted, TrainModelTicket
from digits_proto.replies import Accepted
from digits_proto.runtime import (
    EventStore,
    Outcome,
    chain,
    consume_tickets,
    current_trace,
    request,
    request_id,
    serve_endpoints,
    trace_headers,
)

SUBJECT = "digits.cmd.t.trace"


def models(js: JetStreamContext) -> EventStore:
    return EventStore(js, subjects.STREAM_MODELS, codec.model_events)


async def last_headers(js: JetStreamContext, subject: str) -> dict[str, str]:
    msg = await js.get_last_msg(subjects.STREAM_MODELS, subject)
    return dict(msg.headers or {})


class Seen:
    """What a handler saw of its chain: the trace and the ids bound into log lines."""

    def __init__(self) -> None:
        self.traces: list[tuple[str, str]] = []
        self.logged: list[dict[str, object]] = []

    def record(self) -> None:
        trace = current_trace()
        assert trace is not None
        self.traces.append((trace.correlation_id, trace.causation_id))
        self.logged.append(structlog.contextvars.get_contextvars())


async def serve_appending(nc: Client, js: JetStreamContext, seen: Seen) -> None:
    """An endpoint whose handler appends one event to the model named by the command."""

    async def handle(command: DeleteDataset) -> Accepted:
        seen.record()
        await models(js).append(
            subjects.model_events(command.dataset_id), [ModelAborted(model_id="m")], None
        )
        return Accepted(id=command.dataset_id)

    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: handle})


async def test_an_event_appended_for_a_command_carries_its_chain_and_names_the_command(
    nc: Client, js: JetStreamContext
) -> None:
    """The chain's correlation id reaches the event; its cause is the command's own id."""
    seen = Seen()
    await serve_appending(nc, js, seen)
    job = uuid.uuid4().hex[:8]
    with chain("req-1", "req-1"):
        _, rejected = await request(nc, SUBJECT, DeleteDataset(dataset_id=job))
    assert rejected is None
    hdrs = await last_headers(js, subjects.model_events(job))
    assert hdrs[headers.CORRELATION_ID] == "req-1"
    command_id = seen.traces[0][1]
    assert hdrs[headers.CAUSATION_ID] == command_id != "req-1"
    assert seen.traces == [("req-1", command_id)]
    assert seen.logged[0]["correlation_id"] == "req-1"
    assert seen.logged[0]["causation_id"] == command_id


async def test_a_command_without_correlation_starts_a_new_chain_and_logs_it(
    nc: Client, js: JetStreamContext
) -> None:
    """A bare request (no headers) gets a fresh correlation id, logged; the next one another."""
    seen = Seen()
    await serve_appending(nc, js, seen)
    job = uuid.uuid4().hex[:8]
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            await nc.request(SUBJECT, codec.encode(DeleteDataset(dataset_id=job)), timeout=5)
    (first, _), (second, _) = seen.traces
    assert first and second and first != second
    started = [e["correlation_id"] for e in logs if e["event"] == "correlation_started"]
    assert started == [first, second]
    hdrs = await last_headers(js, subjects.model_events(job))
    assert hdrs[headers.CORRELATION_ID] == second


async def test_one_chain_does_not_leak_into_the_next_message(
    nc: Client, js: JetStreamContext
) -> None:
    """A command handled in chain A leaves nothing behind: the next, sent bare, is not in A."""
    seen = Seen()
    await serve_appending(nc, js, seen)
    with chain("chain-a", "chain-a"):
        await request(nc, SUBJECT, DeleteDataset(dataset_id="one"))
    await nc.request(SUBJECT, codec.encode(DeleteDataset(dataset_id="two")), timeout=5)
    assert seen.traces[0][0] == "chain-a"
    assert seen.traces[1][0] != "chain-a"
    assert current_trace() is None
    assert "correlation_id" not in structlog.contextvars.get_contextvars()


async def test_long_work_started_by_a_ticket_keeps_the_chain_of_the_command_that_queued_it(
    nc: Client, js: JetStreamContext
) -> None:
    """Command → ticket → a task the ticket's handler starts: its events carry the command's
    correlation id, and name the ticket as their cause."""
    await js.add_stream(StreamConfig(name="TRACE_WORK", subjects=["trace.work.>"]))
    job = uuid.uuid4().hex[:8]
    ticket_ids: list[str] = []
    stop = asyncio.Event()

    async def queue(command: DeleteDataset) -> Accepted:
        ticket = TrainModelTicket(model_id=command.dataset_id)
        hdrs = trace_headers({headers.MSG_ID: job}, command=True)
        ticket_ids.append(hdrs[headers.MESSAGE_ID])
        await js.publish("trace.work.train", codec.encode(ticket), headers=hdrs)
        return Accepted(id=command.dataset_id)

    async def work(msg) -> Outcome:
        async def report() -> None:  # e.g. a relay of a child's metrics, spawned by the job
            await asyncio.sleep(0)
            await models(js).append(subjects.model_events(job), [ModelAborted(model_id=job)], None)

        await asyncio.create_task(report())
        stop.set()
        return Outcome.ACK

    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: queue})
    loop = asyncio.create_task(
        consume_tickets(js, "TRACE_WORK", "trace.work.>", "trace-worker", work, stop)
    )
    with chain("req-7", "req-7"):
        await request(nc, SUBJECT, DeleteDataset(dataset_id=job))
    await asyncio.wait_for(stop.wait(), 20)
    await loop
    hdrs = await last_headers(js, subjects.model_events(job))
    assert hdrs[headers.CORRELATION_ID] == "req-7"
    assert hdrs[headers.CAUSATION_ID] == ticket_ids[0]


def test_trace_headers_outside_a_chain_start_one_per_message() -> None:
    """A sweep's event (no chain) still gets a correlation id, its own, naming itself."""
    a, b = trace_headers(), trace_headers(command=True)
    assert a[headers.CORRELATION_ID] != b[headers.CORRELATION_ID]
    assert a[headers.CAUSATION_ID] == a[headers.CORRELATION_ID]
    assert b[headers.MESSAGE_ID] not in (a[headers.CORRELATION_ID], b[headers.CORRELATION_ID])


def test_a_request_id_is_kept_only_when_it_is_a_sane_token() -> None:
    """A caller's X-Request-Id of [A-Za-z0-9._-]{1,128} is kept; anything else is replaced."""
    assert request_id("abc.DEF_1-2") == "abc.DEF_1-2"
    for bad in (None, "", "x" * 129, "a b", "evil\r\nSet-Cookie: x", "ä"):
        fresh = request_id(bad)
        assert fresh != bad and len(fresh) == 32


async def test_a_command_sent_on_the_first_hop_names_the_request_as_its_cause(nc: Client) -> None:
    """The gateway's first hop: correlation and cause are the request id; the command has its
    own id besides."""
    received: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def answer(msg) -> None:
        await received.put(dict(msg.headers or {}))
        await msg.respond(codec.encode(Accepted(id="x")))

    await nc.subscribe("digits.cmd.t.raw", cb=answer)
    with chain("req-9", "req-9"):
        await request(nc, "digits.cmd.t.raw", DeleteDataset(dataset_id="x"))
    hdrs = await asyncio.wait_for(received.get(), 5)
    assert hdrs[headers.CORRELATION_ID] == hdrs[headers.CAUSATION_ID] == "req-9"
    assert hdrs[headers.MESSAGE_ID] not in ("", "req-9")
