"""A trainer killed with SIGKILL mid-job: trainer processes on one real nats-server (a fake
gpu-broker endpoint in the test), real MXNet training.

The other trainer takes the job over within ack_wait (5 s) plus a fetch, continues it from its
last point to Done, and the job's status history says "resumed after the worker on node-a was
lost", once. A job whose trainer is killed every time ends Error after max_deliver losses, not
before; a job whose ticket is NAK'd while it waits is never counted as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import jinja2
import pytest
from nats.js.errors import NotFoundError

from digits_gateway.pages._view import common_view
from digits_gateway.readmodel import queries
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.projectors import models as model_projector
from digits_proto import codec, stamps, subjects
from digits_proto.base import JobStatus
from digits_proto.models import (
    MetricsRecorded,
    ModelCreated,
    ModelWaiting,
    TrainingFailed,
    TrainingStarted,
    TrainSpec,
    WorkerLost,
)
from digits_proto.runtime import EventStore
from digits_trainer.domain import decide_takeover, evolve_model, fold_model
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    trainer,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)


@contextlib.contextmanager
def trainer_process(nats_url: str, data_dir: Path, node_id: str, **env: str) -> Iterator:
    """`python -m digits_trainer` as node `node_id`, one job at a time; SIGKILLed at the end."""
    settings = {
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(data_dir),
        "DIGITS_NODE_ID": node_id,
        "DIGITS_TRAINER_PORT": "-1",
        "DIGITS_TRAINER_CONCURRENT_JOBS": "1",
        "DIGITS_TRAINER_RETRY_DELAY": "0.2",
        "DIGITS_TRAINER_NEXT_RETRY_DELAY": "0.2",
        "DIGITS_TRAINER_PROGRESS_EVERY": "0.5",
        "DIGITS_TRAINER_SANDBOX_WARM": "false",
        "DIGITS_TRAINER_WARM_CHILD": "false",
        "DIGITS_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_trainer"], env={**os.environ, **settings, **env}
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def events_of(js, model_id: str) -> list:
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    events, _ = await store.load(subjects.model_events(model_id))
    return events


async def consuming(js, pulls: int = 1, timeout: float = 60.0) -> None:
    """Until `pulls` trainer ticket loops wait for a ticket (a started trainer, or a free one)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(NotFoundError):  # not created yet: the first trainer starts
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_TRAINER)
            if info.num_waiting >= pulls:
                return
        assert time.monotonic() < deadline, "no trainer is consuming tickets"
        await asyncio.sleep(0.1)


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


ROOT = Path(__file__).resolve().parents[2]


def projected_history(tmp: Path, model_id: str, events: list) -> list[tuple[str, str]]:
    """The job's (status, note) rows as the gateway projects its events and its page shows
    them (the status panel's template, rendered)."""
    db = ReadModel(tmp / "readmodel.duckdb")
    try:
        with db.transaction() as tx:
            model_projector.apply(tx, list(enumerate(events, start=1)))
        with db.cursor() as cur:
            history = queries.status_history(cur, model_id)
            notes = queries.status_notes(cur, model_id)
    finally:
        db.close()
    job = {"status": history[-1][0], "status_history": [[s, at.timestamp()] for s, at in history]}
    view = common_view({**job, "status_notes": notes})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "web" / "templates"))
    html = env.get_template("_macros.html").module.job_status_panel(view)  # type: ignore[attr-defined]
    for note in filter(None, notes):
        assert html.count(f'<span class="muted history-note">{note}</span>') == notes.count(note)
    return [(row["status"]["text"], row["note"]) for row in view["history"]]


