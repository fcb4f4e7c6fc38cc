"""Events recorded from a real run (tests/fixtures/events) still decode, fold and project.

Streams are kept forever: whatever a later change does to a message, these events — written by
the system as it was when they were recorded — must reach the services' folds and the gateway's
read model in today's shape (through `versions.decode_event` and its upcasters). Re-recording
them would defeat the point: add an upcaster instead (proto/README.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from digits_datasets import domain as datasets_domain
from digits_gateway.identity._domain import fold as fold_account
from digits_gateway.readmodel import cluster, queries, tracking
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.projectors import PROJECTORS
from digits_gateway.readmodel.runner import CONSUMERS
from digits_inference.domain import DatasetView, ModelView, evolve_dataset, evolve_model
from digits_proto import headers, subjects, versions
from digits_proto.base import JobStatus, Role
from digits_proto.datasets import BuildDatasetTicket
from digits_proto.inference import ClassifyManyTicket
from digits_proto.models import TrainModelTicket
from digits_trainer import domain as trainer_domain
from tests.fixtures.events.record import HERE, WORK_FILE, stream_file

Stored = tuple[int, str, dict[str, str], bytes]  # seq, subject, headers, data
TICKETS = msgspec.json.Decoder(BuildDatasetTicket | TrainModelTicket | ClassifyManyTicket)


def recorded(name: str) -> list[Stored]:
    """One fixture file's messages as the stream stored them."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        r = json.loads(line)
        out.append((r["seq"], r["subject"], r["headers"], json.dumps(r["data"]).encode()))
    return out


def decoded(stream: str) -> list[tuple[int, str, Any]]:
    """(seq, subject, event) of a recorded stream, through the one decode every reader uses."""
    decoder, _ = PROJECTORS[stream]
    return [
        (seq, subject, versions.decode_event(decoder, data, hdrs))
        for seq, subject, hdrs, data in recorded(stream_file(stream))
    ]


def by_subject(stream: str) -> dict[str, list[Any]]:
    """Each aggregate's events in stream order."""
    out: dict[str, list[Any]] = defaultdict(list)
    for _, subject, event in decoded(stream):
        out[subject].append(event)
    return out


def fold(events: Iterable[Any], evolve: Callable[[Any, Any], Any], state: Any) -> Any:
    for event in events:
        state = evolve(state, event)
    return state


def named(states: Iterable[Any], name: str) -> Any:
    return next(s for s in states if s is not None and s.name == name)


def test_the_fixture_holds_a_complete_history() -> None:
    """Every kind of fact the system records is in it (so the tests below mean something)."""
    types = {type(e).__name__ for stream in subjects.EVENT_STREAMS for _, _, e in decoded(stream)}
    for expected in (
        "DatasetCreated",
        "DatasetBuilt",
        "DatasetDeleted",
        "ModelCreated",
        "TrainingStarted",
        "SnapshotSaved",
        "TrainingCompleted",
        "ModelEdited",
        "ModelAborted",
        "ModelDeleted",
        "MetricsRecorded",
        "TrainingProgressed",
        "DatasetProgressed",
        "UserCreated",
        "RoleChanged",
        "UserDisabled",
        "TokenIssued",
        "DevicesDiscovered",
        "LeaseGranted",
        "LeaseReleased",
    ):
        assert expected in types, expected
    tickets = [TICKETS.decode(data) for _, _, _, data in recorded(WORK_FILE)]
    assert {type(t) for t in tickets} == {BuildDatasetTicket, TrainModelTicket, ClassifyManyTicket}


def test_domain_events_carry_their_schema_version() -> None:
    """Each event appended through the event store says what it is and which version."""
    for stream in (subjects.STREAM_DATASETS, subjects.STREAM_MODELS, subjects.STREAM_USERS):
        for _, _, hdrs, data in recorded(stream_file(stream)):
            tag, version = versions.parse_schema(hdrs.get(headers.SCHEMA))
            assert tag == json.loads(data)["type"] and version >= 1, hdrs


