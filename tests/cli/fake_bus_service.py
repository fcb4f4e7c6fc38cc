"""A stand-in service on the bus for launcher tests: connects as digits-datasets with the
runtime's own `connect` (the one every service uses) and is ready only while JetStream answers
it (its stream's info); `FAKE_EXIT=<code>:<reason>` logs the reason and exits with the code."""

from __future__ import annotations

import asyncio
import os
import sys

import nats
import uvicorn
from litestar import Litestar, Response, get

from digits_proto import subjects
from digits_proto.runtime import connect

STATE: dict[str, object] = {}


@get("/health", sync_to_thread=False)
def ok() -> str:
    return "ok"


@get("/ready")
async def ready() -> Response[dict[str, object]]:
    nc = STATE.get("nc")
    try:
        await nc.jetstream(timeout=2).stream_info(subjects.STREAM_DATASETS)  # type: ignore[union-attr]
    except (nats.errors.Error, TimeoutError) as e:  # no connection, no leader: not ready
        return Response({"ready": False, "waiting_for": [repr(e)]}, status_code=503)
    return Response({"ready": True, "waiting_for": [], "reconnects": nc.stats["reconnects"]})  # type: ignore[union-attr]


async def main() -> None:
    if spec := os.environ.get("FAKE_EXIT"):
        code, reason = spec.split(":", 1)
        print("starting", flush=True)
        print(reason, flush=True)
        sys.exit(int(code))
    STATE["nc"] = await connect(os.environ["DIGITS_NATS_URL"], subjects.SERVICE_DATASETS)
    port = int(os.environ["DIGITS_DATASETS_PORT"])
    config = uvicorn.Config(Litestar([ok, ready]), host="127.0.0.1", port=port, log_config=None)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
