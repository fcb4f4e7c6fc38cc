"""Read a `text/event-stream` response as (event, data, id) messages (the WHATWG rules we need:
`event:`, `data:` lines joined by newlines, `id:`, comments skipped, a blank line dispatches)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class Message(NamedTuple):
    """One server-sent event."""

    event: str
    data: str
    id: str | None


def messages(lines: Iterable[str]) -> Iterator[Message]:
    """The messages in a stream of lines (httpx's `iter_lines`)."""
    event, data, last_id = "", [], None
    for line in lines:
        if not line:
            if data:
                yield Message(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
