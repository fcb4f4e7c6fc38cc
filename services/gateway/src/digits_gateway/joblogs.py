"""A model's raw training log: live from the trainer running it, else the copy the trainer put
in the Object Store (at each snapshot, every half minute, and at the end of each attempt)."""

from __future__ import annotations

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError

from digits_gateway.deps import Gateway
from digits_proto import subjects
from digits_proto.runtime import read_bytes

LIVE_TIMEOUT = 2.0  # seconds the trainer has to answer a live read (no trainer: at once)


def log_blob(model_id: str) -> str:
    """Where the trainer puts a job's `train.log` (its attempts one after the other)."""
    return f"{model_id}/train.log"


async def model_log(gw: Gateway, model_id: str, running: bool) -> bytes | None:
    """The log as it is now; None if the job has not started training yet."""
    if running:
        try:
            msg = await gw.nc.request(subjects.model_log(model_id), b"", timeout=LIVE_TIMEOUT)
        except (NoRespondersError, NatsTimeout):
            msg = None  # no trainer runs it right now (waiting, or between attempts)
        if msg is not None and msg.data:
            return msg.data
    try:
        return await read_bytes(gw.js, subjects.BUCKET_MODELS, log_blob(model_id))
    except NotFoundError:
        return None
