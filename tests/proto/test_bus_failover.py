"""A bus that rides out a stream leader election: on an R3 cluster, appends and loads go on
while the node leading the stream is killed (kill -9), every event stored exactly once, and the
stall measured; with no quorum at all, a clear error at the deadline instead of a hang."""

from __future__ import annotations

import asyncio
import itertools
import time

import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from digits_proto import codec, subjects
from digits_proto.models import MetricsRecorded
from digits_proto.runtime import (
    RETRY_ENV,
    BusUnavailable,
    EventStore,
    append_created,
    connect,
    ensure_streams,
    put_bytes,
    read_bytes,
)
from digits_proto.runtime._replicas import is_election
from tests.conftest import NatsCluster

BEFORE, AFTER = 40, 60  # appends before the kill, and at least this many after it
STALL_GOAL = 10.0  # seconds (issue 16); the test fails past twice that (a loaded CI machine)


def _point(i: int) -> MetricsRecorded:
    return MetricsRecorded(model_id="m1", phase="train", iteration=i, epoch=0, values={"l": i})


async def _r3(cluster: NatsCluster) -> tuple[Client, JetStreamContext]:
    nc = await connect(cluster.url, "digits-trainer")
    js = nc.jetstream()
    await ensure_streams(js, replicas=3)
    return nc, js


def _leader_index(cluster: NatsCluster, leader: str | None) -> int:
    return [cluster.server_name(i) for i in range(3)].index(leader or "")


async def test_appends_and_loads_ride_out_the_loss_of_the_stream_leader(
    nats_cluster: NatsCluster, record_property
) -> None:
    nc, js = await _r3(nats_cluster)
    try:
        store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        subject = subjects.model_metrics("m1")
        appended: list[str] = []
        done: list[float] = []
        killed_at: list[float] = []
        loads: list[int] = []

        async def writer() -> None:
            # Each append expects the previous one's sequence: a retried publish that the old
            # leader had stored must come back as that one (deduplicated), never as a conflict.
            seq, i = 0, 0
            while not killed_at or len(appended) < BEFORE + AFTER:
                event = _point(i)
                seq = await store.append(subject, [event], seq)
                appended.append(event.event_id)
                done.append(time.monotonic())
                i += 1

        async def reader() -> None:
            while not killed_at or len(appended) < BEFORE + AFTER:
                events, _ = await store.load(subject)
                loads.append(len(events))
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(writer()), asyncio.create_task(reader())]
        while len(appended) < BEFORE:
            await asyncio.sleep(0.01)
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
        leader = (await js.stream_info(subjects.STREAM_METRICS)).cluster.leader
        nats_cluster.kill(_leader_index(nats_cluster, leader))
        killed_at.append(time.monotonic())
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

        # The stall: the longest wait between two appends once the leader was killed.
        stall = max(b - a for a, b in itertools.pairwise(done) if b > killed_at[0])
        print(f"\nstream leader {leader} killed: appends stalled {stall:.2f} s at most")
        record_property("election_stall_s", round(stall, 3))
        assert stall <= 2 * STALL_GOAL

        events, last = await store.load(subject)
        assert [e.event_id for e in events] == appended  # none lost, none twice, in order
        assert [e.iteration for e in events] == list(range(len(appended)))
        info = await js.stream_info(subjects.STREAM_METRICS)
        assert info.state.messages == len(appended) and last == info.state.last_seq
        assert info.cluster.leader != leader
        assert loads and loads == sorted(loads)  # every load answered, never going back
    finally:
        await nc.close()


async def test_a_repeated_append_is_the_first_one_not_a_conflict(
    nats_cluster: NatsCluster,
) -> None:
    """What a retry after a lost ack sends: the same event at the same expected sequence."""
    nc, js = await _r3(nats_cluster)
    try:
        store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        subject = subjects.model_metrics("m2")
        event = _point(0)
        first = await store.append(subject, [event], 0)
        assert await store.append(subject, [event], 0) == first
        assert (await js.stream_info(subjects.STREAM_METRICS)).state.messages == 1
    finally:
        await nc.close()


