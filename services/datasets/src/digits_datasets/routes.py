"""The datasets service's own HTTP routes (read-only): builds in flight, a dataset as folded.

Served by the service's Litestar app (see `digits_proto.runtime.ServiceHost`), public on its
bound address.
"""

from __future__ import annotations

import msgspec
from litestar import get

from digits_datasets import domain
from digits_datasets.inflight import BuildView, InFlight
from digits_proto import subjects
from digits_proto.datasets import DatasetEvent
from digits_proto.runtime import ID_TOKEN, EventStore, NotFound


class DatasetAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """A dataset as the service folds it from its stream, and the sequence it folded to."""

    dataset_id: str
    sequence: int
    state: domain.DatasetState


@get("/builds", tags=["datasets"], sync_to_thread=False)
def list_builds(inflight: InFlight) -> list[BuildView]:
    """Builds running in this process: phase, progress, pool workers, files skipped so far."""
    return inflight.view()


@get("/datasets/{dataset_id:str}", tags=["datasets"])
async def get_dataset(store: EventStore[DatasetEvent], dataset_id: str) -> DatasetAggregate:
    """The dataset aggregate folded from its events (404 for an unknown or purged id)."""
    if not ID_TOKEN.fullmatch(dataset_id):  # ids name subjects, as the bus checks them
        raise NotFound(f"No such id: {dataset_id!r}", field="dataset_id")
    history, seq = await store.load(subjects.dataset_events(dataset_id))
    state = domain.fold(history)
    if state.status is None:
        raise NotFound(f"No such dataset: {dataset_id}", field="dataset_id")
    return DatasetAggregate(dataset_id=dataset_id, sequence=seq, state=state)


ROUTES = (list_builds, get_dataset)
