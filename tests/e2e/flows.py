"""Steps the end-to-end tests share: build a dataset, train a model, measure held-out accuracy."""

from __future__ import annotations

import io

import httpx
import numpy as np
from PIL import Image

from tests.e2e.conftest import wait_until


def build_dataset(client: httpx.Client, timeout: float = 180, **fields: str) -> str:
    """Create an image-classification dataset from form fields; its id once it is Done."""
    r = client.post("/datasets/images/classification.json", data=fields)
    assert r.is_success, r.text
    dataset_id = r.json()["id"]
    wait_until(
        lambda: client.get(f"/datasets/{dataset_id}/status").json()["status"] == "Done",
        timeout=timeout,
        what=f"dataset {fields.get('dataset_name', dataset_id)}",
    )
    return dataset_id


def train_model(client: httpx.Client, timeout: float = 600, **fields: str) -> str:
    """Create a model from form fields; its id once it is Done (any other end fails the test)."""
    r = client.post("/models/images/classification.json", data=fields)
    assert r.is_success, r.text
    model_id = r.json()["id"]
    status = wait_until(
        lambda: (
            (s := client.get(f"/models/{model_id}/status").json()["status"])
            in ("Done", "Error", "Aborted")
            and s
        ),
        timeout=timeout,
        what=f"model {fields.get('model_name', model_id)}",
    )
    assert status == "Done", client.get(f"/models/{model_id}.json").text
    return model_id


def held_out_accuracy(
    client: httpx.Client, model_id: str, images: np.ndarray, labels: np.ndarray
) -> float:
    """The share of gray `images` whose top-1 class (classify_one) is their label."""
    correct = 0
    for image, label in zip(images, labels, strict=True):
        r = client.post(
            "/models/images/classification/classify_one.json",
            data={"job_id": model_id},
            files={"image_file": ("digit.png", png(image), "image/png")},
        )
        assert r.status_code == 200, r.text
        correct += r.json()["predictions"][0][0] == str(label)
    return correct / len(labels)


def png(pixels: np.ndarray) -> bytes:
    """A gray image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, format="PNG")
    return buf.getvalue()
