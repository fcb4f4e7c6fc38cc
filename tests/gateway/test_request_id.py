"""X-Request-Id: kept when sane, made when not, returned on every response, and carried as the
correlation id of the events the request causes (the services are faked on a real nats-server)."""

from __future__ import annotations

import re

import httpx
from nats.js import JetStreamContext

from digits_proto import headers, subjects
from tests.gateway.test_models_routes import built_dataset, form

ROUTE = "/models/images/classification.json"
FRESH = re.compile(r"[0-9a-f]{32}")


async def test_a_create_returns_its_request_id_and_its_event_carries_it(
    client: httpx.AsyncClient, backend, js: JetStreamContext
) -> None:
    """The caller's id comes back and is the created event's correlation id; the event's cause
    is the command the gateway sent (its own id, not the request's)."""
    dataset_id = await built_dataset(client, backend)
    r = await client.post(ROUTE, data=form(dataset_id), headers={"X-Request-Id": "run-42.a_b"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "run-42.a_b"
    msg = await js.get_last_msg(subjects.STREAM_MODELS, subjects.model_events(r.json()["id"]))
    assert msg.headers is not None
    assert msg.headers[headers.CORRELATION_ID] == "run-42.a_b"
    assert FRESH.fullmatch(msg.headers[headers.CAUSATION_ID])


async def test_a_missing_or_unusable_request_id_is_replaced_by_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    """No header, an over-long one or one with odd characters: a fresh id, different each time."""
    seen = set()
    for sent in ({}, {"X-Request-Id": "x" * 129}, {"X-Request-Id": "a b<script>"}):
        r = await client.get("/index.json", headers=sent)
        assert r.status_code == 200
        assert FRESH.fullmatch(r.headers["x-request-id"]), r.headers
        seen.add(r.headers["x-request-id"])
    assert len(seen) == 3


async def test_errors_and_unknown_routes_return_the_request_id_too(
    client: httpx.AsyncClient,
) -> None:
    """A refused form (400) and a 404 from no route at all still name their request."""
    r = await client.post(ROUTE, data=form("no-such-dataset"), headers={"X-Request-Id": "bad-1"})
    assert r.status_code in (400, 404), r.text
    assert r.headers["x-request-id"] == "bad-1"
    r = await client.get("/no/such/route", headers={"X-Request-Id": "lost-1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "lost-1"