def test_the_services_fold_every_recorded_aggregate() -> None:
    """datasets, trainer, inference and the gateway's accounts fold what they own to the
    states the run ended in."""
    dataset_histories = by_subject(subjects.STREAM_DATASETS).values()
    datasets = [datasets_domain.fold(h) for h in dataset_histories]
    gray, spare = named(datasets, "fixture-gray"), named(datasets, "fixture-spare")
    assert gray.status == JobStatus.DONE and gray.built is not None
    assert len(gray.built.labels) == 3 and not gray.deleted
    assert spare.deleted

    models = [trainer_domain.fold_model(h) for h in by_subject(subjects.STREAM_MODELS).values()]
    lenet, aborted = named(models, "fixture-lenet"), named(models, "fixture-aborted")
    assert lenet.status == JobStatus.DONE and lenet.snapshots == (1.0, 2.0)
    assert lenet.notes == "recorded for the fixture" and lenet.dataset_id == gray.dataset_id
    assert aborted.status == JobStatus.ABORTED and aborted.deleted
    trainer_view = trainer_domain.fold_dataset(
        by_subject(subjects.STREAM_DATASETS)[subjects.dataset_events(gray.dataset_id)]
    )
    assert trainer_view is not None and trainer_view.input_shape(lenet.spec)[0] == 3

    model_subject = subjects.model_events(lenet.model_id)
    seen = fold(by_subject(subjects.STREAM_MODELS)[model_subject], evolve_model, ModelView())
    assert seen.status == JobStatus.DONE
    dataset_subject = subjects.dataset_events(gray.dataset_id)
    ds_view = fold(
        by_subject(subjects.STREAM_DATASETS)[dataset_subject], evolve_dataset, DatasetView()
    )
    assert ds_view.labels == tuple(gray.built.labels)

    accounts = {
        a.username: a for a in map(fold_account, by_subject(subjects.STREAM_USERS).values())
    }
    assert accounts["alice"].role == Role.USER and len(accounts["alice"].tokens) == 1
    assert accounts["bob"].role == Role.USER and accounts["bob"].disabled


@pytest.fixture
def projected(tmp_path: Path) -> ReadModel:
    """A fresh DuckDB read model with every recorded stream projected, as the gateway does."""
    db = ReadModel(tmp_path / "readmodel.duckdb")
    for stream in subjects.EVENT_STREAMS:
        _, apply = PROJECTORS[stream]
        items = [(seq, event) for seq, _, event in decoded(stream)]
        with db.transaction() as tx:
            apply(tx, items)
            tracking.save(tx, CONSUMERS[stream], stream, max((s for s, _ in items), default=0))
    yield db
    db.close()


def test_the_gateway_projects_the_whole_history(projected: ReadModel) -> None:
    """The read model answers as the system did: jobs with their states, the dataset's labels,
    the model's epochs and metrics, the deleted ones gone, accounts, devices."""
    with projected.cursor() as cur:
        jobs = {j.name: j for j in queries.list_jobs(cur)}
        lenet, gray = jobs["fixture-lenet"], jobs["fixture-gray"]
        assert lenet.status == "Done" and lenet.epoch == 2.0
        assert lenet.notes == "recorded for the fixture"
        assert [s.epoch for s in queries.snapshots(cur, lenet.id)] == [1.0, 2.0]
        points = queries.metrics(cur, lenet.id)
        assert {p.phase for p in points} == {"train", "val"}
        assert max(p.epoch for p in points) == pytest.approx(2.0)
        assert gray.status == "Done"
        assert len(queries.dataset_details(cur, gray.id).labels) == 3
        assert "fixture-spare" not in jobs and "fixture-aborted" not in jobs
        users = {u.username: u for u in queries.list_users(cur)}
        assert users["alice"].role == "user" and users["bob"].disabled
        assert cluster.nodes(cur), "the gpu-broker's devices"
        assert not cluster.queue(cur)
