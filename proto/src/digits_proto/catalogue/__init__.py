"""The published event catalogue: an AsyncAPI 3 document and one JSON Schema per message.

Generated from the contract itself (subjects, messages, versions, the permission table), and
committed under `proto/schema/` by `make schema` (`python -m digits_proto.catalogue DIR`); a
test regenerates it in memory and fails when the committed files differ. Consumers read those
files instead of this package's source.
"""

from digits_proto.catalogue._channels import CHANNELS, ID_PARAMS, Channel
from digits_proto.catalogue._document import ASYNCAPI, document, message_schema, render, write
from digits_proto.catalogue._routing import publishers, receivers, sample, stream_of

__all__ = [
    "ASYNCAPI",
    "CHANNELS",
    "ID_PARAMS",
    "Channel",
    "document",
    "message_schema",
    "publishers",
    "receivers",
    "render",
    "sample",
    "stream_of",
    "write",
]
