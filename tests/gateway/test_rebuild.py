"""A read model rebuilt from a lab's long recorded history: it finishes, the views are the
same, and /health reports the progress the launcher waits on."""

from __future__ import annotations

import pytest

from digits_gateway.app import create_app
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub
from digits_gateway.readmodel.runner import Projection
from digits_proto import subjects
from digits_proto.runtime import Metrics
from tests.gateway import long_history
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until

TABLES = (
    "jobs",
    "status_history",
    "dataset_details",
    "snapshots",
    "metrics",
    "devices",
    "leases",
    "queue",
    "users",
    "audit",
    "tracking",
    "failures",
)


def dump(db: ReadModel) -> dict[str, list[tuple[object, ...]]]:
    with db.cursor() as cur:
        return {t: sorted(cur.execute(f"select * from {t}").fetchall(), key=repr) for t in TABLES}


async def project_all(js, db: ReadModel) -> None:
    """Run a projection (the gateway's default batch) until every stored event is applied."""
    projection = Projection(db, js, Hub(), Metrics("test"))
    await projection.start()
    heads = {s: (await js.stream_info(s)).state.last_seq for s in subjects.EVENT_STREAMS}

    async def done() -> bool:
        return all(projection.positions[s] >= heads[s] for s in heads)

    await until(done, timeout=240)
    await projection.stop()


@pytest.mark.timeout(290)
async def test_a_thousand_jobs_history_rebuilds_to_the_same_views(js, tmp_path) -> None:
    """1,000 jobs (about 220k events): projected, the file deleted, rebuilt: equal views."""
    await long_history.publish(js, long_history.history(1000))
    path = tmp_path / "rm.duckdb"
    db = ReadModel(path)
    await project_all(js, db)
    before = dump(db)
    db.close()
    path.unlink()
    path.with_name(path.name + ".wal").unlink(missing_ok=True)

    db = ReadModel(path)
    assert db.fresh
    await project_all(js, db)
    after = dump(db)
    db.close()
    assert after == before
    # And the views say what the history did (not only the same twice).
    jobs = {row[0]: row for row in after["jobs"]}
    models = [j for j in jobs.values() if j[1] == "model"]
    assert len(models) == 1000
    assert not after["failures"]
    assert after["queue"] == []  # every queued job was leased in the end
    assert {row[-1] for row in after["leases"]} == {"released"}
    statuses = {j[3] for j in models if not j[16]}
    assert statuses <= {"Done", "Aborted"} and "Done" in statuses
    deleted = {j[0] for j in models if j[16]}
    assert deleted and not any(r[0] in deleted for r in after["metrics"])


async def test_health_reports_rebuild_progress_until_caught_up(
    nc, js, nats_url, tmp_path, accounts
) -> None:
    """The real gateway's /health while it replays a history: 503 with per-stream applied and
    pending counts that move; 200 with nothing left once caught up."""
    await long_history.publish(js, long_history.history(100))
    backend = FakeBackend(nc, js)
    await backend.start()
    # Small batches: the rebuild lasts long enough to be watched.
    settings = make_settings(nats_url, tmp_path, fetch_batch=10)
    seen: list[dict[str, dict[str, int]]] = []
    async with running(create_app(settings)) as client:

        async def rebuilding() -> bool:
            r = await client.get("/health")
            body = r.json()
            if r.status_code == 503 and body["rebuilding"]:
                seen.append(body["rebuilding"])
            return bool(seen) and _moved(seen[0], seen[-1])

        await until(rebuilding, timeout=60)
        await wait_ready(client, timeout=240)
        health = (await client.get("/health")).json()
    await backend.stop()
    first, later = seen[0], seen[-1]
    for progress in (first, later):
        for stream, counts in progress.items():
            assert stream in subjects.EVENT_STREAMS
            assert set(counts) == {"applied", "pending"}
            assert counts["pending"] > 0 and counts["applied"] >= 0
    assert health["ready"] is True and health["rebuilding"] == {}


def _moved(first: dict[str, dict[str, int]], later: dict[str, dict[str, int]]) -> bool:
    """Some stream still rebuilding applied more and has less pending than before."""
    return any(
        later[s]["applied"] > first[s]["applied"] and later[s]["pending"] < first[s]["pending"]
        for s in first.keys() & later.keys()
    )
