"""A stand-in service for launcher tests: serves /health and /ready; crashes once if told to."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import uvicorn
from litestar import Litestar, get


@get(["/health", "/ready"], sync_to_thread=False)
def ok() -> str:
    return "ok"


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
    config = uvicorn.Config(Litestar([ok]), host="127.0.0.1", port=port, log_config=None)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
