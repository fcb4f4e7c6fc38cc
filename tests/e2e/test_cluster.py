"""The device queue and the cluster view on the launched system (one CPU slot by default)."""

from __future__ import annotations

from tests.e2e.conftest import System, signed_in, wait_until, write_intensity_classes
from tests.e2e.test_digits_routes import _status

MODEL = {
    "method": "standard",
    "standard_networks": "lenet",
    "batch_size": "16",
    "learning_rate": "0.01",
    "solver_type": "SGD",
    "lr_policy": "fixed",
    "random_seed": "1",
}


def test_a_second_job_queues_for_the_slot_and_the_cluster_shows_it(digits_system: System) -> None:
    """While one job holds the only CPU slot the next waits in the visible queue; the holder's
    hardware panel has live telemetry; aborting the waiting job empties the queue."""
    folder = digits_system.root / "queue"
    write_intensity_classes(folder, per_class=20)
    with signed_in(digits_system, "queuer", timeout=30) as client:
        dataset = client.post(
            "/datasets/images/classification.json",
            data={
                "folder_train": str(folder),
                "folder_pct_val": "20",
                "resize_width": "28",
                "resize_height": "28",
                "resize_channels": "1",
                "dataset_name": "queue",
            },
        ).json()
        # The first holds the only slot before the second is submitted (submitted together, either
        # could take it; a few epochs of this toy set end within a second): long, then aborted.
        first = client.post(
            "/models/images/classification.json",
            data={**MODEL, "dataset": dataset["id"], "model_name": "first", "train_epochs": "1000"},
        ).json()["id"]

        def first_holds_the_slot() -> list | None:
            held = client.get(f"/api/v1/jobs/{first}/hardware").json()["devices"]
            return held if held and _status(client, "models", first) == "Running" else None

        wait_until(first_holds_the_slot, timeout=120, what="the first job to hold the slot")
        second = client.post(
            "/models/images/classification.json",
            data={**MODEL, "dataset": dataset["id"], "model_name": "second", "train_epochs": "1"},
        ).json()["id"]
        cluster = client.get("/api/v1/cluster").json()
        assert cluster["total"] >= 1 and cluster["kind"] == "cpu", cluster

        def second_queued() -> list | None:
            queue = client.get("/api/v1/queue").json()["queue"]
            held = client.get(f"/api/v1/jobs/{first}/hardware").json()["devices"]
            ok = [q for q in queue if q["job_id"] == second and q["position"] == 1]
            return ok if ok and held and _status(client, "models", first) == "Running" else None

        wait_until(second_queued, timeout=120, what="the second job to queue behind the first")
        page = client.get("/cluster")
        assert page.status_code == 200 and "second" in page.text

        def sampled() -> dict | None:
            (device,) = client.get(f"/api/v1/jobs/{first}/hardware").json()["devices"]
            return device["sample"]

        sample = wait_until(sampled, timeout=10, what="telemetry of the first job's slot")
        assert sample["memory_total"] > 0
        assert client.post(f"/models/{second}/abort").status_code == 200
        wait_until(
            lambda: not client.get("/api/v1/queue").json()["queue"],
            timeout=15,
            what="the aborted job to leave the queue",
        )
        assert _status(client, "models", first) == "Running"
        assert client.post(f"/models/{first}/abort").status_code == 200
        wait_until(
            lambda: _status(client, "models", first) == "Aborted",
            timeout=60,
            what="the first job to stop",
        )
