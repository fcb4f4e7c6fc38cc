"""The AsyncAPI 3 document and the per-message JSON Schemas, as data and as the committed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from digits_proto import ALL_MESSAGES, headers
from digits_proto.catalogue._channels import CHANNELS, ID_PARAMS, Channel, param
from digits_proto.catalogue._routing import publishers, receivers, stream_of
from digits_proto.versions import REGISTRY, tag_of

ASYNCAPI = "3.0.0"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
COMPONENT_REF = "#/components/schemas/{name}"


def _name(message: type) -> str:
    return message.__name__


def _summary(message: type) -> str:
    return (message.__doc__ or "").strip().splitlines()[0]


def _stored() -> set[type]:
    """Messages kept in a stream (events, tickets): those carry the stored-message headers."""
    return {m for c in CHANNELS if stream_of(c.address) for m in c.messages}


def _message(message: type, stored: bool) -> dict[str, Any]:
    tag = tag_of(message)
    version = REGISTRY.version(tag)
    out: dict[str, Any] = {
        "name": _name(message),
        "title": _name(message),
        "summary": _summary(message),
        "contentType": "application/json",
    }
    if stored:
        out["headers"] = {
            "type": "object",
            "properties": {
                headers.SCHEMA: {"type": "string", "const": f"{tag}/{version}"},
                headers.MSG_ID: {"type": "string"},
                headers.CORRELATION_ID: {"type": "string"},
                headers.CAUSATION_ID: {"type": "string"},
            },
        }
    out["payload"] = {"$ref": COMPONENT_REF.format(name=_name(message))}
    out["x-digits-tag"] = tag
    out["x-digits-version"] = version
    out["x-digits-schema-file"] = f"messages/{_name(message)}.json"
    return out


def _channel(channel: Channel) -> dict[str, Any]:
    params = [name for name in ID_PARAMS if param(name) in channel.address]
    out: dict[str, Any] = {"address": channel.address, "description": channel.description}
    if params:
        out["parameters"] = {name: {"description": ID_PARAMS[name]} for name in params}
    out["messages"] = {
        _name(m): {"$ref": f"#/components/messages/{_name(m)}"} for m in channel.messages
    }
    out["x-digits-stream"] = stream_of(channel.address)
    out["x-digits-publishers"] = publishers(channel.address)
    out["x-digits-receivers"] = receivers(channel)
    return out


def _reply_channel(channel: Channel) -> dict[str, Any]:
    return {
        "address": None,  # the requester's inbox (NATS request/reply)
        "description": f"Replies to {_name(channel.messages[0])}.",
        "messages": {
            _name(m): {"$ref": f"#/components/messages/{_name(m)}"} for m in channel.replies
        },
    }


def _operation(channel: Channel) -> dict[str, Any]:
    def refs(chan: str, messages: tuple[type, ...]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{chan}/messages/{_name(m)}"} for m in messages]

    op: dict[str, Any] = {
        # From the system's side: it sends events and tickets, it receives commands.
        "action": "receive" if channel.replies else "send",
        "channel": {"$ref": f"#/channels/{channel.id}"},
        "summary": channel.description,
        "messages": refs(channel.id, channel.messages),
    }
    if channel.replies:
        reply_id = f"{channel.id}Reply"
        op["reply"] = {
            "channel": {"$ref": f"#/channels/{reply_id}"},
            "messages": refs(reply_id, channel.replies),
        }
    return op


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document, as plain data."""
    _, schemas = msgspec.json.schema_components(ALL_MESSAGES, ref_template=COMPONENT_REF)
    channels: dict[str, Any] = {}
    stored = _stored()
    for channel in CHANNELS:
        channels[channel.id] = _channel(channel)
        if channel.replies:
            channels[f"{channel.id}Reply"] = _reply_channel(channel)
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "DIGITS event catalogue",
            "version": "1",
            "description": (
                "Every subject on the DIGITS bus (NATS JetStream), the messages on it, the stream "
                "that stores it and the services that publish and receive it. Each message is "
                "JSON, tagged by its `type` field; each stored one carries `Digits-Schema: "
                "<tag>/<version>` (none means version 1). Readers ignore fields they do not know."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {c.id: _operation(c) for c in CHANNELS},
        "components": {
            "messages": {
                _name(m): _message(m, m in stored) for m in sorted(ALL_MESSAGES, key=_name)
            },
            "schemas": schemas,
        },
    }


def message_schema(message: type) -> dict[str, Any]:
    """One message's standalone JSON Schema (its nested shapes under `$defs`)."""
    schema = msgspec.json.schema(message)
    tag = tag_of(message)
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"messages/{_name(message)}.json",
        "x-digits-schema": f"{tag}/{REGISTRY.version(tag)}",
        **schema,
    }


def render() -> dict[str, str]:
    """Every file of the catalogue: relative path → text, exactly as committed."""
    import yaml  # only the generator needs it: the contract itself imports msgspec alone

    files = {
        "asyncapi.yaml": yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100),
    }
    for message in ALL_MESSAGES:
        text = json.dumps(message_schema(message), indent=1, ensure_ascii=False) + "\n"
        files[f"messages/{_name(message)}.json"] = text
    return files


def write(folder: Path) -> list[str]:
    """Write the catalogue into `folder`, removing message schemas no longer generated."""
    files = render()
    old = folder / "messages"
    for stale in old.glob("*.json") if old.is_dir() else []:
        if f"messages/{stale.name}" not in files:
            stale.unlink()
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(files)
