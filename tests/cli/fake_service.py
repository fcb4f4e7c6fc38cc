"""A stand-in service for launcher tests: serves /health and /ready; crashes once if told to,
or never gets ready (FAKE_NOT_READY: /ready answers 503 with that reason)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import uvicorn
from litestar import Litestar, Response, get


@get("/health", sync_to_thread=False)
def ok() -> str:
    return "ok"


@get("/ready", sync_to_thread=False)
def ready() -> Response[dict[str, object]]:
    if reason := os.environ.get("FAKE_NOT_READY"):
        return Response({"ready": False, "waiting_for": [reason]}, status_code=503)
    return Response({"ready": True, "waiting_for": []})


async def main() -> None:
    """Serve /health and /ready on DIGITS_<NAME>_PORT; exit 3 on the first run when
    CRASH_MARKER is set."""
    port = int(
        next(
            v for k, v in os.environ.items() if k.startswith("DIGITS_FAKE") and k.endswith("_PORT")
        )
    )
    marker = os.environ.get("CRASH_MARKER")
    if marker and not Path(marker).exists():
        Path(marker).write_text("crashed once")
        raise SystemExit(3)
    config = uvicorn.Config(Litestar([ok, ready]), host="127.0.0.1", port=port, log_config=None)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
