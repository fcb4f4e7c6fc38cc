"""The inference service run in the test's own process and loop, until the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from digits_inference import app
from digits_inference.settings import Settings
from digits_proto import subjects
from digits_proto.runtime import ServiceHost

READY_SECONDS = 10.0


@contextlib.asynccontextmanager
async def running_inference(settings: Settings, http_port: int = -1) -> AsyncIterator[ServiceHost]:
    """The service's host once it is ready (`http_port` 0: a free port; -1: no HTTP); stopped
    and awaited after the block."""
    host = ServiceHost(subjects.SERVICE_INFERENCE, settings.nats_url, http_port=http_port)
    task = asyncio.create_task(app.main(settings, host))
    deadline = asyncio.get_running_loop().time() + READY_SECONDS
    while not (host.ready or task.done()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)  # polling the readiness flag, bounded by the deadline
    try:
        assert host.ready, "inference service did not become ready"
        yield host
    finally:
        host.stop.set()
        await asyncio.wait_for(task, 10)