async def test_on_a_single_server_too_a_repeated_append_is_the_first_one(
    js: JetStreamContext,
) -> None:
    """The embedded server restarted by the launcher: the same ride-out, stored once."""
    store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    subject = subjects.model_metrics("m4")
    event = _point(0)
    first = await store.append(subject, [event], 0)
    await store.append(subject, [_point(1)], first)  # another append in between
    assert await store.append(subject, [event], 0) == first
    assert len((await store.load(subject))[0]) == 2


async def test_a_resent_keyed_create_is_its_own_first_attempt_not_an_earlier_create(
    js: JetStreamContext,
) -> None:
    """append_created resent (its ack lost): the same event, not "created before"; another
    request under the same key still gets the first one's event."""
    store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    subject = subjects.model_metrics("m5")
    event = _point(0)
    seq, original = await append_created(store, subject, [event], "idem-m5")
    assert original is None
    assert await append_created(store, subject, [event], "idem-m5") == (seq, None)
    again, first = await append_created(store, subject, [_point(0)], "idem-m5")
    assert again == seq and first is not None and first.event_id == event.event_id
    assert len((await store.load(subject))[0]) == 1


async def test_a_blob_is_put_and_read_while_its_bucket_elects_a_leader(
    nats_cluster: NatsCluster,
) -> None:
    nc, js = await _r3(nats_cluster)
    try:
        data = bytes(range(256)) * 20_000  # 5 MB: several chunks in flight at the kill
        stream = f"OBJ_{subjects.BUCKET_MODELS}"
        leader = (await js.stream_info(stream)).cluster.leader
        started = time.monotonic()
        put = asyncio.create_task(put_bytes(js, subjects.BUCKET_MODELS, "snap", data))
        nats_cluster.kill(_leader_index(nats_cluster, leader))
        ref = await asyncio.wait_for(put, timeout=60)
        print(f"\nbucket leader {leader} killed: 5 MB put took {time.monotonic() - started:.2f} s")
        assert ref.size == len(data)
        assert await read_bytes(js, subjects.BUCKET_MODELS, "snap") == data
    finally:
        await nc.close()


async def test_without_a_quorum_an_append_ends_in_a_clear_error_at_the_deadline(
    nats_cluster: NatsCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc, js = await _r3(nats_cluster)
    try:
        store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        subject = subjects.model_metrics("m3")
        seq = await store.append(subject, [_point(0)], 0)
        monkeypatch.setenv(RETRY_ENV, "3")
        survivor = next(
            i
            for i in range(3)
            if f":{nats_cluster.client_ports[i]}"
            in (nc.connected_url.netloc if nc.connected_url else "")
        )
        for i in range(3):
            if i != survivor:
                nats_cluster.kill(i)
        event = _point(1)
        started = time.monotonic()
        with pytest.raises(BusUnavailable) as failed:
            await store.append(subject, [event], seq)
        took = time.monotonic() - started
        assert 3 <= took < 3 + 6, took  # the deadline, plus one attempt's wait at most
        assert RETRY_ENV in str(failed.value) and "majority of the NATS nodes" in str(failed.value)

        for i in range(3):  # the nodes are back: the same event, sent again, is stored once
            if i != survivor:
                nats_cluster.start(i)
        monkeypatch.setenv(RETRY_ENV, "30")
        await store.append(subject, [event], seq)
        events, _ = await store.load(subject)
        assert [e.iteration for e in events] == [0, 1]
    finally:
        await nc.close()


def test_what_is_retried_and_what_is_not() -> None:
    """Election answers are retried; an answer about the message itself never is."""
    assert is_election(NoStreamResponseError())
    assert is_election(nats.errors.TimeoutError())
    assert is_election(APIError(code=503, err_code=10008))  # JetStream temporarily unavailable
    assert is_election(APIError(code=409, err_code=10158))  # the same msg id still in process
    assert not is_election(APIError(code=400, err_code=10071))  # wrong last sequence: a conflict
    assert not is_election(NotFoundError(code=404, err_code=10059))
