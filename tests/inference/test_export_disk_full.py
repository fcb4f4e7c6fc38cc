"""An export (model download) on a full disk answers 507 naming the file and node, never 500."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.inference import Exported, ExportModel
from digits_proto.runtime import request
from tests.fakes.principals import ALICE
from tests.inference.inprocess import running_inference
from tests.inference.test_gateway_routes import client  # noqa: F401
from tests.inference.test_service import add_dataset, add_model, service  # noqa: F401
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.timeout(120)


async def export(nc) -> tuple[Exported | None, object]:
    """ExportModel for model `m`; (the reply, the refusal)."""
    command = ExportModel(job_id="m", archive_format="tar.gz", principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_INFERENCE_EXPORT, command, timeout=60)
    return (None, rejected) if rejected else (codec.export_reply.decode(body), None)


async def test_export_on_a_full_disk_is_a_507_naming_file_and_node(
    nats_url, js, nc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the data dir (blob cache) and the temporary folder on a full tmpfs, ExportModel
    is refused 507 "Export failed: No space left on device writing <file> on node <host>";
    once space is back the same export succeeds."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: [0.0, 0.5, 1.0]})
    with tmpfs(tmp_path / "small", size="8m") as small:
        monkeypatch.setattr(tempfile, "tempdir", str(small))  # the export's temporary folder
        settings = Settings(nats_url=nats_url, data_dir=str(small / "data"), port=-1)
        async with running_inference(settings):
            filler = fill(small)
            reply, rejected = await export(nc)
            assert reply is None and rejected is not None
            assert rejected.code == 507, rejected  # type: ignore[attr-defined]
            message = rejected.message  # type: ignore[attr-defined]
            assert message.startswith("Export failed: No space left on device writing "), message
            assert f"{small}/" in message and message.endswith(f" on node {socket.gethostname()}")
            filler.unlink()
            reply, rejected = await export(nc)
            assert rejected is None and isinstance(reply, Exported)


async def test_download_route_on_a_full_disk_answers_507_not_500(
    client,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's download route with the temporary folder on a full tmpfs: 507
    InsufficientStorage with the reason; once space is back the archive downloads."""
    with tmpfs(tmp_path / "tmp", size="4m") as small:
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        filler = fill(small)
        r = await client.get("/models/c/download", headers={"Accept": "application/json"})
        assert r.status_code == 507, (r.status_code, r.text)
        error = r.json()["error"]
        assert error["type"] == "InsufficientStorage"
        assert "No space left on device writing " in error["message"], error
        filler.unlink()
        r = await client.get("/models/c/download")
        assert r.status_code == 200, r.text
