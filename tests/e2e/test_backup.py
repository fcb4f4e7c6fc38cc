"""Backup and restore through the real launcher: a system with a dataset, a trained model, its
charts and classifications is backed up while it runs, stopped, its data directory wiped,
restored with `digits restore` and started again; every answer is what it was."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import signed_in, start_system, wait_until, write_intensity_classes
from tests.e2e.flows import build_dataset, png, train_model

pytestmark = pytest.mark.e2e


def digits_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m digits_cli <args>` on the system of `data_dir`, as an operator runs it."""
    env = dict(os.environ, DIGITS_DATA_DIR=str(data_dir))
    env.pop("DIGITS_NATS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "digits_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def archive_members(body: bytes) -> dict[str, bytes]:
    """A downloaded snapshot tar's files (their times are the export's own, so not compared)."""
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def answers(client: httpx.Client, dataset_id: str, model_id: str, run_id: str) -> dict:
    """Everything a user sees of the jobs: lists, details, charts, snapshots, classifications."""
    got = {}
    for path in (
        "/index.json",
        "/api/v1/jobs",
        f"/datasets/{dataset_id}.json",
        f"/models/{model_id}.json",
        f"/api/v1/models/{model_id}/metrics",
        f"/models/images/classification/classify_many/{run_id}.json",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        got[path] = r.json()
    for epoch in got[f"/models/{model_id}.json"]["snapshots"]:
        r = client.get(f"/models/{model_id}/download.tar", params={"epoch": str(epoch)})
        assert r.status_code == 200, (epoch, r.status_code, r.text[:300])
        got[f"snapshot {epoch}"] = archive_members(r.content)
    for level in (40, 128, 215):
        pixels = np.full((28, 28), level, np.uint8)
        r = client.post(
            "/models/images/classification/classify_one.json",
            data={"job_id": model_id},
            files={"image_file": ("gray.png", png(pixels), "image/png")},
        )
        assert r.status_code == 200, r.text
        got[f"classify {level}"] = r.json()["predictions"]
    return got


def differences(a: object, b: object, path: str = "") -> list[str]:
    """Where two JSON values differ, as `/key/key: a != b` lines (readable in a failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}/{i}")
        ]
    return [] if a == b else [f"{path}: {a!r:.80} != {b!r:.80}"]


def positions(client: httpx.Client) -> dict[str, int]:
    """How far the gateway's read model has projected each stream (its /health says)."""
    return client.get("/health").json()["positions"]


def classify_many_run(client: httpx.Client, model_id: str, folder: Path) -> str:
    """A classify-many job over a zip of images (an archive always runs as a job), once Done."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for image in sorted(folder.rglob("*.png"))[::10]:
            archive.write(image, f"{image.parent.name}/{image.name}")
    r = client.post(
        "/models/images/classification/classify_many.json",
        data={"job_id": model_id},
        files={"image_archive": ("images.zip", buf.getvalue(), "application/zip")},
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    url = f"/models/images/classification/classify_many/{run_id}.json"
    wait_until(
        lambda: client.get(url).json()["status"] == "Done", timeout=180, what="classify-many"
    )
    return run_id


@pytest.mark.timeout(1200)
def test_a_backed_up_system_restored_into_a_wiped_data_dir_answers_as_before(
    tmp_path: Path,
) -> None:
    """Jobs, charts, snapshot downloads and classifications after backup → wipe → restore."""
    base, saved = tmp_path / "system", tmp_path / "backup"
    base.mkdir()
    with start_system(base) as system, signed_in(system, "admin", timeout=120) as client:
        folder = system.root / "gray"
        write_intensity_classes(folder, per_class=12)
        dataset_id = build_dataset(
            client,
            folder_train=str(folder),
            folder_pct_val="25",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name="backup-gray",
        )
        model_id = train_model(
            client,
            dataset=dataset_id,
            standard_networks="lenet",
            train_epochs="2",
            snapshot_interval="1",
            val_interval="1",
            random_seed="5",
            model_name="backup-lenet",
        )
        run_id = classify_many_run(client, model_id, folder)
        before = answers(client, dataset_id, model_id, run_id)
        projected = positions(client)
        done = digits_cli(system.data_dir, "backup", str(saved))  # while it runs
        assert done.returncode == 0, done.stderr
        assert "100%" in done.stderr and "Backup done" in done.stdout
    data_dir = system.data_dir
    shutil.rmtree(data_dir)
    images = shutil.move(system.root, tmp_path / "images")  # start_system makes a new root

    done = digits_cli(data_dir, "restore", str(saved))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100%" in done.stderr and "Restore done" in done.stdout

    with start_system(base) as system, signed_in(system, "admin", timeout=120) as client:
        shutil.rmtree(system.root)
        shutil.move(images, system.root)  # the operator's images, where they were
        # Sequences are kept: the rebuild is whole once it reaches the positions seen before.
        wait_until(
            lambda: all(positions(client).get(s, 0) >= seq for s, seq in projected.items()),
            timeout=120,
            what=f"the read model rebuilt from the restored streams up to {projected}",
        )
        after = answers(client, dataset_id, model_id, run_id)
        assert sorted(after) == sorted(before)
        changed = differences(before, after)  # asserted last: the checks below run anyway
        # Appends to a restored aggregate still pass their expected-sequence check.
        r = client.patch(f"/api/v1/jobs/{model_id}", json={"notes": "restored"})
        assert r.status_code == 200, r.text
        assert client.get(f"/models/{model_id}.json").json()["notes"] == "restored"
        # And the restored system still trains.
        train_model(
            client,
            dataset=dataset_id,
            standard_networks="lenet",
            train_epochs="1",
            model_name="after-restore",
        )
        assert not changed
