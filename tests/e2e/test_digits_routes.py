"""The walking skeleton end to end through DIGITS's own JSON routes, against the real system."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import System, signed_in, wait_until, write_intensity_classes

pytestmark = pytest.mark.e2e


def _status(client: httpx.Client, kind: str, job_id: str) -> str:
    return client.get(f"/{kind}/{job_id}/status").json().get("status", "")


def _wait_done(client: httpx.Client, kind: str, job_id: str, timeout: float) -> None:
    final = wait_until(
        lambda: (s := _status(client, kind, job_id)) in ("Done", "Error", "Aborted") and s,
        timeout=timeout,
        what=f"{kind} {job_id} to finish",
    )
    detail = client.get(f"/{kind}/{job_id}.json").text
    assert final == "Done", detail


def test_dataset_model_and_classify_one_through_digits_routes(digits_system: System) -> None:
    """Folder → dataset Done → LeNet Done with a snapshot → classify_one puts the true class first."""
    folder = digits_system.root / "intensity"
    write_intensity_classes(folder)
    with signed_in(digits_system, "tester", timeout=30) as client:
        created = client.post(
            "/datasets/images/classification.json",
            data={
                "method": "folder",
                "folder_train": str(folder),
                "folder_pct_val": "20",
                "folder_pct_test": "0",
                "resize_width": "28",
                "resize_height": "28",
                "resize_channels": "1",
                "resize_mode": "squash",
                "dataset_name": "intensity",
                "backend": "lmdb",
            },
        )
        assert created.status_code == 200, created.text
        dataset = created.json()
        assert set(dataset) >= {"id", "name", "status"} and dataset["name"] == "intensity"
        # Read-your-writes: the job is visible right after the POST.
        assert client.get(f"/datasets/{dataset['id']}.json").status_code == 200
        assert any(d["id"] == dataset["id"] for d in client.get("/index.json").json()["datasets"])

        _wait_done(client, "datasets", dataset["id"], timeout=120)
        info = client.get(f"/datasets/{dataset['id']}.json").json()
        parse = info["ParseFolderTasks"][0]
        assert parse["label_count"] == 3 and parse["train_count"] + parse["val_count"] == 90
        train_db = next(t for t in info["CreateDbTasks"] if "train" in t["name"].lower())
        assert (train_db["image_width"], train_db["image_height"], train_db["image_channels"]) == (
            28,
            28,
            1,
        )
        assert train_db["backend"] == "recordio"

        model = client.post(
            "/models/images/classification.json",
            data={
                "dataset": dataset["id"],
                "method": "standard",
                "standard_networks": "lenet",
                "framework": "caffe",
                "train_epochs": "4",
                "batch_size": "16",
                "learning_rate": "0.01",
                "solver_type": "SGD",
                "lr_policy": "fixed",
                "model_name": "lenet-intensity",
                "random_seed": "1",
            },
        )
        assert model.status_code == 200, model.text
        model_id = model.json()["id"]
        _wait_done(client, "models", model_id, timeout=300)
        detail = client.get(f"/models/{model_id}.json").json()
        assert detail["snapshots"], detail
        assert detail["dataset_id"] == dataset["id"]

        # Job life: the trainer's raw log reaches the gateway through the Object Store; a
        # rename and notes (DIGITS's PUT /jobs/<id>) show in the job's JSON.
        log = client.get(f"/models/{model_id}/log")
        assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
        assert f"attempt 1 of {model_id}" in log.text
        assert log.text.rstrip().endswith("training completed"), log.text[-500:]
        edit = client.put(f"/jobs/{model_id}", data={"job_name": "lenet v2", "job_notes": "e2e"})
        assert (edit.status_code, edit.text) == (200, "Image Classification Model updated.")
        renamed = client.get(f"/models/{model_id}.json").json()
        assert (renamed["name"], renamed["notes"], renamed["status"]) == ("lenet v2", "e2e", "Done")

        image = folder / "bright" / "bright_000.png"
        with open(image, "rb") as f:
            result = client.post(
                "/models/images/classification/classify_one.json",
                data={"job_id": model_id},
                files={"image_file": ("bright.png", f, "image/png")},
            )
        assert result.status_code == 200, result.text
        predictions = result.json()["predictions"]
        assert predictions[0][0] == "bright", predictions
        assert len(predictions) <= 5 and sum(p for _, p in predictions) == pytest.approx(100, abs=1)

        # DIGITS's answers for jobs that cannot be changed any more.
        assert client.post(f"/models/{model_id}/abort").status_code == 403
        assert client.delete(f"/datasets/{dataset['id']}").status_code == 403
        assert client.delete(f"/models/{model_id}").status_code == 200
        assert client.get(f"/models/{model_id}/status").json() == {"error": "Job not found."}
        assert client.delete(f"/datasets/{dataset['id']}").status_code == 200
        assert client.get(f"/datasets/{dataset['id']}.json").status_code == 404


def test_invalid_input_answers_400_naming_the_field(digits_system: System) -> None:
    """Bad folders, bad percentages and unknown datasets are 400s with DIGITS's errors body."""
    valid = digits_system.root / "valid"
    write_intensity_classes(valid, per_class=3)
    with signed_in(digits_system, "tester", timeout=30) as client:
        base = {"dataset_name": "bad", "resize_width": "28", "resize_height": "28"}
        cases = [
            ({"folder_train": "/etc"}, "folder_train"),
            ({"folder_train": str(digits_system.root / "missing")}, "folder_train"),
            (
                {"folder_train": str(valid), "folder_pct_val": "80", "folder_pct_test": "30"},
                "folder_pct_val",
            ),
            ({"folder_train": str(valid), "resize_width": "wide"}, "resize_width"),
        ]
        for fields, field in cases:
            r = client.post("/datasets/images/classification.json", data={**base, **fields})
            assert r.status_code == 400, (fields, r.text)
            assert field in r.json()["errors"], r.text
        r = client.post(
            "/models/images/classification.json",
            data={
                "dataset": "20000101-000000-dead",
                "model_name": "m",
                "standard_networks": "lenet",
            },
        )
        assert r.status_code == 400 and "dataset" in r.json()["errors"]
        assert client.get("/datasets/20000101-000000-dead/status").json() == {
            "error": "Job not found."
        }
        assert client.delete("/models/20000101-000000-dead").status_code == 404
