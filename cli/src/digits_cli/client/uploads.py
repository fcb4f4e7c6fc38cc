"""Send a local archive to the server with a byte progress bar.

A local folder is packed into a tar first (class folders at its root, as the datasets service
reads an archive). The bytes go up through the gateway's resumable uploads (`/api/v1/uploads`,
chunk by chunk, each chunk retried from the server's offset after a dropped connection) when the
server has them, else inside the dataset form itself as DIGITS's multipart `upload_archive`.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from digits_cli.client.api import UNREACHABLE, Api, CliError, check

ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
CHUNK = 8 * 1024 * 1024
RETRIES = 5
STORE_TIMEOUT = 600.0  # seconds to wait for a complete upload to reach the Object Store


def is_archive(path: Path) -> bool:
    """A file whose name says zip or tar."""
    return path.is_file() and path.name.lower().endswith(ARCHIVES)


@contextlib.contextmanager
def as_archive(path: Path) -> Iterator[Path]:
    """The archive itself, or a folder packed into a temporary tar (deleted afterwards)."""
    if not path.is_dir():
        yield path
        return
    fd, name = tempfile.mkstemp(prefix=f"{path.name}-", suffix=".tar")
    os.close(fd)
    try:
        with tarfile.open(name, "w") as tar:
            for child in sorted(path.iterdir()):
                tar.add(child, arcname=child.name)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def byte_bar(console: Console, quiet: bool) -> Progress:
    """A transfer bar: bytes sent of the total, speed."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        disable=quiet,
    )


class ReadProgress:
    """A file whose reads advance a progress bar (httpx reads multipart files in chunks)."""

    def __init__(self, file: IO[bytes], bar: Progress, task: Any) -> None:
        self.file, self.bar, self.task = file, bar, task

    def read(self, size: int = -1) -> bytes:
        """Read and count."""
        data = self.file.read(size)
        self.bar.advance(self.task, len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Seek the file (httpx measures its length this way)."""
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        """Where the file is."""
        return self.file.tell()


def resumable_available(api: Api) -> bool:
    """Whether the server has `/api/v1/uploads` (it answers 405 or 4xx with JSON, never 404)."""
    try:
        response = api.http.request("OPTIONS", "/api/v1/uploads")
    except httpx.TransportError:
        return False
    return response.status_code != 404


def _send(api: Api, upload_id: str, offset: int, chunk: bytes) -> httpx.Response | None:
    """One PATCH; None when the connection dropped (the server keeps what arrived)."""
    try:
        return api.http.patch(
            f"/api/v1/uploads/{upload_id}",
            content=chunk,
            headers={
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
            # The last chunk's answer waits for the move into the Object Store (seconds a GB).
            timeout=httpx.Timeout(60.0, connect=10.0, read=None),
        )
    except httpx.TransportError:
        return None


def upload(api: Api, archive: Path, purpose: str, console: Console, quiet: bool) -> str:
    """Upload `archive` through `/api/v1/uploads` in chunks, resuming from the server's offset
    after a dropped connection or a 409; the complete upload's id."""
    size = archive.stat().st_size
    created = api.json(
        "POST", "/api/v1/uploads", json={"filename": archive.name, "size": size, "purpose": purpose}
    )
    upload_id, offset, state = str(created["id"]), int(created["offset"]), created.get("state")
    with byte_bar(console, quiet) as bar, archive.open("rb") as file:
        task = bar.add_task(f"upload {archive.name}", total=size, completed=offset)
        failures = 0
        while offset < size:
            file.seek(offset)
            response = _send(api, upload_id, offset, file.read(CHUNK))
            if response is not None and response.is_success:
                body = response.json()
                offset, state, failures = int(body["offset"]), body.get("state"), 0
            elif response is not None and response.status_code != 409:
                check(response)  # a refusal (quota, free space, checksum): its reason, its code
            else:  # dropped, or the server holds another offset: ask it where to go on from
                failures += 1
                if failures > RETRIES:
                    raise CliError(f"upload of {archive.name} failed {RETRIES} times", UNREACHABLE)
                time.sleep(min(2**failures / 4, 5))
                status = api.json("GET", f"/api/v1/uploads/{upload_id}")
                offset, state = int(status["offset"]), status.get("state")
            bar.update(task, completed=offset)
    deadline = time.monotonic() + STORE_TIMEOUT
    while state not in ("complete", "used"):  # the last answer was lost while it was stored
        if time.monotonic() > deadline:
            raise CliError(f"upload {upload_id} was not stored in time", UNREACHABLE)
        time.sleep(1.0)
        state = api.json("GET", f"/api/v1/uploads/{upload_id}").get("state")
    return upload_id


def post_form_with_file(
    api: Api,
    path: str,
    fields: dict[str, str],
    field: str,
    archive: Path,
    console: Console,
    quiet: bool,
) -> Any:
    """POST a multipart form carrying `archive` as `field`, drawing the bytes as they go."""
    size = archive.stat().st_size
    with byte_bar(console, quiet) as bar, archive.open("rb") as file:
        task = bar.add_task(f"upload {archive.name}", total=size)
        files = {field: (archive.name, ReadProgress(file, bar, task), "application/octet-stream")}
        return api.json("POST", path, data=fields, files=files, timeout=None)
