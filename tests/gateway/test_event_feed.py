"""`GET /api/v1/events`: stored events as JSON pages or live SSE, read straight from JetStream."""

from __future__ import annotations

import httpx
from nats.js import JetStreamContext

from digits_proto import codec, headers
from digits_proto import subjects as s
from digits_proto.models import MetricsRecorded
from tests.gateway.accounts import another_client, live_client
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import sse_events, take, until


async def model_job(http: httpx.AsyncClient, backend: FakeBackend) -> str:
    """A model job on a built dataset, made through /api/v1."""
    r = await http.post("/api/v1/datasets", json={"name": "d", "folder_train": "/d"})
    assert r.status_code == 202, r.text
    dataset_id = r.json()["id"]
    await backend.build(dataset_id)

    async def built() -> bool:
        return (await http.get(f"/api/v1/datasets/{dataset_id}")).json()["status"] == "Done"

    await until(built)
    r = await http.post("/api/v1/models", json={"name": "m", "dataset_id": dataset_id})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def stamped_metric(js: JetStreamContext, model_id: str, iteration: int) -> int:
    """A metric point with the schema, correlation and causation headers; its sequence."""
    event = MetricsRecorded(
        model_id=model_id, epoch=1.0, iteration=iteration, phase="val", values={"accuracy": 0.5}
    )
    ack = await js.publish(
        s.model_metrics(model_id),
        codec.encode(event),
        headers={
            headers.SCHEMA: "models.MetricsRecorded/1",
            headers.CORRELATION_ID: "req-1",
            headers.CAUSATION_ID: "ticket-1",
        },
    )
    return ack.seq


async def test_a_page_holds_each_event_in_its_envelope(client, backend, js) -> None:
    """A job's events from its streams, oldest first, with type, version, ids and payload."""
    model_id = await model_job(client, backend)
    await backend.metric(model_id, 0)
    seq = await stamped_metric(js, model_id, 1)
    r = await client.get("/api/v1/events", params={"job": model_id})
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert [e["type"] for e in events] == [
        "models.ModelCreated",
        "models.MetricsRecorded",
        "models.MetricsRecorded",
    ]
    assert {e["subject"] for e in events} == {s.model_events(model_id), s.model_metrics(model_id)}
    last = events[-1]
    assert last["stream"] == s.STREAM_METRICS and last["sequence"] == seq
    assert last["version"] == 1
    assert (last["correlation_id"], last["causation_id"]) == ("req-1", "ticket-1")
    assert last["payload"]["values"] == {"accuracy": 0.5}
    assert last["time"].endswith(("Z", "+00:00"))
    created = events[0]
    assert created["payload"]["model_id"] == model_id and created["payload"]["name"] == "m"
    assert r.json()["next"].split(",") == [
        f"{s.STREAM_METRICS}:{seq}",
        f"{s.STREAM_MODELS}:{created['sequence']}",
        f"{s.STREAM_PROGRESS}:0",
    ]


async def test_pages_resume_after_their_cursor_without_gap_or_duplicate(client, backend) -> None:
    """Walking a stream one event a page gives exactly the events of one big page."""
    model_id = await model_job(client, backend)
    for i in range(5):
        await backend.metric(model_id, i)
    whole = (await client.get("/api/v1/events", params={"stream": "metrics"})).json()["events"]
    assert [e["payload"]["iteration"] for e in whole] == [0, 1, 2, 3, 4]
    walked, after = [], "0"
    while True:
        r = await client.get(
            "/api/v1/events", params={"stream": "DIGITS_METRICS", "after": after, "limit": 2}
        )
        page = r.json()
        if not page["events"]:
            break
        walked += page["events"]
        after = page["next"]
    assert [e["sequence"] for e in walked] == [e["sequence"] for e in whole]
    first_seq = whole[0]["sequence"]
    r = await client.get("/api/v1/events", params={"stream": "metrics", "after": first_seq})
    assert [e["payload"]["iteration"] for e in r.json()["events"]] == [1, 2, 3, 4]
    r = await client.get("/api/v1/events", params={"stream": "metrics", "after": "end"})
    assert r.json()["events"] == []
    await backend.metric(model_id, 5)
    params = {"stream": "metrics", "after": r.json()["next"]}
    r = await client.get("/api/v1/events", params=params)
    assert [e["payload"]["iteration"] for e in r.json()["events"]] == [5]


async def test_bad_parameters_are_400_naming_the_field_and_an_unknown_job_404(client) -> None:
    """after, stream and limit are checked; the users stream is never served."""
    cases = {
        "after": [
            {"after": "yesterday"},
            {"after": "5"},
            {"stream": "models", "after": "X:1"},
            {"stream": "models", "after": str(2**64)},
            {"stream": "models", "after": f"DIGITS_MODELS:{2**64}"},
        ],
        "stream": [{"stream": "nope"}, {"stream": "users"}, {"stream": "DIGITS_USERS"}],
        "limit": [{"limit": "0"}, {"limit": "1001"}, {"limit": "many"}],
    }
    for field, params_list in cases.items():
        for params in params_list:
            r = await client.get("/api/v1/events", params=params)
            assert r.status_code == 400, (params, r.text)
            assert field in r.text, (params, r.text)
    r = await client.get("/api/v1/events", params={"job": "20200101-000000-zzzz"})
    assert r.status_code == 404


async def test_a_job_on_a_stream_that_cannot_hold_it_is_400(client, backend) -> None:
    """A model's events are never on DIGITS_GPUS: asking for that names `stream`."""
    model_id = await model_job(client, backend)
    r = await client.get("/api/v1/events", params={"job": model_id, "stream": "gpus"})
    assert r.status_code == 400 and "stream" in r.text


async def test_anonymous_callers_are_refused(client) -> None:
    """The feed needs an account (session or API token), as every read of a job does."""
    async with another_client(client) as anonymous:
        r = await anonymous.get("/api/v1/events", headers={"Accept": "application/json"})
    assert r.status_code == 401


async def test_sse_follows_live_and_last_event_id_resumes_exactly(live_url, backend) -> None:
    """Stored events first, then live ones; a reconnect gets only what came after its id."""
    async with live_client(live_url, "alice") as http:
        model_id = await model_job(http, backend)
        await backend.metric(model_id, 0)
        sse = {"Accept": "text/event-stream"}
        params = {"job": model_id, "stream": "metrics"}
        async with http.stream("GET", "/api/v1/events", params=params, headers=sse) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            (stored,) = await take(events, 1)
            assert stored.data["payload"]["iteration"] == 0
            await backend.metric(model_id, 1)
            (live,) = await take(events, 1)
            assert live.data["payload"]["iteration"] == 1
            assert live.id == f"{s.STREAM_METRICS}:{live.data['sequence']}"
        await backend.metric(model_id, 2)
        await backend.metric(model_id, 3)
        resume = {**sse, "Last-Event-ID": str(live.id)}
        async with http.stream("GET", "/api/v1/events", params=params, headers=resume) as response:
            got = await take(sse_events(response), 2)
    assert [e.data["payload"]["iteration"] for e in got] == [2, 3]


def test_the_envelope_is_json_a_standalone_consumer_decodes() -> None:
    """The envelope's field names are the published ones (examples/ decode them)."""
    from digits_gateway.eventfeed import Envelope

    fields = set(Envelope.__struct_fields__)
    assert fields == {
        "type",
        "version",
        "subject",
        "stream",
        "sequence",
        "time",
        "correlation_id",
        "causation_id",
        "payload",
    }
