"""Run gpu-broker instances in-process against the test's nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from digits_gpu_broker import app
from digits_gpu_broker.settings import Settings
from digits_proto import subjects
from digits_proto.runtime import ServiceHost

StartBroker = Callable[..., Awaitable[ServiceHost]]


@pytest.fixture
async def start_broker(nats_url: str, js) -> AsyncIterator[StartBroker]:
    """Factory: start a broker (`nvml=` a FakeNvml or None; settings overrides as kwargs)."""
    running: list[tuple[ServiceHost, asyncio.Task[None]]] = []

    async def start(nvml: Any = None, **overrides: Any) -> ServiceHost:
        values = {"nats_url": nats_url, "node_id": "n1", "port": -1, "lease_ttl": 2.0}
        settings = Settings(**{**values, **overrides})
        host = ServiceHost(subjects.SERVICE_GPU_BROKER, settings.nats_url, settings.port)
        task = asyncio.create_task(app.serve(host, settings, nvml))
        running.append((host, task))
        for _ in range(500):
            if host.ready or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        assert host.ready, "broker did not become ready"
        return host

    yield start
    for host, _ in running:
        host.stop.set()
    for _, task in running:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=10)
