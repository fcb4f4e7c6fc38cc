"""Schema versions of bus messages and the upcasters that bring an old version up to date.

Every message is written with `Digits-Schema: <tag>/<version>` (`schema_header`). Streams are
kept forever, so every version ever written must stay readable: a reader hands each message to
`decode_event`, which upgrades an older version (by its header; none means version 1) with the
registered upcasters before msgspec decodes it, so a fold or a projection only ever sees the
current shape. How to add a version: proto/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from digits_proto import headers

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class _Tagged(msgspec.Struct):
    """Only the tag of a message whose header is missing (msgspec skips every other field)."""

    type: str = ""


_tag_of = msgspec.json.Decoder(_Tagged)


@dataclass(frozen=True)
class Versions:
    """The current version of each tag (1 unless listed) and the upcasters between versions.

    `upcasters[(tag, n)]` turns the JSON object of version n into that of version n + 1.
    """

    current: Mapping[str, int] = field(default_factory=dict)
    upcasters: Mapping[tuple[str, int], Upcaster] = field(default_factory=dict)

    def version(self, tag: str) -> int:
        """The version this code writes for `tag`."""
        return self.current.get(tag, 1)

    def upcast(self, raw: dict[str, Any], version: int) -> dict[str, Any]:
        """Apply the upcasters from `version` up to the tag's current version, in order."""
        tag = str(raw.get("type", ""))
        while version < self.version(tag):
            raw = self.upcasters[(tag, version)](raw)
            version += 1
        return raw

    def missing(self) -> list[tuple[str, int]]:
        """Steps without an upcaster: every version below the current one needs its own."""
        return [
            (tag, n)
            for tag, current in self.current.items()
            for n in range(1, current)
            if (tag, n) not in self.upcasters
        ]


# The registry in force. Every message is at version 1 today: a version bump adds its tag to
# `current` and one upcaster per step below it (see proto/README.md).
REGISTRY = Versions(current={}, upcasters={})


def tag_of(message_type: type) -> str:
    """The stable tag of a message type (`models.ModelCreated`)."""
    return str(message_type.__struct_config__.tag)  # type: ignore[attr-defined]


def schema_header(message: Any, registry: Versions | None = None) -> str:
    """The `Digits-Schema` header value of a message this code writes: `<tag>/<version>`."""
    tag = tag_of(type(message))
    return f"{tag}/{(registry or REGISTRY).version(tag)}"


def parse_schema(value: str | None) -> tuple[str, int]:
    """`(tag, version)` of a `Digits-Schema` value; `("", 1)` when absent or unreadable
    (events written before versions existed are version 1)."""
    tag, _, number = (value or "").rpartition("/")
    return (tag, int(number)) if tag and number.isdigit() else ("", 1)


def decode_event(
    decoder: msgspec.json.Decoder[T],
    data: bytes,
    hdrs: Mapping[str, str] | None = None,
    registry: Versions | None = None,
) -> T:
    """Decode a message read from a stream, upgraded to the current version of its type.

    The one place a reader turns stored bytes into a message: an event at its current version
    (all of them, until a version is bumped) decodes directly; an older one is upcast as JSON
    first. Raises msgspec's DecodeError/ValidationError like `decoder.decode`.
    """
    registry = registry or REGISTRY
    if not registry.current:
        return decoder.decode(data)
    tag, version = parse_schema((hdrs or {}).get(headers.SCHEMA))
    if not tag:
        tag = _tag_of.decode(data).type
    if version >= registry.version(tag):
        return decoder.decode(data)
    raw = msgspec.json.decode(data)
    if not isinstance(raw, dict):
        return decoder.decode(data)  # not an object: let the decoder say why
    return decoder.decode(msgspec.json.encode(registry.upcast(raw, version)))  # pyright: ignore[reportUnknownArgumentType]
