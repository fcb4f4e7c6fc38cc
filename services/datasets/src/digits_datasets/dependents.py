"""Which live models use which dataset: an in-memory index replayed from the models stream."""

from __future__ import annotations

import asyncio
import time

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from digits_proto import codec, subjects, versions
from digits_proto.models import ModelCreated, ModelDeleted, ModelPurged
from digits_proto.runtime import DomainError

log = structlog.get_logger(__name__)


class ModelIndex:
    """Folds ModelCreated/ModelDeleted into {model_id: dataset_id}; rebuilt on every start."""

    def __init__(self) -> None:
        self.dataset_of: dict[str, str] = {}
        self.seq = 0  # stream sequence of the last model event applied

    def apply(self, event: object, seq: int) -> None:
        """Fold one model event (any other type only moves the sequence)."""
        match event:
            case ModelCreated():
                self.dataset_of[event.model_id] = event.dataset_id
            case ModelDeleted() | ModelPurged():  # a purge may take the deletion before we read it
                self.dataset_of.pop(event.model_id, None)
        self.seq = max(self.seq, seq)

    def models_using(self, dataset_id: str) -> list[str]:
        """Ids of the non-deleted models built on `dataset_id`, sorted."""
        return sorted(m for m, d in self.dataset_of.items() if d == dataset_id)

    async def follow(self, js: JetStreamContext) -> None:
        """Subscribe from the start of the models stream (an ordered consumer survives reconnects)."""

        async def on_msg(msg: Msg) -> None:
            try:
                event = versions.decode_event(codec.model_events, msg.data, msg.headers)
            except msgspec.DecodeError:  # a newer event type: not ours to understand
                event = None
            self.apply(event, msg.metadata.sequence.stream)

        await js.subscribe(
            subjects.MODEL_EVENTS,
            stream=subjects.STREAM_MODELS,
            cb=on_msg,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )

    async def caught_up(self, js: JetStreamContext, timeout: float = 5.0) -> None:
        """Wait until every model event stored so far has been applied (read-your-writes)."""
        info = await js.stream_info(subjects.STREAM_MODELS)
        target = info.state.last_seq
        deadline = time.monotonic() + timeout
        while self.seq < target:
            if time.monotonic() > deadline:
                log.warning("model_index_behind", seq=self.seq, target=target)
                raise DomainError("The models index is catching up, try again", code=503)
            await asyncio.sleep(0.01)
