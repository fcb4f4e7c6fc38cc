"""A dataset archive far past the 64 MB request cap, through the launched system: sent to
`/api/v1/uploads` in 16 MiB chunks, cut mid-chunk half-way, resumed from HEAD's offset, then
used by a dataset create that builds.

The archive is a tar of small class folders plus one large member of random bytes that the
builder ignores (not an image), so its size costs disk and transfer time, not build time. 2 GiB
by default (about a minute or two on a laptop: the bytes are written five times — the archive,
the gateway's spool, the Object Store, the builder's copy and its unpacking); set
DIGITS_E2E_UPLOAD_BYTES for a smaller run while iterating.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tarfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.browser import browser_type_launch_args as browser_type_launch_args  # fixture
from tests.e2e.browser import console_errors, shot
from tests.e2e.conftest import USER_PASSWORD, System, signed_in, wait_until

pytestmark = pytest.mark.e2e

SIZE = int(os.environ.get("DIGITS_E2E_UPLOAD_BYTES", str(2 * 1024**3)))
CHUNK = 16 * 1024 * 1024  # the gateway's default DIGITS_GATEWAY_UPLOAD_CHUNK_BYTES
OCTETS = "application/offset+octet-stream"


class _Noise:
    """`n` bytes of a repeated random block, read like a file (the tar's padding member)."""

    def __init__(self, n: int):
        self.left = n
        self.block = os.urandom(CHUNK)

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        reps = -(-size // len(self.block))
        return (self.block * reps)[:size] if reps > 1 else self.block[:size]


def write_archive(path: Path, size: int) -> None:
    """Two classes of ten 28×28 gray PNGs and a padding member, `size` bytes in all."""
    rng = np.random.default_rng(3)
    with tarfile.open(path, "w") as tar:
        for label, level in (("dark", 40), ("bright", 215)):
            for i in range(10):
                image = path.parent / f"{label}_{i}.png"
                pixels = np.clip(rng.normal(level, 10, (28, 28)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(image)
                tar.add(image, arcname=f"{label}/{label}_{i}.png")
        used = tar.offset + 512 + 1024  # the padding's header and the end-of-archive blocks
        info = tarfile.TarInfo("padding.bin")
        info.size = max(0, (size - used) // 512 * 512 - 512)
        tar.addfile(info, _Noise(info.size))  # type: ignore[arg-type]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cut_mid_chunk(url: str, upload_id: str, cookies: str, csrf: str, data: bytes, offset: int):
    """A PATCH announcing a whole chunk whose connection closes half-way through its body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (
            f"PATCH /api/v1/uploads/{upload_id} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Cookie: {cookies}\r\nX-CSRFToken: {csrf}\r\nContent-Type: {OCTETS}\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: len(data) // 2])


def send_from(client: httpx.Client, upload_id: str, archive: Path, offset: int, stop: int) -> int:
    """Chunks from `offset` until `stop` (or the end), going on from the offset a 409 names
    (as a client does after a cut: the server may still be writing what came); the offset
    reached."""
    with open(archive, "rb") as f:
        while offset < stop:
            f.seek(offset)
            r = client.patch(
                f"/api/v1/uploads/{upload_id}",
                content=f.read(CHUNK),
                headers={"Content-Type": OCTETS, "Upload-Offset": str(offset)},
                timeout=httpx.Timeout(60, read=600),  # the last one moves it into the store
            )
            assert r.status_code in (200, 409), r.text
            offset = r.json()["offset"]
    return offset


def test_a_2gb_archive_uploads_survives_a_cut_and_builds(digits_system: System, tmp_path):
    """The archive goes up in chunks; the connection dies mid-chunk half-way; HEAD gives the
    offset the bytes reached, the rest follows, and the dataset built from it is Done with the
    twenty images (the padding ignored). A second dataset from the same upload is a 409."""
    archive = tmp_path / "big.tar"
    write_archive(archive, SIZE)
    size = archive.stat().st_size
    with signed_in(digits_system, "uploader", timeout=120) as client:
        started = time.monotonic()
        r = client.post(
            "/api/v1/uploads",
            json={
                "filename": "big.tar",
                "size": size,
                "purpose": "dataset",
                "sha256": sha256_of(archive),
            },
        )
        assert r.status_code == 201, r.text
        upload_id = r.json()["id"]
        half = send_from(client, upload_id, archive, 0, size // 2)
        with open(archive, "rb") as f:
            f.seek(half)
            chunk = f.read(CHUNK)
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        cut_mid_chunk(
            digits_system.url, upload_id, cookies, client.cookies["csrftoken"], chunk, half
        )
        head = client.head(f"/api/v1/uploads/{upload_id}")
        resumed = int(head.headers["upload-offset"])
        assert half <= resumed <= half + len(chunk) // 2
        assert send_from(client, upload_id, archive, resumed, size) == size
        status = client.get(f"/api/v1/uploads/{upload_id}").json()
        assert status["state"] == "complete", status
        uploaded = time.monotonic() - started

        create = {"name": "big upload", "method": "upload", "upload_id": upload_id}
        r = client.post(
            "/api/v1/datasets", json={**create, "resize_width": 28, "resize_height": 28}
        )
        assert r.status_code == 202, r.text
        dataset_id = r.json()["id"]
        wait_until(
            lambda: (
                client.get(f"/datasets/{dataset_id}/status").json()["status"] in ("Done", "Error")
            ),
            timeout=600,
            what="the dataset from the upload",
        )
        built = client.get(f"/api/v1/datasets/{dataset_id}").json()
        assert built["status"] == "Done", built
        entries = {t["split"]: t["entries"] for t in built["CreateDbTasks"]}
        assert sum(n or 0 for n in entries.values()) == 20, entries
        again = client.post("/api/v1/datasets", json={**create, "name": "twice"})
        assert again.status_code == 409, again.text
    print(
        f"{size / 2**20:.0f} MiB uploaded in {uploaded:.1f} s, built by {time.monotonic() - started:.1f} s"
    )


BROWSER_ARCHIVE = 80 * 1024 * 1024  # past the 64 MB cap a multipart form is held to


@pytest.mark.browser
def test_the_dataset_form_uploads_in_chunks_with_progress_and_cancel(
    page: Page, digits_system: System, tmp_path
) -> None:
    """In Chromium with a slowed upload link: the form's archive goes up in chunks under a
    progress bar (390 px wide: cancelled, the form usable again), then (1280 px) completes and
    the form is sent with the upload's id; the dataset page follows the build to Done."""
    archive = tmp_path / "classes.tar"
    write_archive(archive, BROWSER_ARCHIVE)
    errors = console_errors(page)
    with signed_in(digits_system, "browser-uploader"):
        pass
    page.goto(digits_system.url + "/login")
    page.get_by_label("Username").fill("browser-uploader")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(digits_system.url + "/")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8 << 20},
    )

    def fill_form(name: str) -> None:
        page.goto(digits_system.url + "/datasets/images/classification/new")
        page.get_by_label("Grayscale (1 channel)").check()
        page.get_by_label("Width").fill("28")
        page.get_by_label("Height").fill("28")
        page.get_by_label("Upload a zip or tar of class folders").check()
        page.get_by_label("Archive of class folders").set_input_files(archive)
        page.get_by_label("Dataset name").fill(name)
        page.get_by_role("button", name="Create").click()

    progress = page.locator(".upload-progress")
    page.set_viewport_size({"width": 390, "height": 844})
    fill_form("cancelled upload")
    expect(progress.locator(".progress-text")).to_contain_text(re.compile(r"[1-9]\d* MB of 80 MB"))
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")  # no side scroll
    shot(page, "upload-390-progress")
    page.get_by_role("button", name="Cancel upload").click()
    expect(progress.get_by_role("status")).to_have_text("Upload cancelled.")
    expect(page.get_by_role("button", name="Create")).to_be_enabled()

    page.set_viewport_size({"width": 1280, "height": 900})
    fill_form("browser upload")
    expect(progress.locator(".progress-text")).to_contain_text(re.compile(r"[1-9]\d* MB of 80 MB"))
    shot(page, "upload-1280-progress")
    expect(page).to_have_url(re.compile(r"/datasets/\d{8}-\d{6}-[0-9a-z]+$"), timeout=120_000)
    expect(page.locator("#job-status")).to_have_text(re.compile(r"Done"), timeout=180_000)
    shot(page, "upload-1280-dataset-done")

    # The pretrained form sends its archive the same way; the trainer refuses one with no
    # info.json, and the form shown again keeps the upload for the next try.
    not_a_model = tmp_path / "not-a-model.tar"
    with tarfile.open(not_a_model, "w") as tar:
        tar.add(tmp_path / "dark_0.png", arcname="dark_0.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(digits_system.url + "/pretrained_models/new")
    page.get_by_label("Archive", exact=True).set_input_files(not_a_model)
    page.get_by_role("button", name="Upload archive").click()
    expect(page.locator("#archive-form .field-errors")).to_contain_text("Missing info.json")
    expect(page.locator("#archive-form input[name=upload_id]")).to_have_count(1)
    shot(page, "upload-390-pretrained-refused")
    errors[:] = [e for e in errors if "status of 400" not in e]  # the refusal's own answer
    assert errors == [], errors
