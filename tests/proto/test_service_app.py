"""Each service's Litestar app: health, readiness, Prometheus metrics, schema, operator token."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import nats.errors
import pytest
from litestar import get, post
from prometheus_client.parser import text_string_to_metric_families

from digits_proto import subjects
from digits_proto.runtime import (
    OPS_SECURITY,
    Metrics,
    NotFound,
    ServiceHost,
    current_trace,
    ops_guard,
    ops_token,
)


class Thing(msgspec.Struct, frozen=True):
    name: str
    count: int


class Box:
    """Stands for a service's own object, handed to its routes as a dependency."""

    def __init__(self) -> None:
        self.things = {"a": Thing("a", 1)}
        self.emptied = 0
        self.chains: list[str] = []  # the correlation id each operator call was handled in


@get("/things/{name:str}")
async def get_thing(box: Box, name: str) -> Thing:
    if name not in box.things:
        raise NotFound(f"no thing {name!r}", field="name")
    return box.things[name]


@post("/things", status_code=201)
async def add_thing(box: Box, data: Thing) -> Thing:
    box.things[data.name] = data
    return data


@post("/empty", guards=[ops_guard], security=OPS_SECURITY, status_code=200)
async def empty(box: Box) -> dict[str, int]:
    box.emptied += 1
    trace = current_trace()
    box.chains.append(trace.correlation_id if trace else "")
    return {"emptied": box.emptied}


@get("/broken/{why:str}")
async def broken(why: str) -> None:
    if why == "nats":
        raise nats.errors.NoRespondersError
    raise RuntimeError("secret path /etc/shadow")


@pytest.fixture
def box() -> Box:
    return Box()


@pytest.fixture
async def host(nats_url: str, tmp_path: Path, monkeypatch, box: Box) -> AsyncIterator[ServiceHost]:
    monkeypatch.delenv("DIGITS_OPS_TOKEN", raising=False)
    host = ServiceHost(subjects.SERVICE_INFERENCE, nats_url, 0, data_dir=tmp_path)
    host.add_routes(get_thing, box=box)  # before start
    await host.start()
    host.add_routes(
        add_thing, empty, broken, box=box
    )  # during setup, while /health already answers
    yield host
    await host.close()


def client(host: ServiceHost) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}", timeout=10)


async def test_health_is_alive_and_ready_waits_for_mark_ready(host: ServiceHost) -> None:
    """/health answers 200 at once; /ready is 503 naming why until the consumers run."""
    async with client(host) as http:
        assert (await http.get("/health")).status_code == 200
        r = await http.get("/ready")
        assert r.status_code == 503 and r.json()["waiting_for"] == [
            "starting: consumers not running yet"
        ]
        host.mark_ready()
        r = await http.get("/ready")
        assert r.status_code == 200 and r.json() == {
            "service": subjects.SERVICE_INFERENCE,
            "ready": True,
            "waiting_for": [],
        }
        host.add_readiness_check(lambda: "draining")
        r = await http.get("/ready")
        assert r.status_code == 503 and r.json()["waiting_for"] == ["draining"]


async def test_binds_loopback_by_default_and_reads_the_host_variable(nats_url, monkeypatch):
    """127.0.0.1 unless DIGITS_<SERVICE>_HOST says otherwise."""
    monkeypatch.delenv("DIGITS_GPU_BROKER_HOST", raising=False)
    assert ServiceHost(subjects.SERVICE_GPU_BROKER, nats_url).http_host == "127.0.0.1"
    monkeypatch.setenv("DIGITS_GPU_BROKER_HOST", "0.0.0.0")
    assert ServiceHost(subjects.SERVICE_GPU_BROKER, nats_url).http_host == "0.0.0.0"


async def test_metrics_are_prometheus_text_with_help_and_histograms(host: ServiceHost) -> None:
    """/metrics parses with prometheus_client; every family has HELP; label values escaped."""
    host.metrics.inc("classifications", 3)
    host.metrics.set("position", 7, stream='we"ird\nname')
    host.metrics.observe("command_seconds", 0.02, endpoint="classify", outcome="ok")
    async with client(host) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    prefix = "digits_inference_"
    assert families[prefix + "classifications"].type == "counter"
    assert families[prefix + "classifications"].samples[0].value == 3
    assert families[prefix + "position"].samples[0].labels == {"stream": 'we"ird\nname'}
    histogram = families[prefix + "command_seconds"]
    assert histogram.type == "histogram"
    count = [s for s in histogram.samples if s.name.endswith("_count")]
    assert count[0].value == 1 and count[0].labels == {"endpoint": "classify", "outcome": "ok"}
    for family in families.values():
        assert family.documentation, family.name
    assert "# HELP digits_inference_classifications_total Images classified" in r.text


