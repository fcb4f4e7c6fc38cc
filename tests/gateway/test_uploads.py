"""`/api/v1/uploads`: chunked, resumable uploads bounded by a quota and the free-space floor,
used once by a dataset create (against fake backend services on a real nats-server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from nats.js.errors import ObjectNotFoundError

from digits_gateway import uploads as uploads_module
from digits_gateway.app import create_app
from digits_gateway.settings import Settings
from digits_gateway.uploads import Uploads
from digits_proto import codec, subjects
from digits_proto.base import utcnow
from digits_proto.models import CreatePretrainedModel
from digits_proto.replies import Accepted
from digits_proto.runtime import DomainError, read_bytes, serve_endpoints
from tests.gateway.accounts import another_client, bearer, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.helpers import until

CHUNK = {"Content-Type": "application/offset+octet-stream"}


async def new_upload(
    client: httpx.AsyncClient, size: int, purpose: str = "dataset", **extra: object
) -> str:
    r = await client.post(
        "/api/v1/uploads",
        json={"filename": "cats.tar", "size": size, "purpose": purpose, **extra},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["offset"] == 0 and body["state"] == "receiving" and body["size"] == size
    assert r.headers["location"] == f"/api/v1/uploads/{body['id']}"
    return str(body["id"])


async def send(client: httpx.AsyncClient, upload_id: str, offset: int, data: bytes):
    return await client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=data,
        headers={**CHUNK, "Upload-Offset": str(offset)},
    )


async def test_chunks_arrive_in_order_and_a_dataset_uses_the_upload_once(client, js):
    """Two chunks make a complete upload whose bytes are in the uploads bucket; a dataset
    create with its id is accepted, names that blob, and a second use is a 409."""
    data = os.urandom(300_000)
    upload_id = await new_upload(client, len(data), sha256=hashlib.sha256(data).hexdigest())
    first = await send(client, upload_id, 0, data[:100_000])
    assert first.status_code == 200, first.text
    assert first.json()["offset"] == 100_000 and first.headers["upload-offset"] == "100000"
    last = await send(client, upload_id, 100_000, data[100_000:])
    assert last.status_code == 200, last.text
    assert last.json()["state"] == "complete" and last.json()["offset"] == len(data)
    stored = await read_bytes(js, subjects.BUCKET_UPLOADS, f"datasets/{upload_id}/upload_archive")
    assert stored == data

    create = {"name": "from an upload", "method": "upload", "upload_id": upload_id}
    r = await client.post("/api/v1/datasets", json=create)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    status = (await client.get(f"/api/v1/uploads/{upload_id}")).json()
    assert status["state"] == "used" and status["job_id"] == job_id
    again = await client.post("/api/v1/datasets", json={**create, "name": "twice"})
    assert again.status_code == 409, again.text
    assert upload_id in again.json()["error"]["message"]


async def test_a_refused_create_leaves_the_upload_to_be_used_again(client):
    """A create refused for another field (no name) keeps the upload complete; an unknown id
    and an incomplete upload are 400s naming `upload_id`."""
    upload_id = await new_upload(client, 10)
    create = {"name": "", "method": "upload", "upload_id": upload_id}
    early = await client.post("/api/v1/datasets", json={**create, "name": "early"})
    assert early.status_code == 400 and "upload_id" in early.json()["errors"], early.text
    assert "0 of 10 bytes" in early.json()["errors"]["upload_id"][0]
    assert (await send(client, upload_id, 0, b"0123456789")).status_code == 200
    nameless = await client.post("/api/v1/datasets", json=create)
    assert nameless.status_code == 400 and "name" in nameless.json()["errors"], nameless.text
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["state"] == "complete"
    unknown = await client.post("/api/v1/datasets", json={**create, "upload_id": "0" * 32})
    assert unknown.status_code == 400 and "upload_id" in unknown.json()["errors"]
    r = await client.post("/api/v1/datasets", json={**create, "name": "second try"})
    assert r.status_code == 202, r.text


async def test_a_chunk_at_the_wrong_offset_is_409_with_the_offset_to_resume_from(client):
    """Upload-Offset must be the current offset: behind, ahead, or past the end is 409 and the
    answer says where to go on; a malformed one is a 400 naming the header."""
    upload_id = await new_upload(client, 20)
    assert (await send(client, upload_id, 0, b"a" * 8)).status_code == 200
    for wrong in (0, 12):
        r = await send(client, upload_id, wrong, b"b" * 4)
        assert r.status_code == 409, r.text
        assert r.json()["offset"] == 8 and r.headers["upload-offset"] == "8"
    r = await client.patch(
        f"/api/v1/uploads/{upload_id}", content=b"x", headers={**CHUNK, "Upload-Offset": "-1"}
    )
    assert r.status_code == 400 and "Upload-Offset" in r.json()["errors"]
    assert (await send(client, upload_id, 8, b"c" * 12)).json()["state"] == "complete"
    r = await send(client, upload_id, 20, b"d")
    assert r.status_code == 409 and r.json()["offset"] == 20
    head = await client.head(f"/api/v1/uploads/{upload_id}")
    assert head.status_code == 200 and head.headers["upload-offset"] == "20"
    assert head.headers["upload-length"] == "20"


async def test_a_chunk_too_big_or_past_the_size_or_not_octets_is_refused(client, settings):
    """413 past the declared size or the chunk limit, 415 for another content type; nothing
    of the refused chunk is kept."""
    upload_id = await new_upload(client, 10)
    r = await send(client, upload_id, 0, b"x" * 11)
    assert r.status_code == 413 and "past the declared size" in r.json()["error"]["message"]
    r = await client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=b"x",
        headers={"Content-Type": "application/octet-stream", "Upload-Offset": "0"},
    )
    assert r.status_code == 415
    big = await new_upload(client, settings.upload_chunk_bytes * 2)
    r = await send(client, big, 0, b"y" * (settings.upload_chunk_bytes + 1))
    assert r.status_code == 413 and "at most" in r.json()["error"]["message"]
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["offset"] == 0
    assert (await client.get(f"/api/v1/uploads/{big}")).json()["offset"] == 0


async def test_another_users_upload_is_not_found(client):
    """Bob (session or token) neither sees, writes nor deletes Alice's upload: 404 each time."""
    upload_id = await new_upload(client, 5)
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        token = await bearer(client, "bob")
        for headers in ({}, token):
            assert (
                await bob.get(f"/api/v1/uploads/{upload_id}", headers=headers)
            ).status_code == 404
            r = await bob.patch(
                f"/api/v1/uploads/{upload_id}",
                content=b"12345",
                headers={**CHUNK, "Upload-Offset": "0", **headers},
            )
            assert r.status_code == 404
            assert (
                await bob.delete(f"/api/v1/uploads/{upload_id}", headers=headers)
            ).status_code == 404
        r = await bob.post(
            "/api/v1/datasets", json={"name": "x", "method": "upload", "upload_id": upload_id}
        )
        assert r.status_code == 400 and "upload_id" in r.json()["errors"]
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["offset"] == 0


