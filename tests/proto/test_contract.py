"""The bus contract: tags unique and explicit, messages round-trip.

Schema changes are visible as diffs of the committed catalogue (proto/schema, `make schema`):
see test_catalogue.py.
"""

from __future__ import annotations

import json

import digits_proto
from digits_proto import codec
from digits_proto.base import new_job_id


def test_every_message_has_an_explicit_namespaced_unique_tag() -> None:
    """Tags come from code, not class names, carry a context prefix and are never reused."""
    tags = [m.__struct_config__.tag for m in digits_proto.ALL_MESSAGES]
    assert all(isinstance(t, str) and "." in t for t in tags), tags
    assert len(tags) == len(set(tags))


def test_bus_messages_accept_unknown_fields_from_newer_code() -> None:
    """An older reader ignores a field a newer writer added (no forbid_unknown_fields)."""
    raw = json.loads(codec.encode(digits_proto.datasets.DatasetDeleted(dataset_id="d")))
    raw["added_later"] = 1
    event = codec.dataset_events.decode(json.dumps(raw).encode())
    assert event.dataset_id == "d"


def test_job_ids_are_digits_style() -> None:
    """Job ids look like DIGITS's `YYYYMMDD-HHMMSS-xxxx`."""
    job_id = new_job_id()
    date, time, suffix = job_id.split("-")
    assert len(date) == 8 and len(time) == 6 and len(suffix) == 4
