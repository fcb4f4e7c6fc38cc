"""One POST that creates a model: every event of that job, whichever service appended it and on
whichever stream, carries the request's id as its correlation id, and the trainer's log names it."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from digits_proto import headers, subjects
from tests.e2e.conftest import System, signed_in, wait_until, write_intensity_classes

pytestmark = pytest.mark.e2e

Stamped = tuple[str, dict[str, str]]  # (event type, headers)


class _Tagged(msgspec.Struct):
    type: str = ""
    job_id: str = ""


def read_bus(data_dir: Path, model_id: str, dataset_id: str) -> dict[str, list[Stamped]]:
    """The job's events per stream (and the dataset's), each with its headers, read as the
    system's admin: models, metrics, progress, and the gpu lease events naming the job."""
    conf = json.loads((data_dir / "nats" / "nats.conf").read_text())
    admin = json.loads((data_dir / "nats" / "creds" / "digits-admin.json").read_text())
    wanted = {
        "models": (subjects.STREAM_MODELS, subjects.model_events(model_id)),
        "metrics": (subjects.STREAM_METRICS, subjects.model_metrics(model_id)),
        "progress": (subjects.STREAM_PROGRESS, subjects.model_progress(model_id)),
        "gpus": (subjects.STREAM_GPUS, subjects.GPU_EVENTS),
        "dataset": (subjects.STREAM_DATASETS, subjects.dataset_events(dataset_id)),
    }

    async def read() -> dict[str, list[Stamped]]:
        nc = await nats.connect(
            f"nats://{conf['listen']}", user=admin["user"], password=admin["password"]
        )
        try:
            js = nc.jetstream()
            out: dict[str, list[Stamped]] = {}
            for name, (stream, subject) in wanted.items():
                out[name] = []
                seq = 1
                while True:
                    try:
                        msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
                    except NotFoundError:
                        break
                    seq = (msg.seq or seq) + 1
                    event = msgspec.json.decode(msg.data or b"{}", type=_Tagged)
                    if name != "gpus" or event.job_id == model_id:
                        out[name].append((event.type, dict(msg.headers or {})))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def correlations(stamped: list[Stamped]) -> set[str]:
    return {h.get(headers.CORRELATION_ID, "") for _, h in stamped}


def test_every_event_of_a_job_carries_the_request_id_that_created_it(
    digits_system: System,
) -> None:
    """POST (X-Request-Id) → the same id on the answer, on every model, metric, progress and
    lease event of the job (each naming a cause), and in the trainer's log; the dataset's
    events carry the id of the request that created the dataset instead."""
    folder = digits_system.root / "correlation"
    write_intensity_classes(folder, per_class=8, size=16)
    dataset_request, model_request = f"ds-{uuid.uuid4().hex}", f"model-{uuid.uuid4().hex}"
    with signed_in(digits_system, "corr-user") as client:
        r = client.post(
            "/datasets/images/classification.json",
            data=dict(
                folder_train=str(folder),
                folder_pct_val="25",
                resize_width="16",
                resize_height="16",
                resize_channels="1",
                dataset_name="correlation",
            ),
            headers={"X-Request-Id": dataset_request},
        )
        assert r.is_success, r.text
        assert r.headers["x-request-id"] == dataset_request
        dataset_id = r.json()["id"]
        wait_until(
            lambda: client.get(f"/datasets/{dataset_id}/status").json()["status"] == "Done",
            timeout=180,
            what="the dataset",
        )
        r = client.post(
            "/models/images/classification.json",
            data=dict(
                dataset=dataset_id,
                standard_networks="lenet",
                train_epochs="2",
                snapshot_interval="1",
                solver_type="SGD",
                learning_rate="0.01",
                lr_policy="fixed",
                model_name="correlation",
            ),
            headers={"X-Request-Id": model_request},
        )
        assert r.is_success, r.text
        assert r.headers["x-request-id"] == model_request
        model_id = r.json()["id"]
        wait_until(
            lambda: (
                client.get(f"/models/{model_id}/status").json()["status"]
                in ("Done", "Error", "Aborted")
            ),
            timeout=600,
            what="the model",
        )
        assert client.get(f"/models/{model_id}/status").json()["status"] == "Done"

    def released() -> dict[str, list[Stamped]] | None:
        bus = read_bus(digits_system.data_dir, model_id, dataset_id)
        ends = [t for t, _ in bus["gpus"] if t in ("gpus.LeaseReleased", "gpus.LeaseExpired")]
        return bus if ends else None

    bus = wait_until(released, timeout=60, what="the job's lease to end")
    kinds = {name: {t for t, _ in stamped} for name, stamped in bus.items()}
    assert {"models.ModelCreated", "models.TrainingStarted", "models.TrainingCompleted"} <= kinds[
        "models"
    ], kinds
    assert bus["metrics"] and bus["progress"], kinds
    assert "gpus.LeaseGranted" in kinds["gpus"], kinds
    for name in ("models", "metrics", "progress", "gpus"):
        assert correlations(bus[name]) == {model_request}, (name, bus[name])
        assert all(h.get(headers.CAUSATION_ID) for _, h in bus[name]), (name, bus[name])
    assert correlations(bus["dataset"]) == {dataset_request}, bus["dataset"]
    # The created event's cause is the command the gateway sent, not the request itself.
    created = next(h for t, h in bus["models"] if t == "models.ModelCreated")
    assert created[headers.CAUSATION_ID] != model_request

    trainer_log = digits_system.data_dir / "logs" / "trainer.log"
    wait_until(
        lambda: model_request in trainer_log.read_text(errors="replace"),
        timeout=30,
        what="the request id in the trainer's log",
    )
