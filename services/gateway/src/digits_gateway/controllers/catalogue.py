"""The published event catalogue: `/api/v1/events/catalogue` (AsyncAPI 3 as JSON) and its page.

Both come from `digits_proto.catalogue`, the generator of the committed `proto/schema/` files
(a test keeps those current), so the page shows exactly what consumers download.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from litestar import Request, get
from litestar.response import Template

from digits_gateway import ui
from digits_gateway.params import username
from digits_proto import catalogue

# Page sections, in order: which channels go where (by the document's own facts).
SECTIONS = (
    ("events", "Event streams", "Stored in JetStream: replay them from any sequence."),
    (
        "work",
        "Work queues",
        "Tickets for long work; one worker of the receiving service takes each.",
    ),
    ("live", "Live subjects", "Core NATS, not stored: subscribe to see them as they happen."),
    (
        "commands",
        "Commands",
        "Request/reply endpoints; the services answer with the replies listed.",
    ),
)


@functools.cache
def _document() -> dict[str, Any]:
    return catalogue.document()


def type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema as a short type expression (`str | null`, `list[BlobRef]`, `dict[str, int]`)."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("prefixItems")
        if items:
            return "[" + ", ".join(type_text(s) for s in items) + "]"
        return f"list[{type_text(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {type_text(schema['additionalProperties'])}]"
    return str(kind)


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields of one object schema: name, type, required, default (as JSON text)."""
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if name == "type":
            continue  # the tag: shown on its own
        default = prop.get("default")
        rows.append(
            {
                "name": name,
                "type": type_text(prop),
                "required": name in required,
                "default": "" if name in required or "default" not in prop else json.dumps(default),
            }
        )
    return rows


def _section(channel: dict[str, Any], operation: dict[str, Any] | None) -> str:
    if operation and operation["action"] == "receive":
        return "commands"
    if channel.get("x-digits-stream") == "DIGITS_WORK":
        return "work"
    return "events" if channel.get("x-digits-stream") else "live"


def catalogue_view() -> dict[str, Any]:
    """Channels grouped by section, each message with its tag, version and fields; the shapes
    that messages nest (`DatasetSpec`, `BlobRef`, ...) once each."""
    doc = _document()
    schemas = doc["components"]["schemas"]
    messages = doc["components"]["messages"]

    def message(ref: dict[str, str]) -> dict[str, Any]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        info = messages[name]
        return {
            "name": name,
            "tag": info["x-digits-tag"],
            "version": info["x-digits-version"],
            "summary": info["summary"],
            "fields": fields(schemas[name]),
        }

    sections: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in SECTIONS}
    for cid, channel in doc["channels"].items():
        operation = doc["operations"].get(cid)
        if operation is None:
            continue  # a reply channel: shown with its command
        reply = operation.get("reply")
        sections[_section(channel, operation)].append(
            {
                "id": cid,
                "address": channel["address"],
                "description": channel["description"],
                "parameters": channel.get("parameters", {}),
                "stream": channel.get("x-digits-stream"),
                "publishers": channel["x-digits-publishers"],
                "receivers": channel["x-digits-receivers"],
                "messages": [message(r) for r in channel["messages"].values()],
                "replies": [message(r) for r in reply["messages"]] if reply else [],
            }
        )
    shapes = [
        {"name": name, "summary": s.get("description", ""), "fields": fields(s)}
        for name, s in sorted(schemas.items())
        if name not in messages and s.get("type") == "object"
    ]
    return {
        "sections": [
            {"key": key, "title": title, "help": help, "channels": sections[key]}
            for key, title, help in SECTIONS
        ],
        "shapes": shapes,
        "asyncapi": doc["asyncapi"],
        "message_count": len(messages),
    }


@get("/api/v1/events/catalogue")
async def catalogue_json() -> dict[str, Any]:
    """The event catalogue as AsyncAPI 3 (the committed `proto/schema/asyncapi.yaml`, as JSON):
    every subject, its messages with their JSON Schemas, streams, publishers and receivers."""
    return _document()


@get("/events/catalogue", include_in_schema=False)
async def catalogue_page(request: Request[Any, Any, Any]) -> Template:
    """Every subject and message on the bus, for people writing consumers."""
    return ui.pages()._page(  # the shared page frame (title, user, assets)
        "catalogue.html", "Event catalogue", username(request), view=catalogue_view()
    )
