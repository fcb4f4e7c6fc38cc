"""The event catalogue routes: the committed AsyncAPI document as JSON, and its page."""

from __future__ import annotations

from pathlib import Path

import yaml

from digits_gateway.controllers.catalogue import type_text
from tests.gateway.accounts import another_client

COMMITTED = Path(__file__).resolve().parents[2] / "proto" / "schema" / "asyncapi.yaml"


async def test_the_json_route_serves_the_committed_asyncapi_document(client) -> None:
    """`/api/v1/events/catalogue` is what `proto/schema/asyncapi.yaml` says, as JSON."""
    answer = await client.get("/api/v1/events/catalogue")
    assert answer.status_code == 200
    assert answer.json() == yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    assert answer.json()["asyncapi"] == "3.0.0"


async def test_the_page_lists_subjects_messages_and_their_fields(client) -> None:
    """The page names each subject, its stream and publishers, each message with its schema
    version and fields, and is linked from the navigation."""
    page = (await client.get("/events/catalogue", headers={"Accept": "text/html"})).text
    assert '<a href="/events/catalogue" aria-current="page">Events</a>' in page
    assert "<code>digits.evt.models.{model_id}</code>" in page
    assert "<code>DIGITS_MODELS</code>" in page
    assert "models.ModelCreated/1" in page
    assert "<code>dataset_id</code>" in page  # a field of ModelCreated
    assert "<code>digits.cmd.models.create</code>" in page
    assert "Reply <strong>Rejected</strong>" in page
    assert 'id="shape-TrainSpec"' in page


async def test_the_catalogue_needs_an_account(client) -> None:
    """Like the other reads, anonymous callers are asked to sign in."""
    async with another_client(client) as anonymous:
        assert (await anonymous.get("/api/v1/events/catalogue")).status_code == 401


def test_json_schemas_read_as_short_type_expressions() -> None:
    """Field types are shown as a reader writes them."""
    assert type_text({"anyOf": [{"type": "string"}, {"type": "null"}]}) == "string | null"
    assert type_text({"type": "array", "items": {"$ref": "#/$defs/BlobRef"}}) == "list[BlobRef]"
    assert (
        type_text({"type": "object", "additionalProperties": {"type": "integer"}})
        == "dict[str, integer]"
    )
    assert type_text(
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]}
    ) == ("[string, number]")
