"""The projection against a real nats-server: events become rows, exactly once, rebuildable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub
from digits_gateway.readmodel.projectors import metrics as metric_projector
from digits_gateway.readmodel.projectors import models as model_projector
from digits_gateway.readmodel.runner import Projection
from digits_proto import subjects
from digits_proto.datasets import CreateDataset, DatasetSpec
from digits_proto.models import CreateModel, MetricsRecorded, ModelCreated, TrainSpec
from digits_proto.runtime import Metrics
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
    "tracking",
)


def dump(db: ReadModel) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every view, in a stable order."""
    with db.cursor() as cur:
        return {t: sorted(cur.execute(f"select * from {t}").fetchall(), key=repr) for t in TABLES}


async def project(js, path: Path, hub: Hub | None = None) -> tuple[ReadModel, Projection]:
    """A running projection into the DuckDB file at `path`."""
    db = ReadModel(path)
    projection = Projection(db, js, hub or Hub(), Metrics("test"), batch=50)
    await projection.start()
    return db, projection


async def caught_up(js, projection: Projection) -> None:
    """Wait until the projection has applied every stored event of every stream."""

    async def done() -> bool:
        for stream in subjects.EVENT_STREAMS:
            info = await js.stream_info(stream)
            if projection.positions[stream] < info.state.last_seq:
                return False
        return True

    await until(done)


async def history(backend: FakeBackend) -> tuple[str, str]:
    """A built dataset and a trained model with metrics, snapshots and a duplicate point."""
    ds = await backend.create_dataset(
        CreateDataset(name="pets", username="alice", spec=DatasetSpec(folder_train="/d"))
    )
    await backend.build(ds.id)
    model = await backend.create_model(
        CreateModel(
            name="m", username="alice", dataset_id=ds.id, spec=TrainSpec(standard_network="lenet")
        )
    )
    await backend.start_training(model.id)
    for i in range(120):
        await backend.metric(model.id, i, loss=1.0 / (i + 1), learning_rate=0.01)
    await backend.metric(model.id, 119, phase="val", loss=0.5, accuracy=0.9)
    await backend.progress(model.id, 1.0, 0.5)
    await backend.snapshot(model.id, 1.0)
    await backend.complete(model.id)
    return ds.id, model.id


async def test_events_become_rows_with_status_history_and_metrics(js, nc, tmp_path) -> None:
    """A dataset build and a training run show up as jobs, history, details, metrics, snapshots."""
    backend = FakeBackend(nc, js)
    ds_id, model_id = await history(backend)
    db, projection = await project(js, tmp_path / "rm.duckdb")
    await caught_up(js, projection)
    await projection.stop()
    with db.cursor() as cur:
        jobs = dict(cur.execute("select id, status from jobs").fetchall())
        assert jobs == {ds_id: "Done", model_id: "Done"}
        statuses = cur.execute(
            "select status from status_history where job_id = ? order by seq", [model_id]
        ).fetchall()
        assert [s for (s,) in statuses] == ["Initialized", "Running", "Done"]
        assert cur.execute(
            "select count(*) from metrics where job_id = ? and phase = 'train'", [model_id]
        ).fetchone() == (240,)
        assert cur.execute("select epoch from snapshots").fetchall() == [(1.0,)]
        labels, counts = cur.execute(
            "select labels, split_counts from dataset_details where dataset_id = ?", [ds_id]
        ).fetchone()
        assert labels == '["cat","dog"]' and '"train":6' in counts
    db.close()


async def test_applying_the_same_events_twice_changes_nothing(js, tmp_path) -> None:
    """Every apply is idempotent: a redelivered batch leaves the rows as they were."""
    db = ReadModel(tmp_path / "rm.duckdb")
    created = ModelCreated(model_id="m1", name="m", dataset_id="d", spec=TrainSpec())
    points = [
        (
            10 + i,
            MetricsRecorded(
                model_id="m1",
                epoch=i / 10,
                iteration=i,
                phase="train",
                values={"loss": 1.0 / (i + 1)},
            ),
        )
        for i in range(5)
    ]
    for _ in range(2):
        with db.transaction() as tx:
            model_projector.apply(tx, [(1, created)])
            metric_projector.apply(tx, points)
    with db.cursor() as cur:
        assert cur.execute("select count(*) from jobs").fetchone() == (1,)
        assert cur.execute("select count(*) from status_history").fetchone() == (1,)
        assert cur.execute("select count(*) from metrics").fetchone() == (5,)
    db.close()


async def test_a_re_recorded_metric_point_replaces_the_old_one(js, tmp_path) -> None:
    """Two events for the same job/phase/iteration (a resumed trainer) leave one row per name."""
    db = ReadModel(tmp_path / "rm.duckdb")
    first = MetricsRecorded(
        model_id="m1", epoch=0.5, iteration=7, phase="val", values={"loss": 2.0, "accuracy": 0.1}
    )
    again = MetricsRecorded(
        model_id="m1", epoch=0.5, iteration=7, phase="val", values={"loss": 1.0, "accuracy": 0.2}
    )
    with db.transaction() as tx:
        metric_projector.apply(tx, [(3, first), (9, again)])
    with db.transaction() as tx:
        metric_projector.apply(tx, [(12, again)])
    with db.cursor() as cur:
        rows = cur.execute("select name, value, seq from metrics order by name").fetchall()
    assert rows == [("accuracy", 0.2, 12), ("loss", 1.0, 12)]
    db.close()


