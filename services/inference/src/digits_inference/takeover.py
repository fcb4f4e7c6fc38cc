"""Checkpoints of a queued classify-many job, so that the process taking it over (its worker
was killed) continues where the last checkpoint left it: no line classified twice, none lost.

A checkpoint is a `Part` blob beside the job's status (`classify-many/<run_id>/part-NNNNNN.json`,
swept with the job's other blobs): the results of one range `[start, end)` of the list's
readable entries, the lines refused in it, and the running counters as they stand at `end`.
The parts chain (each starts where the previous ended, for the same list); a reader stops at
the first missing, unreadable or unchained part, so a part half-written by a dying process, or
one written by a worker that outlived its ticket, never mixes into the result. Classifying an
entry gives the same answer in any process, so chained parts from two writers still add up to
exactly the list.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectDeletedError, ObjectNotFoundError

from digits_inference.many import Entry, Tally
from digits_proto import subjects
from digits_proto.inference import ImageResult, LineError
from digits_proto.runtime import put_bytes, read_bytes

log = structlog.get_logger(__name__)

MISSING = (ObjectNotFoundError, ObjectDeletedError, NotFoundError)


class Part(msgspec.Struct, frozen=True, kw_only=True):
    """One checkpoint (a blob private to the inference service)."""

    list_digest: str  # of the readable entries: a part of another list never applies
    start: int  # readable entries [start, end) are this part's results and refusals
    end: int
    results: list[ImageResult]
    errors: list[LineError]  # the lines refused in this range (the first part: the list's too)
    hits1: int
    hits5: int
    truths: int
    confusion: list[list[int]]
    heaps: list[list[tuple[float, int, str, str]]]


def part_name(run_id: str, seq: int) -> str:
    return f"classify-many/{run_id}/part-{seq:06d}.json"


def list_digest(readable: Sequence[Entry]) -> str:
    """What identifies the list a checkpoint belongs to: its readable lines, in order."""
    digest = hashlib.sha256()
    for entry in readable:
        digest.update(f"{entry.line}\0{entry.path}\0{entry.label}\n".encode())
    return digest.hexdigest()


class Checkpoints:
    """The checkpoints of one job run by this process: `resume` once, then `save` as it goes."""

    def __init__(self, js: JetStreamContext, run_id: str, every: float = 2.0) -> None:
        self.js = js
        self.run_id = run_id
        self.every = every  # seconds between parts: a takeover redoes at most this much work
        self.digest = ""
        self.seq = 0  # the next part's number
        self.end = 0  # readable entries [0, end) are in the tally
        self._results = 0  # tally lengths at the last part: the next part holds what follows
        self._errors = 0
        self._saved_at = time.monotonic()

    async def resume(self, tally: Tally, readable: Sequence[Entry]) -> int:
        """Restore `tally` from the job's chained parts; the first readable entry to classify."""
        self.digest = list_digest(readable)
        while True:
            name = part_name(self.run_id, self.seq)
            try:
                part = msgspec.json.decode(
                    await read_bytes(self.js, subjects.BUCKET_UPLOADS, name), type=Part
                )
            except MISSING:
                break
            except msgspec.DecodeError:
                log.warning("checkpoint_unreadable", run_id=self.run_id, part=self.seq)
                break
            if (
                part.list_digest != self.digest
                or part.start != self.end
                or part.end > len(readable)
            ):
                log.warning("checkpoint_unchained", run_id=self.run_id, part=self.seq)
                break
            tally.results.extend(part.results)
            for error in part.errors:
                tally.refuse(error)
            tally.hits1, tally.hits5, tally.truths = part.hits1, part.hits5, part.truths
            if tally.confusion is not None and part.confusion:
                tally.confusion[...] = part.confusion
            tally.heaps = [list(heap) for heap in part.heaps] or tally.heaps
            self.end, self.seq = part.end, self.seq + 1
        self._results, self._errors = len(tally.results), len(tally.errors)
        if self.seq:
            log.info("classify_many_resumed", run_id=self.run_id, parts=self.seq, at=self.end)
        return self.end

    async def save(self, tally: Tally, end: int, now: bool = False) -> None:
        """Write the part for readable entries [self.end, end) (the tally holds exactly
        [0, end)) if `every` seconds have passed since the last one (or `now`)."""
        if end <= self.end or not (now or time.monotonic() - self._saved_at >= self.every):
            return
        part = Part(
            list_digest=self.digest,
            start=self.end,
            end=end,
            results=tally.results[self._results :],
            errors=tally.errors[self._errors :],
            hits1=tally.hits1,
            hits5=tally.hits5,
            truths=tally.truths,
            confusion=tally.confusion.tolist() if tally.confusion is not None else [],
            heaps=tally.heaps,
        )
        name = part_name(self.run_id, self.seq)
        self._saved_at = time.monotonic()
        try:
            await put_bytes(self.js, subjects.BUCKET_UPLOADS, name, msgspec.json.encode(part))
        except Exception:  # the job goes on; a takeover would redo a bit more
            log.warning("checkpoint_not_written", run_id=self.run_id, part=self.seq, exc_info=True)
            return
        self.end, self.seq = end, self.seq + 1
        self._results, self._errors = len(tally.results), len(tally.errors)

    async def clear(self) -> None:
        """Delete the parts once the job has ended (best effort: the sweeper gets leftovers)."""
        store = await self.js.object_store(subjects.BUCKET_UPLOADS)
        seq = 0
        while True:
            try:
                await store.delete(part_name(self.run_id, seq))
            except MISSING:
                if seq >= self.seq:
                    return
            except Exception:  # an outage: the sweeper removes them later
                log.warning("checkpoints_not_deleted", run_id=self.run_id, exc_info=True)
                return
            seq += 1


class InOrder:
    """Lets a decoded chunk's refusals into the tally once every chunk before it is in.

    A chunk's refusals are known when it is decoded, its results a batch later, when the
    network is done with it: held back until then, the tally always holds exactly a prefix of
    the list (`end` entries of the readable ones), which is what a checkpoint records.
    """

    def __init__(self, tally: Tally, ends: Sequence[int], first: int) -> None:
        self.tally = tally
        self.ends = ends  # chunk k covers the readable entries up to ends[k]
        self.first = first
        self.held: dict[int, list[tuple[Entry, str]]] = {}
        self.settled: set[int] = set()  # chunks whose results are in
        self.prefix = 0  # chunks [0, prefix) are in the tally, refusals too

    @property
    def end(self) -> int:
        return self.ends[self.prefix - 1] if self.prefix else self.first

    def hold(self, chunk: int, refusals: list[tuple[Entry, str]]) -> None:
        self.held[chunk] = refusals

    def settle(self, chunk: int) -> None:
        """Chunk `chunk`'s results are in the tally (or it has none)."""
        self.settled.add(chunk)
        while self.prefix in self.settled:
            for entry, error in self.held.pop(self.prefix, []):
                self.tally.fail(entry, error)
            self.prefix += 1
