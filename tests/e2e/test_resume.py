"""Automatic resume through the launched system: the trainer service is SIGKILLed mid-run, the
launcher restarts it, the ticket comes back and the job finishes from its last snapshot."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import System, signed_in, wait_until
from tests.e2e.flows import build_dataset
from tests.trainer.toy import LABELS, toy_images

pytestmark = pytest.mark.e2e


def trainer_pids(data_dir: Path) -> list[int]:
    """Pids of this system's trainer service (not its training or sandbox children)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"digits_trainer" in cmdline and f"DIGITS_DATA_DIR={data_dir}".encode() in environ:
            found.append(int(pid))
    return found


@pytest.mark.timeout(900)  # ack_wait redelivery plus a restart, on a possibly busy machine
def test_a_killed_trainer_is_replaced_and_the_job_resumes_to_done(digits_system: System) -> None:
    """SIGKILL the trainer service after the first snapshot: attempt 2 resumes and ends Done."""
    folder = digits_system.root / "toy-resume"
    images, labels = toy_images(40, seed=1)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / LABELS[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0], "L").save(target / f"{i:04d}.png")
    with signed_in(digits_system, "resume") as client:
        dataset_id = build_dataset(
            client,
            folder_train=str(folder),
            folder_pct_val="20",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name="toy-resume",
        )
        model = client.post(
            "/models/images/classification.json",
            data={
                "dataset": dataset_id,
                "standard_networks": "lenet",
                "train_epochs": "300",
                "snapshot_interval": "10",
                "val_interval": "10",
                "solver_type": "SGD",
                "learning_rate": "0.01",
                "lr_policy": "fixed",
                "random_seed": "3",
                "model_name": "resume",
            },
        ).json()
        job = f"/models/{model['id']}.json"
        wait_until(
            lambda: client.get(job).json().get("snapshots"), timeout=300, what="a first snapshot"
        )
        pids = trainer_pids(digits_system.data_dir)
        assert pids, "the trainer service's process was not found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        status = wait_until(
            lambda: (
                (s := client.get(f"/models/{model['id']}/status").json()["status"])
                in ("Done", "Error", "Aborted")
                and s
            ),
            timeout=400,
            what="the resumed job",
        )
        body = client.get(job).json()
        assert status == "Done", body
        assert body["attempt"] == 2 and time.monotonic() - killed_at > 1
        assert body["snapshots"][-1] == 300.0