async def test_bad_create_bodies_name_the_field(client):
    """Sizes under 1, paths as file names, unknown purposes and malformed digests are 400s."""
    good = {"filename": "a.zip", "size": 3, "purpose": "dataset"}
    for field, value in (
        ("size", 0),
        ("filename", "../etc/passwd"),
        ("purpose", "model"),
        ("sha256", "abc"),
    ):
        r = await client.post("/api/v1/uploads", json={**good, field: value})
        assert r.status_code == 400 and field in r.json()["errors"], r.text


@pytest.fixture
def limited(nats_url: str, tmp_path: Path) -> Settings:
    """A gateway whose users may hold 1000 bytes of uploads."""
    return make_settings(nats_url, tmp_path, upload_quota_bytes=1000)


async def test_the_quota_and_the_free_space_floor_refuse_with_the_reason(
    limited, backend, nats_url, tmp_path
):
    """Past the user's quota (uploads not yet used count) and under the disk's free-space floor
    the create is 413 and says which; abandoning an upload gives its quota back."""
    async with running(create_app(limited)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")
        kept = await new_upload(client, 600)
        r = await client.post(
            "/api/v1/uploads", json={"filename": "b.tar", "size": 500, "purpose": "dataset"}
        )
        assert r.status_code == 413, r.text
        assert "quota" in r.json()["error"]["message"]
        assert (await client.delete(f"/api/v1/uploads/{kept}")).status_code == 200
        assert (await client.get(f"/api/v1/uploads/{kept}")).status_code == 404
        await new_upload(client, 500)
    free = shutil.disk_usage(tmp_path).free
    floored = make_settings(nats_url, tmp_path / "floored", upload_min_free_bytes=free + 2**30)
    async with running(create_app(floored)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")
        r = await client.post(
            "/api/v1/uploads", json={"filename": "b.tar", "size": 10, "purpose": "dataset"}
        )
        assert r.status_code == 413, r.text
        assert "free-space floor" in r.json()["error"]["message"]


async def test_a_cut_connection_keeps_what_arrived_and_the_upload_resumes(live_url, js):
    """A client that dies mid-chunk (the socket closed after half the body): the bytes that
    arrived are kept, HEAD says how many, and the rest completes the upload byte for byte."""
    data = os.urandom(3 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=live_url) as client:
        await sign_in(client, "alice")
        auth = await bearer(client, "alice")
        r = await client.post(
            "/api/v1/uploads",
            json={"filename": "c.zip", "size": len(data), "purpose": "dataset"},
            headers=auth,
        )
        upload_id = r.json()["id"]
        sent = len(data) // 2
        await cut_mid_chunk(live_url, upload_id, auth["Authorization"], data, sent)

        async def resumed_at() -> int | None:
            head = await client.head(f"/api/v1/uploads/{upload_id}", headers=auth)
            offset = int(head.headers["upload-offset"])
            return offset if offset == sent else None

        offset = await until(resumed_at, timeout=10)
        r = await client.patch(
            f"/api/v1/uploads/{upload_id}",
            content=data[offset:],
            headers={**CHUNK, **auth, "Upload-Offset": str(offset)},
        )
        assert r.status_code == 200 and r.json()["state"] == "complete", r.text
    stored = await read_bytes(js, subjects.BUCKET_UPLOADS, f"datasets/{upload_id}/upload_archive")
    assert stored == data


async def cut_mid_chunk(url: str, upload_id: str, auth: str, data: bytes, sent: int) -> None:
    """A PATCH announcing all of `data` whose connection closes after `sent` bytes."""
    host = urlsplit(url)
    reader, writer = await asyncio.open_connection(host.hostname, host.port)
    head = (
        f"PATCH /api/v1/uploads/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {auth}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data[:sent])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader


async def test_a_digest_mismatch_discards_the_upload(client):
    """Bytes that do not hash to the announced SHA-256: 422, and the upload is gone."""
    upload_id = await new_upload(client, 4, sha256=hashlib.sha256(b"good").hexdigest())
    r = await send(client, upload_id, 0, b"evil")
    assert r.status_code == 422 and "SHA-256" in r.json()["error"]["message"]
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).status_code == 404


async def test_a_restart_resumes_from_the_disk_and_expired_uploads_are_swept(
    settings, js, tmp_path
):
    """A new registry over the same folder knows each upload's offset from its file; once past
    the expiry an upload (and its stored blob) is removed, a used one's blob is not."""
    now = [utcnow()]
    first = Uploads(settings, js, clock=lambda: now[0])
    first.load()
    partial = first.create("alice", "a.tar", 10, "dataset")

    async def body(*chunks: bytes):
        for chunk in chunks:
            yield chunk

    await first.append(partial.id, "alice", 0, 4, body(b"abcd"))
    done = first.create("alice", "b.tar", 3, "dataset")
    await first.append(done.id, "alice", 0, 3, body(b"xyz"))
    used = first.create("alice", "c.tar", 2, "dataset")
    await first.append(used.id, "alice", 0, 2, body(b"ok"))
    async with first.use(used.id, "alice", "dataset") as claim:
        claim.job_id = "20261207-000000-abcd"
    assert done.blob is not None and used.blob is not None

    again = Uploads(settings, js, clock=lambda: now[0])
    again.load()
    assert again.entries[partial.id].offset == 4
    assert again.entries[done.id].state == "complete"
    assert again.entries[used.id].job_id == "20261207-000000-abcd"
    assert await again.sweep() == 0
    now[0] += timedelta(hours=settings.upload_expiry_hours, seconds=1)
    assert await again.sweep() == 3
    assert not any(settings.uploads_dir.iterdir())
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    with pytest.raises(ObjectNotFoundError):
        await store.get_info(done.blob.name)
    assert (await store.get_info(used.blob.name)).size == 2  # the dataset's now


async def test_a_pretrained_archive_comes_from_an_upload_once(client, nc, js):
    """`/pretrained_models/upload_archive` with `upload_id`: the trainer gets the stored blob;
    a refusal (bad archive) leaves the upload usable, an accepted one removes the blob (the
    trainer copied it) and marks it used; a dataset-purpose upload is a 400 naming upload_id."""
    received: list[CreatePretrainedModel] = []

    async def import_pretrained(cmd: CreatePretrainedModel) -> Accepted:
        received.append(cmd)
        if len(received) == 1:
            raise DomainError("Missing Key 'model file' in info.json", field="archive")
        return Accepted(id="20261207-000000-beef", name=cmd.name or "imported")

    service = await serve_endpoints(
        nc,
        subjects.SERVICE_TRAINER,
        codec.model_commands,
        {subjects.CMD_MODELS_PRETRAINED: import_pretrained},
    )
    try:
        data = b"model archive bytes"
        upload_id = await new_upload(client, len(data), purpose="pretrained")
        assert (await send(client, upload_id, 0, data)).json()["state"] == "complete"
        form = {"upload_id": upload_id, "job_name": "imported"}
        r = await client.post("/pretrained_models/upload_archive.json", data=form)
        assert r.status_code == 400 and "info.json" in r.json()["status"], r.text
        assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["state"] == "complete"
        r = await client.post("/pretrained_models/upload_archive.json", data=form)
        assert r.status_code == 200 and r.json()["id"] == "20261207-000000-beef", r.text
        ref = received[-1].archive
        assert ref is not None and ref.name == f"pretrained/{upload_id}/archive"
        assert received[0].archive == ref and ref.size == len(data)
        status = (await client.get(f"/api/v1/uploads/{upload_id}")).json()
        assert status["state"] == "used" and status["job_id"] == "20261207-000000-beef"
        store = await js.object_store(subjects.BUCKET_UPLOADS)
        with pytest.raises(ObjectNotFoundError):
            await store.get_info(ref.name)
        again = await client.post("/pretrained_models/upload_archive.json", data=form)
        assert again.status_code == 409, again.text

        other = await new_upload(client, 1, purpose="dataset")
        await send(client, other, 0, b"x")
        r = await client.post("/pretrained_models/upload_archive.json", data={"upload_id": other})
        assert r.status_code == 400 and "upload_id" in r.json()["errors"], r.text
    finally:
        await service.stop()


async def test_a_failed_move_into_the_object_store_is_retried_by_a_patch_at_the_end(
    client, monkeypatch
):
    """The last chunk's move fails (503, state `storing`, the bytes kept); a PATCH at the full
    size with no body moves them and answers `complete`."""
    real_put = uploads_module.put_reader
    calls = []

    async def flaky_put(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 1:
            raise ConnectionError("NATS went away")
        return await real_put(*args, **kwargs)

    monkeypatch.setattr(uploads_module, "put_reader", flaky_put)
    upload_id = await new_upload(client, 6)
    r = await send(client, upload_id, 0, b"abcdef")
    assert r.status_code == 503 and "PATCH again" in r.json()["error"]["message"], r.text
    status = (await client.get(f"/api/v1/uploads/{upload_id}")).json()
    assert status["state"] == "storing" and status["offset"] == 6
    r = await send(client, upload_id, 6, b"")
    assert r.status_code == 200 and r.json()["state"] == "complete", r.text
    assert len(calls) == 2


async def test_the_form_shown_again_after_an_error_keeps_the_upload(client):
    """The dataset form sent with an upload but no name comes back with the error and the
    upload's id in a hidden field, so the archive is not sent twice."""
    upload_id = await new_upload(client, 3)
    await send(client, upload_id, 0, b"abc")
    r = await client.post(
        "/datasets/images/classification",
        data={"method": "upload", "upload_id": upload_id, "dataset_name": ""},
        headers={"Accept": "text/html"},
    )
    assert r.status_code in (200, 400), r.text
    assert f'name="upload_id" value="{upload_id}"' in r.text
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["state"] == "complete"


async def test_two_chunks_sent_at_once_for_one_offset_write_it_once(client):
    """Two PATCHes racing for the same offset: one is written, the other is a 409 naming the
    offset after it, and the file holds the bytes once."""
    upload_id = await new_upload(client, 8)
    first, second = await asyncio.gather(
        send(client, upload_id, 0, b"aaaa"), send(client, upload_id, 0, b"bbbb")
    )
    assert sorted((first.status_code, second.status_code)) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["offset"] == 4
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).json()["offset"] == 4