async def test_a_killed_trainer_s_job_continues_on_the_other_node_and_says_so_once(
    nats_url, js, nc, tmp_path
):
    """Node A trains; B waits beside it; A is killed (SIGKILL); within 5 s + a fetch B takes the
    job over (WorkerLost naming node-a), continues it to Done from its last point with no
    metric point twice, and the status history says "resumed after the worker on node-a was
    lost" once."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    with trainer_process(nats_url, tmp_path / "a", "node-a") as a:
        await consuming(js)
        reply = await create(nc, dataset_id, train_epochs=6, val_interval=1, snapshot_interval=1)
        metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)

        async def trained_a_while() -> None:
            deadline = time.monotonic() + 120
            while True:
                points, _ = await metrics.load(subjects.model_metrics(reply.id))
                if any(p.phase == "val" for p in points):
                    return
                assert time.monotonic() < deadline, "node-a trained no epoch"
                await asyncio.sleep(0.2)

        await trained_a_while()
        with trainer_process(nats_url, tmp_path / "b", "node-b"):
            await consuming(js)
            a.kill()
            killed = time.time()
            events = await wait_for(js, reply.id, lambda ev: bool(of(ev, WorkerLost)), 30)
            [lost] = of(events, WorkerLost)
            took = lost.occurred_at.timestamp() - killed
            print(f"node-b took the job over {took:.1f} s after node-a was killed")
            assert (lost.node_id, lost.taken_by, lost.losses) == ("node-a", "node-b", 1)
            assert took <= 5.0 + 3.0
            events = await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=180)
    starts = of(events, TrainingStarted)
    assert [(s.node_id, s.attempt) for s in starts] == [("node-a", 1), ("node-b", 2)]
    assert starts[1].resume_epoch >= 1.0 and len(of(events, WorkerLost)) == 1
    assert not of(events, TrainingFailed)
    points, _ = await metrics.load(subjects.model_metrics(reply.id))
    for phase in ("train", "val"):
        its = [p.iteration for p in points if isinstance(p, MetricsRecorded) and p.phase == phase]
        assert its == sorted(set(its)), phase
    history = projected_history(tmp_path, reply.id, events)
    assert history == [
        ("Initialized", ""),
        ("Running", ""),
        ("Running", "resumed after the worker on node-a was lost"),
        ("Done", ""),
    ]


async def test_a_job_whose_trainer_is_killed_every_time_ends_error_after_max_deliver(
    nats_url, js, nc, tmp_path
):
    """DIGITS_MAX_DELIVER=3: three trainers in turn start the job and are killed (SIGKILL) as
    it starts; the fourth does not run it: the job ends Error naming the cause and the last
    node, and its ticket is acked (nothing loops)."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    env = {"DIGITS_MAX_DELIVER": "3", "DIGITS_TRAINER_ACK_WAIT": "2"}
    reply = None
    for n in range(1, 4):
        with trainer_process(nats_url, tmp_path / f"n{n}", f"n{n}", **env) as proc:
            if reply is None:  # later trainers take the ticket at once: none waits idle
                await consuming(js)
                reply = await create(nc, dataset_id, train_epochs=50)
            events = await wait_for(
                js, reply.id, lambda ev, n=n: len(of(ev, TrainingStarted)) == n, 90
            )
            assert of(events, TrainingStarted)[-1].node_id == f"n{n}"
            assert len(of(events, WorkerLost)) == n - 1 and not of(events, TrainingFailed)
            proc.send_signal(signal.SIGKILL)
    assert reply is not None
    with trainer_process(nats_url, tmp_path / "n4", "n4", **env) as last:
        events = await wait_for(js, reply.id, status_is(JobStatus.ERROR), 60)
        [failed] = of(events, TrainingFailed)
        assert failed.error == (
            "the worker was lost 3 times while running this job; last on node n3"
        )
        assert [w.losses for w in of(events, WorkerLost)] == [1, 2, 3]
        assert len(of(events, TrainingStarted)) == 3 and last.poll() is None
        deadline = time.monotonic() + 10
        while True:
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_TRAINER)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                break
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.1)
    assert [w.ended for w in of(events, WorkerLost)] == [False, False, True]
    # n1's start, then one row per takeover that resumed it; the last loss ends it instead.
    assert projected_history(tmp_path, reply.id, events) == [
        ("Initialized", ""),
        ("Running", ""),
        ("Running", "resumed after the worker on n1 was lost"),
        ("Running", "resumed after the worker on n2 was lost"),
        ("Error", ""),
    ]