async def test_runtime_records_command_latency_and_appended_events(host: ServiceHost) -> None:
    """Commands through serve_endpoints and events through EventStore land in the host's
    registry (found through the service's NATS connection)."""
    from digits_proto import codec
    from digits_proto.datasets import DatasetDeleted, DeleteDataset
    from digits_proto.replies import Accepted
    from digits_proto.runtime import EventStore, request, serve_endpoints

    async def handle(cmd):
        return Accepted(id=cmd.dataset_id)

    await serve_endpoints(
        host.nc, "digits-test", codec.dataset_commands, {"digits.cmd.t.metric": handle}
    )
    await request(host.nc, "digits.cmd.t.metric", DeleteDataset(dataset_id="x"))
    store = EventStore(host.js, subjects.STREAM_DATASETS, codec.dataset_events)
    await store.append(subjects.dataset_events("x"), [DatasetDeleted(dataset_id="x")], None)
    m = host.metrics
    latency = m.registry.get_sample_value(
        "digits_inference_command_seconds_count", {"endpoint": "metric", "outcome": "ok"}
    )
    assert latency == 1
    appended = m.value("events_appended", stream=subjects.STREAM_DATASETS, type="DatasetDeleted")
    assert appended == 1


async def test_service_routes_get_their_dependencies_and_refuse_bad_input(host) -> None:
    """Routes added before and after start are served; bad input is a 400 naming the field;
    a domain error keeps its status."""
    async with client(host) as http:
        assert (await http.get("/things/a")).json() == {"name": "a", "count": 1}
        r = await http.get("/things/b")
        assert r.status_code == 404 and r.json()["field"] == "name"
        r = await http.post("/things", json={"name": "b", "count": "many"})
        assert r.status_code == 400 and "count" in r.text
        r = await http.post("/things", content=b"{not json")
        assert r.status_code == 400
        assert (await http.post("/things", json={"name": "b", "count": 2})).status_code == 201
        assert (await http.get("/things/b")).json() == {"name": "b", "count": 2}


