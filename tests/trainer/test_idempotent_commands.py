"""The trainer's create and abort handlers under an Idempotency-Key, on a real nats-server."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext

from digits_proto import codec, new_job_id, subjects
from digits_proto.datasets import DatasetCreated, DatasetSpec
from digits_proto.models import AbortModel, CreateModel, TrainSpec
from digits_proto.runtime import EventStore, KeyReused, ensure_streams
from digits_trainer import handlers
from digits_trainer.errors import NotAbortable
from digits_trainer.store import Store
from tests.fakes.principals import ALICE, BOB

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def store(js: JetStreamContext) -> Store:
    """The trainer's store on fresh streams."""
    await ensure_streams(js)
    return Store.on(js)


async def a_dataset(js: JetStreamContext) -> str:
    """A dataset accepted by the datasets service (its events, as that service appends them)."""
    dataset_id = new_job_id()
    created = DatasetCreated(
        dataset_id=dataset_id, name="d", username="alice", spec=DatasetSpec(), actor="alice"
    )
    datasets = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    await datasets.append(subjects.dataset_events(dataset_id), [created], 0)
    return dataset_id


def create(dataset_id: str, key: str, digest: str = "d1", principal=ALICE) -> CreateModel:
    return CreateModel(
        name="lenet",
        dataset_id=dataset_id,
        spec=TrainSpec(),
        principal=principal,
        idempotency_key=key,
        request_digest=digest,
    )


async def model_jobs(js: JetStreamContext) -> set[str]:
    info = await js.stream_info(subjects.STREAM_MODELS, subjects_filter=">")
    return set(info.state.subjects or {})


async def test_repeated_create_names_the_first_job(js: JetStreamContext, store: Store) -> None:
    """A keyed CreateModel sent twice makes one job and both replies name it; one ticket."""
    dataset_id = await a_dataset(js)
    first = await handlers.create_model(store, None, create(dataset_id, "k"))  # type: ignore[arg-type]
    again = await handlers.create_model(store, None, create(dataset_id, "k"))  # type: ignore[arg-type]
    assert (again.id, again.name, again.status) == (first.id, first.name, first.status)
    assert await model_jobs(js) == {subjects.model_events(first.id)}
    work = await js.stream_info(subjects.STREAM_WORK)
    assert work.state.messages == 1


async def test_key_is_scoped_to_the_principal_and_its_request(
    js: JetStreamContext, store: Store
) -> None:
    """Bob's same key is another job; alice's key with another request digest is a 422."""
    dataset_id = await a_dataset(js)
    mine = await handlers.create_model(store, None, create(dataset_id, "k"))  # type: ignore[arg-type]
    his = await handlers.create_model(store, None, create(dataset_id, "k", principal=BOB))  # type: ignore[arg-type]
    assert mine.id != his.id
    with pytest.raises(KeyReused) as refused:
        await handlers.create_model(store, None, create(dataset_id, "k", digest="d2"))  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.field) == (422, "Idempotency-Key")
    assert len(await model_jobs(js)) == 2


async def test_retried_abort_answers_as_the_first(js: JetStreamContext, store: Store) -> None:
    """An abort retried under its key gets the first answer and appends nothing; another key
    on the ended job is refused as any abort of an ended job."""
    dataset_id = await a_dataset(js)
    job = await handlers.create_model(store, None, create(dataset_id, ""))  # type: ignore[arg-type]
    abort = AbortModel(model_id=job.id, principal=ALICE, idempotency_key="a1")
    first = await handlers.abort_model(store, abort)
    again = await handlers.abort_model(store, abort)
    assert again == first
    events, _ = await store.models.load(subjects.model_events(job.id))
    assert [type(e).__name__ for e in events] == ["ModelCreated", "ModelAborted"]
    with pytest.raises(NotAbortable):
        other = AbortModel(model_id=job.id, principal=ALICE, idempotency_key="a2")
        await handlers.abort_model(store, other)
