"""Failure model: NATS restarted → no acknowledged event lost, clients reconnect by themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from digits_proto import codec, subjects
from digits_proto.datasets import DatasetDeleted, DeleteDataset
from digits_proto.replies import Accepted
from digits_proto.runtime import EventStore, connect, ensure_streams, request, serve_endpoints
from tests.conftest import free_port, start_nats


async def test_acknowledged_events_survive_a_nats_restart_and_services_reconnect(
    tmp_path: Path,
) -> None:
    """Events acked before a restart are all there after it, and an endpoint answers again."""
    store, port = tmp_path / "nats", free_port()
    proc, url = start_nats(store, port)
    try:
        service_nc = await connect(url, "service")
        client_nc = await connect(url, "client")
        js = service_nc.jetstream()
        await ensure_streams(js)

        async def handle(cmd: DeleteDataset) -> Accepted:
            return Accepted(id=cmd.dataset_id)

        await serve_endpoints(
            service_nc,
            "digits-restart-test",
            codec.dataset_commands,
            {"digits.cmd.test.delete": handle},
        )
        events = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        subject = subjects.dataset_events("d1")
        seq = 0
        for _ in range(50):
            seq = await events.append(subject, [DatasetDeleted(dataset_id="d1")], seq)

        proc.terminate()
        proc.wait(timeout=10)
        proc, _ = start_nats(store, port)

        for _ in range(100):  # clients reconnect on their own (0.5 s backoff)
            if service_nc.is_connected and client_nc.is_connected:
                break
            await asyncio.sleep(0.1)
        for _ in range(50):  # JetStream recovers its streams from disk before it answers
            try:
                await js.stream_info(subjects.STREAM_DATASETS)
                break
            except Exception:  # noqa: BLE001 - not ready yet
                await asyncio.sleep(0.2)
        history, last = await events.load(subject)
        assert len(history) == 50 and last == seq
        body, rejected = await request(
            client_nc, "digits.cmd.test.delete", DeleteDataset(dataset_id="x")
        )
        assert rejected is None and codec.command_reply.decode(body) == Accepted(id="x")
        await service_nc.close()
        await client_nc.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
