"""Model and dataset state for inference, folded incrementally from their event subjects."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from digits_inference.domain import DatasetView, ModelView, evolve_dataset, evolve_model
from digits_proto import codec, subjects, versions

log = structlog.get_logger(__name__)

S = TypeVar("S")


class Aggregates(Generic[S]):
    """Folded aggregates of one stream, kept in a bounded LRU and brought up to date per read.

    A model's subject gathers thousands of progress events over a long training run: refolding
    them on every request would cost one round trip each, so each state remembers the sequence
    it has seen and only newer events are read. One `get_last_msg` per read tells whether
    anything changed, and notices a purged or rewritten subject (then the fold starts over).
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        decoder: msgspec.json.Decoder[Any],
        initial: Callable[[], S],
        evolve: Callable[[S, object], S],
        max_items: int = 1024,
    ):
        self.js = js
        self.stream = stream
        self.decoder = decoder
        self.initial = initial
        self.evolve = evolve
        self.max_items = max_items
        self._states: OrderedDict[str, tuple[S, int]] = OrderedDict()

    async def get(self, subject: str) -> S:
        """The current state of the aggregate on `subject` (the initial state if it has none)."""
        state, seen = self._states.get(subject, (self.initial(), 0))
        try:
            last = (await self.js.get_last_msg(self.stream, subject)).seq or 0
        except NotFoundError:
            self._states.pop(subject, None)
            return self.initial()
        if last < seen:  # the subject was purged and written again: fold from scratch
            state, seen = self.initial(), 0
        while seen < last:
            try:
                msg = await self.js.get_msg(self.stream, seq=seen + 1, subject=subject, next=True)
            except NotFoundError:
                break
            seen = msg.seq or last
            try:
                event = versions.decode_event(self.decoder, msg.data or b"", msg.headers)
            except msgspec.DecodeError:
                # An event type newer than this service: nothing inference needs, skip it.
                log.warning("event_skipped", subject=subject, seq=seen)
                continue
            state = self.evolve(state, event)
        self._states[subject] = (state, seen)
        self._states.move_to_end(subject)
        while len(self._states) > self.max_items:
            self._states.popitem(last=False)
        return state


class Registry:
    """What inference knows about models and datasets, read from their event streams."""

    def __init__(self, js: JetStreamContext):
        self.models: Aggregates[ModelView] = Aggregates(
            js, subjects.STREAM_MODELS, codec.model_events, ModelView, evolve_model
        )
        self.datasets: Aggregates[DatasetView] = Aggregates(
            js, subjects.STREAM_DATASETS, codec.dataset_events, DatasetView, evolve_dataset
        )

    async def model(self, model_id: str) -> ModelView:
        """The model job `model_id` (not `exists` when unknown)."""
        return await self.models.get(subjects.model_events(model_id))

    async def dataset(self, dataset_id: str) -> DatasetView:
        """The dataset `dataset_id` (not `exists` when unknown)."""
        return await self.datasets.get(subjects.dataset_events(dataset_id))
