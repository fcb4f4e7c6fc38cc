"""`EventStore.load` in batches gives what one get per event gave, under each service's user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from digits_proto import codec, subjects
from digits_proto.models import MetricsRecorded, ModelDeleted
from digits_proto.runtime import EventStore, credentials_for
from digits_proto.runtime._store import LOAD_BATCH
from digits_proto.users import UserEnabled


async def _one_get_per_event(js: JetStreamContext, store: EventStore[Any], subject: str):
    """The former load, kept as the reference: get_msg(next=True) per event."""
    events, seq, last = [], 1, 0
    while True:
        try:
            msg = await js.get_msg(store.stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return events, last
        events.append(store.decoder.decode(msg.data or b""))
        last = msg.seq
        seq = msg.seq + 1


async def _publish(js: JetStreamContext, items: list[tuple[str, bytes]]) -> None:
    for subject, data in items:
        await js.publish_async(subject, data)
    await js.publish_async_completed()


async def test_a_long_interleaved_history_loads_as_one_get_per_event_loaded_it(js) -> None:
    """More than a batch of events, interleaved with another aggregate's, one deleted in the
    middle: the same events in the same order and the same last sequence as before."""
    store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    mine, other = subjects.model_metrics("m1"), subjects.model_metrics("m2")
    count = LOAD_BATCH * 2 + 37
    items = []
    for i in range(count):
        point = MetricsRecorded(
            model_id="m1", phase="train", iteration=i, epoch=i / 100, values={"loss": 1 / (i + 1)}
        )
        items.append((mine, codec.encode(point)))
        if i % 3 == 0:
            items.append(
                (
                    other,
                    codec.encode(
                        MetricsRecorded(model_id="m2", phase="val", iteration=i, epoch=0, values={})
                    ),
                )
            )
    await _publish(js, items)
    info = await js.stream_info(subjects.STREAM_METRICS)
    middle = await js.get_msg(subjects.STREAM_METRICS, seq=info.state.last_seq // 2)
    await js.delete_msg(subjects.STREAM_METRICS, middle.seq)

    events, last = await store.load(mine)
    expected, expected_last = await _one_get_per_event(js, store, mine)
    assert (events, last) == (expected, expected_last)
    assert len(events) == count - (middle.subject == mine)
    assert [e.iteration for e in events] == sorted(e.iteration for e in events)
    assert last == info.state.last_seq - (items[-1][0] != mine)


async def test_an_empty_and_a_single_event_aggregate(js) -> None:
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    assert await store.load(subjects.model_events("none")) == ([], 0)
    deleted = ModelDeleted(model_id="m1")
    seq = await store.append(subjects.model_events("m1"), [deleted], 0)
    assert await store.load(subjects.model_events("m1")) == ([deleted], seq)
    assert await store.load(subjects.model_events("m")) == ([], 0)  # no prefix match


async def test_each_service_loads_its_aggregates_with_its_own_user(
    js, nats_url: str, nats_creds: Path
) -> None:
    """The batched get needs only the rights each service already has (no consumer)."""
    await js.publish(subjects.user_events("alice"), codec.encode(UserEnabled(username="alice")))
    await js.publish(subjects.model_events("m1"), codec.encode(ModelDeleted(model_id="m1")))
    plain = "nats://" + nats_url.rsplit("@", 1)[-1]
    for service, stream, subject, decoder in (
        (
            subjects.SERVICE_GATEWAY,
            subjects.STREAM_USERS,
            subjects.user_events("alice"),
            codec.user_events,
        ),
        (
            subjects.SERVICE_TRAINER,
            subjects.STREAM_MODELS,
            subjects.model_events("m1"),
            codec.model_events,
        ),
        (
            subjects.SERVICE_INFERENCE,
            subjects.STREAM_MODELS,
            subjects.model_events("m1"),
            codec.model_events,
        ),
        (
            subjects.SERVICE_DATASETS,
            subjects.STREAM_MODELS,
            subjects.model_events("m1"),
            codec.model_events,
        ),
    ):
        creds = credentials_for(service, str(nats_creds))
        assert creds is not None
        nc = await nats.connect(
            plain,
            user=creds.user,
            password=creds.password,
            inbox_prefix=subjects.inbox_prefix(creds.user),
            allow_reconnect=False,
        )
        try:
            events, last = await EventStore(nc.jetstream(timeout=2), stream, decoder).load(subject)
        finally:
            await nc.close()
        assert len(events) == 1 and last > 0, service
