"""A stand-in service on the bus for launcher tests: connects as digits-datasets with the
runtime's own `connect` (the one every service uses) and is ready only while JetStream answers
it (its stream's info); `FAKE_EXIT=<code>:<reason>` logs the reason and exits with the code at
start, or, with `FAKE_EXIT_ON=<file>`, once that file appears (a service running for a while)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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


def leave(spec: str) -> None:
    code, reason = spec.split(":", 1)
    print(reason, flush=True)
    os._exit(int(code))  # at once, as a service's NeedsOperator ends it


async def exit_on(trigger: Path, spec: str) -> None:
    while not trigger.exists():
        await asyncio.sleep(0.1)
    leave(spec)


async def main() -> None:
    spec = os.environ.get("FAKE_EXIT", "")
    print("starting", flush=True)
    if spec and not os.environ.get("FAKE_EXIT_ON"):
        leave(spec)
    if spec:
        STATE["exit"] = asyncio.create_task(exit_on(Path(os.environ["FAKE_EXIT_ON"]), spec))
    STATE["nc"] = await connect(os.environ["DIGITS_NATS_URL"], subjects.SERVICE_DATASETS)
    port = int(os.environ["DIGITS_DATASETS_PORT"])
    config = uvicorn.Config(Litestar([ok, ready]), host="127.0.0.1", port=port, log_config=None)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