async def test_restart_resumes_from_the_tracking_record_without_duplicates(
    js, nc, tmp_path
) -> None:
    """A restarted projection on the same file applies only what is new."""
    backend = FakeBackend(nc, js)
    _, model_id = await history(backend)
    path = tmp_path / "rm.duckdb"
    db, projection = await project(js, path)
    await caught_up(js, projection)
    await projection.stop()
    before = dump(db)
    db.close()
    await backend.metric(model_id, 500)
    db, projection = await project(js, path)
    assert not db.fresh
    await caught_up(js, projection)
    await projection.stop()
    after = dump(db)
    assert len(after["metrics"]) == len(before["metrics"]) + 1
    assert after["status_history"] == before["status_history"]
    db.close()


async def test_deleting_the_duckdb_file_rebuilds_equal_views(js, nc, tmp_path) -> None:
    """Gateway killed, DuckDB deleted: the views are rebuilt from sequence 1 and equal."""
    backend = FakeBackend(nc, js)
    await history(backend)
    path = tmp_path / "rm.duckdb"
    db, projection = await project(js, path)
    await caught_up(js, projection)
    await projection.stop()
    before = dump(db)
    db.close()
    path.unlink()
    db, projection = await project(js, path)
    assert db.fresh
    await caught_up(js, projection)
    await projection.stop()
    assert dump(db) == before
    db.close()


async def test_an_undecodable_event_is_recorded_and_skipped(js, tmp_path) -> None:
    """One bad event never stalls the projection: it lands in `failures`, later events apply."""
    await js.publish(subjects.model_events("bad"), b'{"type": "models.Nonsense"}')
    created = ModelCreated(model_id="ok", name="m", dataset_id="d", spec=TrainSpec())
    from digits_proto import codec

    await js.publish(subjects.model_events("ok"), codec.encode(created))
    db, projection = await project(js, tmp_path / "rm.duckdb")
    await caught_up(js, projection)
    await projection.stop()
    with db.cursor() as cur:
        assert cur.execute("select id from jobs").fetchall() == [("ok",)]
        assert cur.execute("select stream, seq from failures").fetchall() == [
            (subjects.STREAM_MODELS, 1)
        ]
    db.close()


async def test_live_changes_reach_subscribers_after_commit(js, nc, tmp_path) -> None:
    """The hub gets each change with its stream position once it is committed."""
    hub = Hub()
    sub = hub.subscribe(None, ("status", "metric"))
    db, projection = await project(js, tmp_path / "rm.duckdb", hub)
    backend = FakeBackend(nc, js)
    ds = await backend.create_dataset(
        CreateDataset(name="pets", spec=DatasetSpec(folder_train="/d"))
    )
    delivery = await asyncio.wait_for(sub.queue.get(), 5)
    assert delivery is not None
    event, encoded = delivery
    assert event.kind == "status" and event.seq == ds.seq
    assert msgspec.json.decode(encoded) == event.data
    assert event.data == {
        "job_id": ds.id,
        "type": "dataset",
        "name": "pets",
        "status": "Initialized",
    }
    with db.cursor() as cur:
        assert cur.execute("select count(*) from jobs").fetchone() == (1,)
    await projection.stop()
    db.close()


@pytest.mark.parametrize("seconds", [0.5])
async def test_wait_for_returns_false_when_the_projection_lags(js, tmp_path, seconds) -> None:
    """Read-your-writes gives up after its bound when the sequence never arrives."""
    db, projection = await project(js, tmp_path / "rm.duckdb")
    assert not await projection.wait_for(subjects.STREAM_MODELS, 99, seconds)
    assert await projection.wait_for("NOT_PROJECTED", 99, seconds)
    await projection.stop()
    db.close()


async def test_a_snapshot_deleted_by_retention_is_no_longer_listed(js, nc, tmp_path) -> None:
    """SnapshotDeleted removes that epoch from the snapshots view and tells live pages."""
    from digits_proto.models import SnapshotDeleted

    backend = FakeBackend(nc, js)
    _, model_id = await history(backend)
    await backend.snapshot(model_id, 2.0)
    subject = subjects.model_events(model_id)
    _, last = await backend.models.load(subject)
    await backend.models.append(subject, [SnapshotDeleted(model_id=model_id, epoch=1.0)], last)
    hub = Hub()
    db, projection = await project(js, tmp_path / "rm.duckdb", hub)
    await caught_up(js, projection)
    await projection.stop()
    with db.cursor() as cur:
        assert cur.execute("select epoch from snapshots").fetchall() == [(2.0,)]
    db.close()
