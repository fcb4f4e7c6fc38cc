"""The shared plumbing against a real nats-server: event store, micro endpoints, blobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.js.errors import ObjectNotFoundError

from digits_proto import codec, subjects
from digits_proto.datasets import DatasetCreated, DatasetDeleted, DatasetSpec
from digits_proto.replies import Accepted
from digits_proto.runtime import (
    ConcurrencyError,
    EventStore,
    NotFound,
    delete_prefix,
    fetch,
    put_bytes,
    read_bytes,
    request,
    serve_endpoints,
)


async def test_event_store_folds_one_aggregate_and_rejects_stale_appends(js) -> None:
    """Events come back per aggregate in order, and an append at a stale sequence fails."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    a, b = subjects.dataset_events("a"), subjects.dataset_events("b")
    created = DatasetCreated(dataset_id="a", name="n", spec=DatasetSpec(folder_train="/x"))
    seq = await store.append(a, [created], 0)
    await store.append(b, [DatasetDeleted(dataset_id="b")], 0)
    seq2 = await store.append(a, [DatasetDeleted(dataset_id="a")], seq)
    events, last = await store.load(a)
    assert [type(e) for e in events] == [DatasetCreated, DatasetDeleted]
    assert last == seq2
    with pytest.raises(ConcurrencyError):
        await store.append(a, [DatasetDeleted(dataset_id="a")], seq)


async def test_micro_endpoint_replies_and_maps_domain_errors(nc) -> None:
    """A handler's reply reaches the caller; a domain error arrives as a Rejected with its code."""

    async def handle(cmd):
        if cmd.dataset_id == "missing":
            raise NotFound("no such dataset", field="dataset_id")
        return Accepted(id=cmd.dataset_id)

    from digits_proto.datasets import DeleteDataset

    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {"digits.cmd.t.del": handle})
    body, rejected = await request(nc, "digits.cmd.t.del", DeleteDataset(dataset_id="x"))
    assert rejected is None and codec.command_reply.decode(body) == Accepted(id="x")
    _, rejected = await request(nc, "digits.cmd.t.del", DeleteDataset(dataset_id="missing"))
    assert rejected is not None and rejected.code == 404 and rejected.field == "dataset_id"


async def test_deleting_a_prefix_skips_objects_gone_since_the_listing(js, monkeypatch) -> None:
    """An object listed but deleted by someone else before its turn is not an error."""
    await put_bytes(js, subjects.BUCKET_UPLOADS, "job/a.bin", b"a")
    await put_bytes(js, subjects.BUCKET_UPLOADS, "job/b.bin", b"b")
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    listed = await store.list()
    await store.delete("job/a.bin")  # after the listing, as a concurrent cleanup would
    monkeypatch.setattr(type(store), "list", lambda self, **_: _returning(listed))
    assert await delete_prefix(js, subjects.BUCKET_UPLOADS, "job/") == 1
    monkeypatch.undo()
    with pytest.raises(ObjectNotFoundError):
        await store.get_info("job/b.bin")


async def _returning(value):
    return value


async def test_blob_round_trip_through_object_store_and_cache(js, tmp_path: Path) -> None:
    """A multi-chunk blob comes back byte for byte and is then served from the local cache."""
    data = bytes(range(256)) * 5000
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "x/blob.bin", data)
    path = await fetch(js, ref, tmp_path)
    assert path.read_bytes() == data
    assert await fetch(js, ref, tmp_path) == path


async def test_reading_an_object_rewritten_meanwhile_returns_the_new_one(js, monkeypatch) -> None:
    """The reader saw the old meta, then the writer replaced the object and purged the old
    chunks: nats-py's `get` would wait forever; read_bytes starts over on the new object."""
    await put_bytes(js, subjects.BUCKET_UPLOADS, "run/status.json", b"old" * 1000)
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    stale = await store.get_info("run/status.json")
    await put_bytes(js, subjects.BUCKET_UPLOADS, "run/status.json", b"new" * 1000)
    real = type(store).get_info
    calls = []

    async def stale_once(self, name, *args, **kwargs):
        calls.append(name)
        return stale if len(calls) == 1 else await real(self, name, *args, **kwargs)

    monkeypatch.setattr(type(store), "get_info", stale_once)
    data = await asyncio.wait_for(read_bytes(js, subjects.BUCKET_UPLOADS, "run/status.json"), 10)
    assert data == b"new" * 1000 and len(calls) >= 3


async def test_a_status_read_while_it_is_rewritten_never_hangs(js) -> None:
    """A job status rewritten in a loop while it is read: every read ends with a whole version."""
    versions = [bytes([i]) * 2000 for i in range(40)]
    await put_bytes(js, subjects.BUCKET_UPLOADS, "run/s.json", versions[0])

    async def rewrite() -> None:
        for v in versions[1:]:
            await put_bytes(js, subjects.BUCKET_UPLOADS, "run/s.json", v)

    async def read() -> list[bytes]:
        return [await read_bytes(js, subjects.BUCKET_UPLOADS, "run/s.json") for _ in range(40)]

    _, seen = await asyncio.wait_for(asyncio.gather(rewrite(), read()), 60)
    assert all(s in versions for s in seen)
