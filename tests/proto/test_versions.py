"""Schema versions: every event is written with `Digits-Schema`, older versions are upcast on read."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import digits_proto
from digits_proto import codec, headers, subjects, versions
from digits_proto.models import ModelCreated, TrainingFailed, TrainSpec
from digits_proto.runtime import EventStore

FAILED = versions.tag_of(TrainingFailed)


def _error_was_message(raw: dict[str, Any]) -> dict[str, Any]:
    """A test upcaster: version 1 of TrainingFailed said `message`, version 2 says `error`."""
    raw = dict(raw)
    raw["error"] = raw.pop("message", "")
    return raw


# As the registry would read had TrainingFailed's field been renamed in version 2.
RENAMED = versions.Versions(current={FAILED: 2}, upcasters={(FAILED, 1): _error_was_message})
OLD_SHAPE = b'{"type":"models.TrainingFailed","model_id":"m1","message":"out of memory"}'


def test_the_registry_in_force_has_an_upcaster_for_every_older_version() -> None:
    """A type at version n has upcasters from 1 to n - 1, and each names a real message."""
    assert versions.REGISTRY.missing() == []
    known = {versions.tag_of(m) for m in digits_proto.ALL_MESSAGES}
    assert set(versions.REGISTRY.current) <= known
    assert {tag for tag, _ in versions.REGISTRY.upcasters} <= known


def test_a_version_without_its_upcaster_is_reported_missing() -> None:
    """Bumping a version without writing the step below it is caught."""
    assert versions.Versions(current={FAILED: 3}, upcasters=RENAMED.upcasters).missing() == [
        (FAILED, 2)
    ]


def test_schema_header_names_the_tag_and_the_current_version() -> None:
    """`Digits-Schema` is `<tag>/<version>`: 1 today, the registry's version after a bump."""
    event = TrainingFailed(model_id="m1", error="x")
    assert versions.schema_header(event) == "models.TrainingFailed/1"
    assert versions.schema_header(event, RENAMED) == "models.TrainingFailed/2"
    assert versions.parse_schema("models.TrainingFailed/2") == (FAILED, 2)
    assert versions.parse_schema(None) == ("", 1)
    assert versions.parse_schema("garbage") == ("", 1)


@pytest.mark.parametrize(
    "hdrs", [{headers.SCHEMA: "models.TrainingFailed/1"}, None, {"Nats-Msg-Id": "x"}]
)
def test_an_older_version_is_upcast_before_decoding(hdrs: dict[str, str] | None) -> None:
    """Version 1 (by its header, or with none: events from before versions) gets the new shape."""
    event = versions.decode_event(codec.model_events, OLD_SHAPE, hdrs, RENAMED)
    assert event == TrainingFailed(
        model_id="m1", error="out of memory", event_id=event.event_id, occurred_at=event.occurred_at
    )


def test_the_current_version_and_other_types_decode_untouched() -> None:
    """An event already at the current version, or of a type never bumped, is not upcast."""
    current = codec.encode(TrainingFailed(model_id="m1", error="kept"))
    event = versions.decode_event(
        codec.model_events, current, {headers.SCHEMA: "models.TrainingFailed/2"}, RENAMED
    )
    assert isinstance(event, TrainingFailed) and event.error == "kept"
    created = ModelCreated(model_id="m1", name="n", dataset_id="d", spec=TrainSpec())
    assert (
        versions.decode_event(codec.model_events, codec.encode(created), None, RENAMED) == created
    )


def test_without_the_upcaster_the_old_shape_does_not_decode() -> None:
    """The upcaster is what makes the old shape readable: the plain decoder refuses it."""
    with pytest.raises(msgspec.ValidationError, match="error"):
        versions.decode_event(codec.model_events, OLD_SHAPE, None)


async def test_appended_events_carry_their_schema_and_load_upcasts_old_ones(
    js, monkeypatch
) -> None:
    """EventStore.append writes `Digits-Schema`; load upgrades a stored version 1 before the
    caller folds it, and leaves current ones as they are."""
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    subject = subjects.model_events("m1")
    created = ModelCreated(model_id="m1", name="n", dataset_id="d", spec=TrainSpec())
    seq = await store.append(subject, [created], 0)
    stored = await js.get_msg(subjects.STREAM_MODELS, seq)
    assert stored.headers and stored.headers[headers.SCHEMA] == "models.ModelCreated/1"
    await js.publish(subject, OLD_SHAPE)  # written before versions existed: no header

    monkeypatch.setattr(versions, "REGISTRY", RENAMED)  # the code after the rename
    seq = await store.append(subject, [TrainingFailed(model_id="m1", error="now")], None)
    stored = await js.get_msg(subjects.STREAM_MODELS, seq)
    assert stored.headers and stored.headers[headers.SCHEMA] == "models.TrainingFailed/2"
    events, last = await store.load(subject)
    assert events[0] == created
    assert [e.error for e in events[1:]] == ["out of memory", "now"]
    assert last == seq
