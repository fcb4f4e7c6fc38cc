"""The 3-node cluster the replication tests use: R3 streams, one node lost, still writable."""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NoStreamResponseError

from tests.conftest import NatsCluster


async def test_an_r3_stream_takes_writes_with_one_node_killed(nats_cluster: NatsCluster) -> None:
    nc = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="T", subjects=["t.>"], num_replicas=3))
        await js.publish("t.1", b"one")
        leader = (await js.stream_info("T")).cluster.leader
        names = [nats_cluster.server_name(i) for i in range(3)]
        nats_cluster.kill(names.index(leader))
        # While the survivors elect a new stream leader a publish finds no responder: the
        # stall every writer must ride out (measured here, bounded by the deadline).
        deadline = time.monotonic() + 15
        while True:
            try:
                ack = await js.publish("t.2", b"two", timeout=2)
                break
            except (NoStreamResponseError, TimeoutError):
                assert time.monotonic() < deadline, "no stream leader within 15 s"
                await asyncio.sleep(0.1)
        assert ack.seq == 2
        info = await js.stream_info("T")
        assert info.cluster.leader != leader and info.state.messages == 2
    finally:
        await nc.close()
