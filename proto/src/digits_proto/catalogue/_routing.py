"""Where a channel's messages are stored and who sends and receives them, derived from `subjects`
and the permission table (the same one the NATS server enforces)."""

from __future__ import annotations

from digits_proto import subjects as s
from digits_proto.catalogue._channels import ID_PARAMS, Channel, param
from digits_proto.permissions import DURABLES, TABLE

# Streams a subject can be stored in: the event streams and the work queue.
STREAMS = {**s.EVENT_STREAMS, s.STREAM_WORK: s.WORK}


def _matches(pattern: str, subject: str) -> bool:
    """NATS wildcard match: `*` one token, `>` the rest (one token at least)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token not in ("*", have[i])):
            return False
    return len(want) == len(have)


def sample(address: str) -> str:
    """A concrete subject of a channel address (each parameter filled with one token)."""
    for name in ID_PARAMS:
        address = address.replace(param(name), "x")
    return address


def stream_of(address: str) -> str | None:
    """The JetStream stream that stores a channel's messages (None: core NATS only)."""
    subject = sample(address)
    return next((st for st, flt in STREAMS.items() if _matches(flt, subject)), None)


def publishers(address: str) -> list[str]:
    """The services the permission table lets publish on this channel."""
    subject = sample(address)
    return sorted(
        g.user
        for g in TABLE.values()
        if any(_matches(p, subject) for p in g.publish)
        and not any(_matches(p, subject) for p in g.deny_publish)
    )


def _reads(right: str, stream: str) -> bool:
    """A JetStream API right that reads messages of `stream` (a get or a consumer; not its
    info, which every service may read)."""
    tokens = right.split(".")
    return stream in tokens and bool({"GET", "CONSUMER"} & set(tokens))


def receivers(channel: Channel) -> list[str]:
    """The services that receive this channel's messages: a work queue's consumer; else core
    subscribers (command endpoints, watches) and the services with read rights on its stream."""
    address = channel.address
    subject, stream = sample(address), stream_of(address)
    if channel.consumer:
        return [DURABLES[(s.STREAM_WORK, channel.consumer)]]
    found = set()
    for g in TABLE.values():
        if any(_matches(p, subject) for p in g.subscribe):
            found.add(g.user)
        if stream and any(_reads(right, stream) for right in g.publish):
            found.add(g.user)
    return sorted(found - set(publishers(address)) if stream is None else found)
