"""A stand-in service for launcher tests: serves /health; crashes once if told to."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from digits_proto.runtime import Metrics, serve_health


async def main() -> None:
    """Serve /health on DIGITS_<NAME>_PORT; exit 3 on the first run when CRASH_MARKER is set."""
    port = int(
        next(
            v for k, v in os.environ.items() if k.startswith("DIGITS_FAKE") and k.endswith("_PORT")
        )
    )
    marker = os.environ.get("CRASH_MARKER")
    if marker and not Path(marker).exists():
        Path(marker).write_text("crashed once")
        raise SystemExit(3)
    await serve_health("127.0.0.1", port, lambda: True, Metrics("fake"))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
