"""Server-sent events on a real uvicorn (the test clients buffer SSE): history, live, resume."""

from __future__ import annotations

import asyncio
import time

import httpx

from digits_proto import subjects
from tests.gateway.accounts import live_client, sign_in, with_csrf
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import SseEvent, sse_events, take, until


async def model_job(http: httpx.AsyncClient, backend: FakeBackend) -> str:
    """A model on a built dataset (through the HTTP API)."""
    ds = (
        await http.post(
            "/datasets/images/classification.json", data={"dataset_name": "d", "folder_train": "/d"}
        )
    ).json()
    await backend.build(ds["id"])

    async def built() -> bool:
        return (await http.get(f"/jobs/{ds['id']}/status")).json()["status"] == "Done"

    await until(built)
    model = (
        await http.post(
            "/models/images/classification.json",
            data={"dataset": ds["id"], "model_name": "m", "standard_networks": "lenet"},
        )
    ).json()
    return str(model["id"])


def cursor(event: SseEvent) -> dict[str, int]:
    assert event.id is not None
    return {s: int(q) for s, _, q in (p.rpartition(":") for p in event.id.split(","))}


async def test_a_job_stream_starts_with_history_then_goes_live(live_url, backend) -> None:
    """history carries every metric point so far; later changes arrive as typed events."""
    async with live_client(live_url, "alice") as http:
        model_id = await model_job(http, backend)
        before = time.time()
        await backend.metric(model_id, 0)
        await backend.metric(model_id, 1)
        await until(lambda: _points(http, model_id, 2))
        async with http.stream("GET", f"/jobs/{model_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            (history,) = await take(events, 1)
            assert history.event == "history"
            assert history.data["status"] == "Initialized"
            assert [p["iteration"] for p in history.data["metrics"]] == [0, 1]
            # When each point was measured: the model page charts by wall time.
            first, second = (p["occurred"] for p in history.data["metrics"])
            assert before <= first <= second <= time.time()
            assert set(cursor(history)) == {
                subjects.STREAM_MODELS,
                subjects.STREAM_METRICS,
                subjects.STREAM_PROGRESS,
            }
            await backend.start_training(model_id)
            await backend.metric(model_id, 2, loss=0.5)
            await backend.progress(model_id, 0.5, 0.25)
            await backend.snapshot(model_id, 1.0)
            got = await take(events, 4)
    by_kind = {e.event: e.data for e in got}
    occurred = by_kind["metric"].pop("occurred")
    assert second <= occurred <= time.time()
    assert by_kind["status"] == {
        "job_id": model_id,
        "type": "model",
        "name": "m",
        "status": "Running",
    }
    assert by_kind["metric"] == {
        "job_id": model_id,
        "epoch": 0.2,
        "iteration": 2,
        "phase": "train",
        "values": {"loss": 0.5},
    }
    assert by_kind["progress"] == {
        "job_id": model_id,
        "progress": 0.25,
        "eta_seconds": 10.0,
        "epoch": 0.5,
    }
    assert by_kind["snapshot"] == {"job_id": model_id, "epoch": 1.0}


async def test_resume_with_last_event_id_has_no_gaps_and_no_duplicates(live_url, backend) -> None:
    """Points published while clients come and go arrive exactly once across reconnects."""
    total = 150
    async with live_client(live_url, "alice") as http:
        model_id = await model_job(http, backend)

        async def publish() -> None:
            for i in range(total):
                await backend.metric(model_id, i)
                if i % 10 == 0:
                    await asyncio.sleep(0.01)

        publisher = asyncio.create_task(publish())
        seen: list[int] = []
        last_id: str | None = None
        rounds = 0
        async with asyncio.timeout(30):
            while len(seen) < total:
                rounds += 1
                headers = {"Last-Event-ID": last_id} if last_id else {}
                async with http.stream(
                    "GET", f"/jobs/{model_id}/events", headers=headers
                ) as response:
                    received = 0
                    async for event in sse_events(response):
                        if event.event == "history":
                            assert last_id is None
                            seen += [p["iteration"] for p in event.data["metrics"]]
                        elif event.event == "metric":
                            seen.append(event.data["iteration"])
                        last_id = event.id
                        received += 1
                        if received >= 7 or len(seen) >= total:
                            break  # hang up mid-stream; the next round resumes
        await publisher
    assert rounds > 3
    assert sorted(seen) == list(range(total)), "no gaps"
    assert len(seen) == len(set(seen)), "no duplicates"


async def test_resume_replays_status_snapshot_and_progress_missed_meanwhile(
    live_url, backend
) -> None:
    """Changes made while disconnected come from DuckDB in stream order, then live ones."""
    async with live_client(live_url, "alice") as http:
        model_id = await model_job(http, backend)
        async with http.stream("GET", f"/jobs/{model_id}/events") as response:
            (history,) = await take(sse_events(response), 1)
        await backend.start_training(model_id)
        await backend.progress(model_id, 0.2, 0.1)
        await backend.progress(model_id, 0.4, 0.2)
        await backend.snapshot(model_id, 1.0)
        await backend.metric(model_id, 3)

        async def caught_up() -> bool:
            return (await http.get(f"/models/{model_id}.json")).json()["snapshots"] == [1.0]

        await until(caught_up)
        await until(lambda: _points(http, model_id, 1))
        async with http.stream(
            "GET", f"/jobs/{model_id}/events", headers={"Last-Event-ID": history.id or ""}
        ) as response:
            events = sse_events(response)
            replay = await take(events, 4)
            await backend.complete(model_id)
            (live,) = await take(events, 1)
    # Per stream in order; progress has its own stream (sorted after the models stream's).
    assert [e.event for e in replay] == ["status", "snapshot", "progress", "metric"]
    assert replay[2].data["progress"] == 0.2  # only the latest progress is kept
    assert isinstance(replay[3].data["occurred"], float)  # a replayed point keeps its time
    assert live.event == "status" and live.data["status"] == "Done"
    assert cursor(live)[subjects.STREAM_MODELS] > cursor(replay[-1])[subjects.STREAM_MODELS]


async def test_the_home_stream_lists_jobs_then_reports_new_ones(live_url, backend) -> None:
    """/events: a history of every job, then status events for jobs created later."""
    async with live_client(live_url, "alice") as http:
        first = (
            await http.post(
                "/datasets/images/classification.json",
                data={"dataset_name": "a", "folder_train": "/d"},
            )
        ).json()
        async with http.stream("GET", "/events") as response:
            events = sse_events(response)
            (history,) = await take(events, 1)
            assert [j["id"] for j in history.data["jobs"]] == [first["id"]]
            second = (
                await http.post(
                    "/datasets/images/classification.json",
                    data={"dataset_name": "b", "folder_train": "/d"},
                )
            ).json()
            (created,) = await take(events, 1)
            assert created.event == "status"
            assert created.data == {
                "job_id": second["id"],
                "type": "dataset",
                "name": "b",
                "status": "Initialized",
            }
        await http.delete(f"/datasets/{first['id']}")
        async with http.stream(
            "GET", "/events", headers={"Last-Event-ID": created.id or ""}
        ) as response:
            (deleted,) = await take(sse_events(response), 1)
    assert deleted.event == "deleted" and deleted.data["job_id"] == first["id"]


async def test_unknown_jobs_have_no_stream(live_url) -> None:
    """404 for a job that never existed."""
    async with live_client(live_url, "alice") as http:
        assert (await http.get("/jobs/nope/events")).status_code == 404


async def test_shutdown_ends_open_streams_at_once(nats_url, tmp_path, backend) -> None:
    """uvicorn waits for open connections; the gateway ends its SSE streams so it need not."""
    from digits_gateway.app import server
    from tests.conftest import free_port
    from tests.gateway.conftest import make_settings

    port = free_port()
    srv = server(make_settings(nats_url, tmp_path, port=port))
    task = asyncio.create_task(srv.serve())
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await until(lambda: _healthy(http))
        await sign_in(with_csrf(http), "alice")
        async with http.stream("GET", "/events") as response:
            events = sse_events(response)
            await take(events, 1)
            srv.should_exit = True
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(5):
                async for _ in events:
                    pass
            await asyncio.wait_for(task, 5)
            assert loop.time() - started < 1.5


async def _points(http: httpx.AsyncClient, model_id: str, count: int) -> bool:
    r = await http.get(f"/api/v1/models/{model_id}/metrics")
    return len(r.json()["points"]) >= count


async def _healthy(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.TransportError:
        return False
