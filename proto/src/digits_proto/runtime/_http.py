"""Each service's small HTTP API: `/health` (200 only when ready) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable


class Metrics:
    """Counters and gauges rendered in the Prometheus text format."""

    def __init__(self, prefix: str):
        self.prefix = prefix.replace("-", "_")
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self.counters[(name, tuple(sorted(labels.items())))] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        self.gauges[(name, tuple(sorted(labels.items())))] = value

    def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        for kind, series in (("counter", self.counters), ("gauge", self.gauges)):
            for name in sorted({n for n, _ in series}):
                full = f"{self.prefix}_{name}"
                lines.append(f"# TYPE {full} {kind}")
                for (n, labels), value in sorted(series.items()):
                    if n == name:
                        text = ",".join(f'{k}="{v}"' for k, v in labels)
                        lines.append(f"{full}{{{text}}} {value}" if text else f"{full} {value}")
        return "\n".join(lines) + "\n"


async def serve_health(
    host: str, port: int, ready: Callable[[], bool], metrics: Metrics
) -> asyncio.Server:
    """Start the tiny HTTP server (HTTP/1.0 style: one request per connection)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/health"):
                ok = ready()
                status, body = (
                    ("200 OK", b"ok\n") if ok else ("503 Service Unavailable", b"starting\n")
                )
                ctype = "text/plain"
            elif path.startswith("/metrics"):
                status, body, ctype = (
                    "200 OK",
                    metrics.render().encode(),
                    "text/plain; version=0.0.4",
                )
            else:
                status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
