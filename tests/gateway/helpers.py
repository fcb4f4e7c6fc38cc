"""Small helpers for gateway tests: wait for a condition, read server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy; that value is returned."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


class SseEvent(msgspec.Struct):
    """One server-sent event as a browser's EventSource would see it."""

    event: str
    id: str | None
    data: Any


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse an SSE body line by line (CRLF or LF), skipping comments."""
    fields: dict[str, list[str]] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields or "event" in fields:
                data = "\n".join(fields.get("data", []))
                yield SseEvent(
                    event=fields.get("event", ["message"])[0],
                    id=fields["id"][0] if "id" in fields else None,
                    data=msgspec.json.decode(data) if data else None,
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key, []).append(value.removeprefix(" "))


async def take(events: AsyncIterator[SseEvent], count: int, timeout: float = 5.0) -> list[SseEvent]:
    """The next `count` events (fails the test if they do not come in time)."""
    out: list[SseEvent] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            out.append(await anext(events))
    return out
