"""The trainer's own HTTP routes: the jobs on this node, a model as folded, and the drain.

Read-only views are public on the service's bound address; draining is an operation, behind the
operator token. Served by the service's Litestar app (see `digits_proto.runtime.ServiceHost`).
"""

from __future__ import annotations

import msgspec
from litestar import delete, get, post

from digits_proto.runtime import ID_TOKEN, OPS_SECURITY, NotFound, ops_guard
from digits_trainer.domain import ModelState
from digits_trainer.node import DrainStatus, Node, RunningJob
from digits_trainer.store import Store


class ModelAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """A model job as the trainer folds it from its stream, and the sequence it folded to."""

    model_id: str
    sequence: int
    state: ModelState


def checked(model_id: str) -> str:
    """`model_id` if it can name an aggregate (as the bus checks ids), else a 404."""
    if not ID_TOKEN.fullmatch(model_id):
        raise NotFound(f"No such id: {model_id!r}", field="model_id")
    return model_id


@get("/jobs", tags=["trainer"], sync_to_thread=False)
def list_jobs(node: Node) -> list[RunningJob]:
    """Jobs training on this node now: child pid, epoch, img/s, devices, lease, saved points."""
    return node.view()


@get("/jobs/{model_id:str}", tags=["trainer"], sync_to_thread=False)
def get_job(node: Node, model_id: str) -> RunningJob:
    """One job training on this node (404 when it does not run here)."""
    job = node.job(checked(model_id))
    if job is None:
        raise NotFound(f"Job {model_id} does not run on this node", field="model_id")
    return job


@get("/models/{model_id:str}", tags=["trainer"])
async def get_model(store: Store, model_id: str) -> ModelAggregate:
    """The model aggregate folded from its events (404 for an unknown or purged id)."""
    state, seq = await store.model(checked(model_id))
    if state is None:
        raise NotFound(f"No such model: {model_id}", field="model_id")
    return ModelAggregate(model_id=model_id, sequence=seq, state=state)


@get("/drain", tags=["trainer"], sync_to_thread=False)
def drain_status(node: Node) -> DrainStatus:
    """Whether this node drains, and what its last drain handed back."""
    return node.status()


@post("/drain", tags=["trainer"], guards=[ops_guard], security=OPS_SECURITY, status_code=200)
async def drain(node: Node) -> DrainStatus:
    """Take no more tickets; snapshot each running job at a resume point and hand it back, so
    another node continues it. Answers once they are handed back; again: the same answer."""
    return await node.drain()


@delete("/drain", tags=["trainer"], guards=[ops_guard], security=OPS_SECURITY, status_code=200)
async def undrain(node: Node) -> DrainStatus:
    """Take tickets again."""
    return await node.undrain()


ROUTES = (list_jobs, get_job, get_model, drain_status, drain, undrain)