async def test_schema_lists_the_service_routes(host: ServiceHost) -> None:
    """/schema is the OpenAPI document, with the operator token as a security scheme."""
    async with client(host) as http:
        r = await http.get("/schema")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert {"/health", "/ready", "/metrics", "/things/{name}", "/empty"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["opsToken"]["scheme"] == "bearer"
    assert doc["paths"]["/empty"]["post"]["security"] == [{"opsToken": []}]


async def test_operations_need_the_operator_token(host: ServiceHost, tmp_path: Path) -> None:
    """401 without a token, 403 with a wrong one, 200 with the one in <data_dir>/ops-token."""
    token = (tmp_path / "ops-token").read_text().strip()
    async with client(host) as http:
        r = await http.post("/empty")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = await http.post("/empty", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403
        r = await http.post("/empty", headers={"Authorization": f"Basic {token}"})
        assert r.status_code == 401
        r = await http.post("/empty", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"emptied": 1}


async def test_operator_calls_start_a_chain_from_the_callers_request_id(
    host: ServiceHost, box: Box, tmp_path: Path
) -> None:
    """Given operator calls with a sane, an unusable and no X-Request-Id, then each is handled
    in the chain of the caller's id (else a new one) and answers with that id; so do errors."""
    token = (tmp_path / "ops-token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    async with client(host) as http:
        r = await http.post("/empty", headers={**auth, "X-Request-Id": "drain-42.a_b"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "drain-42.a_b"
        r = await http.post("/empty", headers={**auth, "X-Request-Id": "bad id;<x>"})
        fresh = r.headers["x-request-id"]
        assert r.status_code == 200 and fresh not in ("", "bad id;<x>")
        r = await http.post("/empty", headers=auth)
        assert r.headers["x-request-id"] not in ("", fresh)
        assert box.chains == ["drain-42.a_b", fresh, r.headers["x-request-id"]]
        r = await http.get("/things/zzz", headers={"X-Request-Id": "lookup-1"})
        assert r.status_code == 404 and r.headers["x-request-id"] == "lookup-1"


def test_token_file_is_owner_only_and_shared(tmp_path: Path, monkeypatch) -> None:
    """Created 0600 once; every later service of the data dir reads the same token."""
    monkeypatch.delenv("DIGITS_OPS_TOKEN", raising=False)
    first = ops_token(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "ops-token").st_mode)
    assert mode == 0o600
    assert ops_token(tmp_path) == first and len(first) >= 32
    assert [p.name for p in tmp_path.iterdir()] == ["ops-token"]  # no temporary file left
    monkeypatch.setenv("DIGITS_OPS_TOKEN", "from-the-environment")
    assert ops_token(tmp_path) == "from-the-environment"


async def test_services_starting_at_once_agree_on_the_token(tmp_path: Path, monkeypatch) -> None:
    """Many services creating the token at the same moment all read the one that landed."""
    monkeypatch.delenv("DIGITS_OPS_TOKEN", raising=False)
    tokens = await asyncio.gather(*(asyncio.to_thread(ops_token, tmp_path) for _ in range(16)))
    assert len(set(tokens)) == 1


def test_separate_registries_do_not_collide() -> None:
    """Two services in one process keep their own counts."""
    a, b = Metrics("digits-gpu-broker"), Metrics("digits-gpu-broker")
    a.inc("leases_granted")
    assert a.value("leases_granted") == 1 and b.value("leases_granted") is None
    with pytest.raises(ValueError):
        a.set("leases_granted", 2)


async def test_tickets_record_their_duration_and_redeliveries(host: ServiceHost) -> None:
    """A ticket retried once: two handled (retry, ack) and one redelivery, by consumer."""
    from nats.js.api import StreamConfig

    from digits_proto.runtime import Outcome, consume_tickets

    await host.js.add_stream(StreamConfig(name="METERED", subjects=["metered.>"]))
    await host.js.publish("metered.one", b"ticket")
    seen: list[int] = []
    stop = asyncio.Event()

    async def handle(msg) -> Outcome:
        seen.append(msg.metadata.num_delivered)
        if len(seen) == 1:
            return Outcome.RETRY
        stop.set()
        return Outcome.ACK

    worker = consume_tickets(
        host.js, "METERED", "metered.>", "meter", handle, stop, retry_delay=0.1
    )
    await asyncio.wait_for(worker, 20)
    assert seen == [1, 2]
    m, name = host.metrics, "digits_inference_ticket_seconds_count"
    assert m.registry.get_sample_value(name, {"consumer": "meter", "outcome": "retry"}) == 1
    assert m.registry.get_sample_value(name, {"consumer": "meter", "outcome": "ack"}) == 1
    assert m.value("ticket_redeliveries", consumer="meter") == 1


async def test_nats_outages_are_503_and_bugs_500_without_their_text(host: ServiceHost) -> None:
    """A route that meets NATS down answers 503 (retry); an unexpected error a 500 naming an
    error id, never the exception's text."""
    async with client(host) as http:
        r = await http.get("/broken/nats")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        r = await http.get("/broken/bug")
        assert r.status_code == 500 and "internal error, id" in r.json()["detail"]
        assert "shadow" not in r.text


@pytest.mark.parametrize("service", subjects.BACKEND_SERVICES)
async def test_ready_under_the_services_own_nats_user(
    service: str, nats_url: str, nats_creds: Path, js, tmp_path: Path, monkeypatch
) -> None:
    """/ready's JetStream check is a read every service's user may make (the launcher waits on
    it): 200 with the permission table in force, not a timeout."""
    monkeypatch.setenv("DIGITS_NATS_CREDS", str(nats_creds))
    plain = "nats://" + nats_url.rsplit("@", 1)[-1]
    host = ServiceHost(service, plain, 0, data_dir=tmp_path)
    await host.start()
    try:
        assert host.creds is not None and host.creds.user == service
        host.mark_ready()
        async with client(host) as http:
            r = await http.get("/ready")
        assert r.status_code == 200, r.text
    finally:
        await host.close()