async def test_a_waiting_job_nakd_many_times_is_never_counted_as_lost(nats_url, js, nc, tmp_path):
    """max_deliver 2: a job waiting for its dataset has its ticket NAK'd 20+ times (each a
    JetStream delivery); it stays Waiting with no loss recorded, then trains to Done once its
    dataset is built."""
    await FakeBroker().serve(nc)
    dataset_id, built = await add_dataset(js, tmp_path / "toy", built=False)
    async with trainer(nats_url, tmp_path / "t", max_deliver=2, concurrent_jobs=1):
        reply = await create(nc, dataset_id)
        deadline = time.monotonic() + 60
        while True:
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_TRAINER)
            if info.delivered.consumer_seq >= 21:
                break
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.1)
        events = await events_of(js, reply.id)
        assert [type(e) for e in events[1:]] == [ModelWaiting]  # said once, still waiting
        datasets = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        _, seq = await datasets.load(subjects.dataset_events(dataset_id))
        await datasets.append(subjects.dataset_events(dataset_id), [built], seq)
        events = await wait_for(js, reply.id, status_is(JobStatus.DONE), 120)
    assert not of(events, WorkerLost) and not of(events, TrainingFailed)
    assert isinstance(events[0].occurred_at, datetime)


async def test_a_trainer_stopped_with_sigterm_hands_its_job_back_without_a_loss(
    nats_url, js, nc, tmp_path
):
    """SIGTERM (a restart, not a crash): the trainer stops its job and says it waits
    ("Handed back: node node-a stopped"); the next trainer continues it with no WorkerLost,
    so restarts never count toward max_deliver."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    with trainer_process(nats_url, tmp_path / "a", "node-a") as a:
        await consuming(js)
        reply = await create(nc, dataset_id, train_epochs=50)
        await wait_for(js, reply.id, lambda ev: bool(of(ev, TrainingStarted)), 90)
        a.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(a.wait, 60) == 0
    events = await events_of(js, reply.id)
    assert [w.reason for w in of(events, ModelWaiting)] == ["Handed back: node node-a stopped"]
    with trainer_process(nats_url, tmp_path / "b", "node-b"):
        events = await wait_for(js, reply.id, lambda ev: len(of(ev, TrainingStarted)) == 2, 90)
    assert [s.node_id for s in of(events, TrainingStarted)] == ["node-a", "node-b"]
    assert not of(events, WorkerLost) and not of(events, TrainingFailed)


def test_the_takeover_decision_counts_losses_only_of_a_running_job() -> None:
    """Pure: a Waiting job's ticket is no loss; a Running one's names its holder and counts;
    the loss that reaches the bound ends the job (0: no bound)."""
    created = ModelCreated(model_id="m", name="m", dataset_id="d", spec=TrainSpec())
    waiting = fold_model([created, ModelWaiting(model_id="m", reason="Waiting for devices")])
    assert waiting is not None and decide_takeover(waiting, "b", 5, stamps.fixed()) == []
    state = fold_model([created, TrainingStarted(model_id="m", node_id="a")])
    assert state is not None
    losses = []
    for taker in ("b", "c", "d"):
        events = decide_takeover(state, taker, 3, stamps.fixed())
        losses.append([(type(e).__name__, getattr(e, "node_id", "")) for e in events])
        for event in events:
            state = evolve_model(state, event) or state
    assert losses == [
        [("WorkerLost", "a")],
        [("WorkerLost", "b")],
        [("WorkerLost", "c"), ("TrainingFailed", "")],
    ]
    assert state.status is JobStatus.ERROR and state.losses == 3
    unbounded = fold_model([created, TrainingStarted(model_id="m", node_id="a")])
    assert unbounded is not None
    for _ in range(10):
        [lost] = decide_takeover(unbounded, "b", 0, stamps.fixed())
        unbounded = evolve_model(unbounded, lost) or unbounded
    assert unbounded.status is JobStatus.RUNNING and unbounded.losses == 10
