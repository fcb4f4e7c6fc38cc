"""Model download: archive formats, info.json, the standalone classify.py, ONNX, refusals."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digits_proto import subjects
from digits_proto.runtime import put_bytes
from tests.inference.test_gateway_routes import client, post  # noqa: F401
from tests.inference.test_service import png, service  # noqa: F401

CLASSIFY_JSON = "/models/images/classification/classify_one.json"


def members(data: bytes, fmt: str) -> dict[str, bytes]:
    """Every file of an archive by name."""
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {n: zf.read(n) for n in zf.namelist()}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def unpack(files: dict[str, bytes], folder: Path) -> Path:
    """Write the archive's files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


async def test_download_holds_network_labels_mean_info_and_script(client, js) -> None:  # noqa: F811
    """tar.gz (the default): symbol, params, labels, mean .npy/.jpg, info.json with DIGITS keys."""
    mean = io.BytesIO()
    np.save(mean, np.full((3, 16, 16), 100, np.float32))
    await put_bytes(js, subjects.BUCKET_DATASETS, "m", mean.getvalue())
    await put_bytes(js, subjects.BUCKET_DATASETS, "mj", png(100))
    r = await client.get("/models/c/download")
    assert r.status_code == 200, r.text
    assert 'filename="c_epoch_1.tar.gz"' in r.headers["content-disposition"]
    files = members(r.content, "tar.gz")
    assert set(files) == {
        "snapshot_epoch_1-symbol.json",
        "snapshot_epoch_1.params",
        "labels.txt",
        "mean.npy",
        "mean.jpg",
        "info.json",
        "classify.py",
    }
    assert files["labels.txt"].decode().splitlines() == ["dark", "mid", "bright"]
    info = json.loads(files["info.json"])
    for key in (
        "id",
        "name",
        "status",
        "dataset_id",
        "job id",
        "creation time",
        "username",
        "image dimensions",
        "mean file",
        "snapshot file",
        "framework",
        "labels file",
        "image resize mode",
    ):
        assert key in info, key
    assert info["framework"] == "mxnet" and info["image dimensions"] == [16, 16, 3]
    assert info["input shape"] == [3, 16, 16] and info["image resize mode"] == "squash"
    assert np.load(io.BytesIO(files["mean.npy"])).shape == (3, 16, 16)


async def test_every_digits_archive_type_opens(client) -> None:  # noqa: F811
    """download.<ext> for each DIGITS extension is a readable archive of that type."""
    for fmt in ("tar", "tgz", "tar.bz2", "zip"):
        r = await client.get(f"/models/m/download.{fmt}", params={"epoch": "1"})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"].endswith(f'm_epoch_1.{fmt}"')
        assert "info.json" in members(r.content, fmt)


async def test_download_refusals(client) -> None:  # noqa: F811
    """Other extensions and epochs without a snapshot 400, unknown job 404, no snapshot 409."""
    for path, code in (
        ("/models/m/download.rar", 400),
        ("/models/m/download.tar.gz?epoch=9", 400),
        ("/models/m/download?epoch=abc", 400),
        ("/models/nope/download", 404),
        ("/models/empty/download", 409),
    ):
        r = await client.get(path)
        assert r.status_code == code, (path, r.text)


async def test_classify_py_in_the_archive_predicts_like_the_service(client, tmp_path) -> None:  # noqa: F811
    """The standalone script, run in a fresh interpreter, gives the service's top-5."""
    folder = unpack(
        members((await client.get("/models/c/download.zip")).content, "zip"), tmp_path / "pkg"
    )
    image = tmp_path / "x.png"
    image.write_bytes(png(180, (33, 21)))
    expected = (await post(client, CLASSIFY_JSON, image.read_bytes(), job_id="c")).json()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(folder / "classify.py"), str(image)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])[str(image)]
    assert [label for label, _ in got] == [label for label, _ in expected["predictions"]]
    for (_, a), (_, b) in zip(got, expected["predictions"], strict=True):
        assert a == pytest.approx(b, abs=0.02)


async def test_onnx_on_request_matches_mxnet_in_onnxruntime(client, tmp_path) -> None:  # noqa: F811
    """`onnx=1` adds model.onnx; onnxruntime's logits equal the MXNet network's."""
    import mxnet as mx
    import onnxruntime as ort

    r = await client.get("/models/c/download.tar", params={"onnx": "1"})
    assert r.status_code == 200, r.text
    folder = unpack(members(r.content, "tar"), tmp_path / "pkg")
    info = json.loads((folder / "info.json").read_text())
    assert info["onnx file"] == "model.onnx"
    batch = np.random.default_rng(3).uniform(0, 255, (2, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(folder / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: batch})[0]
    net = mx.gluon.SymbolBlock.imports(
        str(folder / info["model file"]), ["data"], str(folder / info["snapshot file"])
    )
    np.testing.assert_allclose(got, net(mx.nd.array(batch)).asnumpy(), atol=1e-4)
    plain = members((await client.get("/models/c/download.tar")).content, "tar")
    assert "model.onnx" not in plain and "onnx file" not in json.loads(plain["info.json"])
