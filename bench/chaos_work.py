"""What runs while `chaos.py` injects a fault, each read as the user reads it (the gateway's JSON):
a training job (its metric points), a dataset build (its built entries) and a classify-many job
(its classified images). Each says how far it got, how it ended and what it lost or repeated."""

from __future__ import annotations

import contextlib
import io
import math
import time
import zipfile
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image
from system import TERMINAL, load_mnist, submit_dataset

from digits_proto.models import TrainSpec
from digits_trainer.plan import plan_for

# Small enough for a shared 2-core machine; long enough (tens of seconds) to be hit mid-run.
MODEL = {
    "standard_networks": "lenet",
    "solver_type": "SGD",
    "learning_rate": "0.01",
    "lr_policy": "fixed",
    "batch_size": "64",
    "snapshot_interval": "5",
    "val_interval": "5",
    "random_seed": "1",
}


def get(client: httpx.Client, path: str) -> dict | None:
    """A JSON answer, or None while the gateway does not answer (killed, restarting)."""
    try:
        r = client.get(path, timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def write_digits(folder: Path, count: int) -> int:
    """`count` MNIST digits as PNG class folders; how many were written."""
    images, labels = load_mnist(count)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / str(label) / f"{i:05d}.png")
    return count


class Work:
    """One job under a fault. `position()`: how far it got (None: cannot tell right now);
    `ended()`: its terminal status and message, None while it runs; `damage()`: (lost,
    duplicated), None where the measure does not apply."""

    kind = "job"
    path = ""

    def __init__(self, client: httpx.Client):
        self.client = client

    def position(self) -> float | None:
        raise NotImplementedError

    def ended(self) -> tuple[str, str] | None:
        body = get(self.client, self.path)
        if body is None or body.get("status") not in TERMINAL:
            return None
        return body["status"], str(body.get("error") or "")

    def damage(self) -> tuple[int | None, int | None]:
        return None, None

    def abort(self) -> None:
        with_abort = self.path.removesuffix(".json")
        with contextlib.suppress(httpx.HTTPError):
            self.client.post(f"{with_abort}/abort", timeout=10)


class Training(Work):
    """A LeNet job; progress is its newest metric point's iteration."""

    kind = "training"

    def __init__(self, client: httpx.Client, dataset_id: str, train_size: int, epochs: int):
        super().__init__(client)
        r = client.post(
            "/models/images/classification.json",
            data={**MODEL, "dataset": dataset_id, "train_epochs": str(epochs), "model_name": "c"},
        )
        r.raise_for_status()
        self.id = r.json()["id"]
        self.path = f"/api/v1/models/{self.id}"
        spec = TrainSpec(
            train_epochs=epochs,
            batch_size=int(MODEL["batch_size"]),
            snapshot_interval=float(MODEL["snapshot_interval"]),
            val_interval=float(MODEL["val_interval"]),
        )
        self.plan = plan_for(spec, train_size)

    def expected(self) -> set[tuple[str, int]]:
        """(phase, iteration) of every point the trainer reports (loop.py's rules)."""
        p = self.plan
        rng = range(1, p.max_iter + 1)
        train = {("train", i) for i in rng if i % p.log_every == 0 or i % p.per_epoch == 0}
        val = {("val", i) for i in rng if p.val_every and (i % p.val_every == 0 or i == p.max_iter)}
        return train | val

    def points(self) -> list[dict] | None:
        body = get(self.client, f"{self.path}/metrics")
        return None if body is None else body["points"]

    def position(self) -> float | None:
        points = self.points()
        if points is None:
            return None
        return max((p["iteration"] for p in points), default=0) / self.plan.max_iter

    def damage(self) -> tuple[int | None, int | None]:
        """Points missing and points seen twice, once the read model holds them all (the last
        points may be projected just after the job's Done)."""
        want = self.expected()
        deadline = time.monotonic() + 20
        while True:
            points = self.points() or []
            seen = Counter((p["phase"], p["iteration"]) for p in points)
            lost = len(want - set(seen))
            if lost == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        duplicated = sum(n - 1 for n in seen.values() if n > 1)
        return lost, duplicated


class Build(Work):
    """A dataset build of `count` digits; progress is the job's own progress fraction."""

    kind = "dataset build"

    def __init__(self, client: httpx.Client, folder: Path, count: int):
        super().__init__(client)
        self.count = count
        self.id = submit_dataset(client, folder, f"chaos-{folder.name}")
        self.path = f"/api/v1/datasets/{self.id}"

    def position(self) -> float | None:
        body = get(self.client, self.path)
        return None if body is None else float(body.get("progress") or 0.0)

    def damage(self) -> tuple[int | None, int | None]:
        """Images neither in a split nor reported as failed; entries beyond the folder's."""
        body = get(self.client, self.path) or {}
        tasks = body.get("CreateDbTasks") or []
        entries = sum((t.get("entries") or 0) + (t.get("error_count") or 0) for t in tasks)
        return max(0, self.count - entries), max(0, entries - self.count)


class Many(Work):
    """A classify-many job over a zip of `count` digits; progress is its `done` count."""

    kind = "classify-many"

    def __init__(self, client: httpx.Client, model_id: str, folder: Path, count: int):
        super().__init__(client)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for image in sorted(folder.rglob("*.png"))[:count]:
                archive.write(image, f"{image.parent.name}/{image.name}")
        r = client.post(
            "/models/images/classification/classify_many.json",
            data={"job_id": model_id},
            files={"image_archive": ("digits.zip", buf.getvalue(), "application/zip")},
        )
        assert r.status_code == 202, r.text
        self.count = count
        self.path = f"/models/images/classification/classify_many/{r.json()['run_id']}.json"

    def position(self) -> float | None:
        body = get(self.client, self.path)
        return None if body is None else float(body.get("done") or 0) / max(1, self.count)

    def ended(self) -> tuple[str, str] | None:
        body = get(self.client, self.path)
        if body is None or body.get("status") not in TERMINAL:
            return None
        return body["status"], str(body.get("error") or "")

    def damage(self) -> tuple[int | None, int | None]:
        """Images neither classified nor listed as errors; images classified twice."""
        body = get(self.client, self.path) or {}
        result = body.get("result") or {}
        paths = Counter(r["path"] for r in result.get("results") or [])
        errors = len(result.get("errors") or [])
        lost = max(0, self.count - len(paths) - errors)
        return lost, sum(n - 1 for n in paths.values() if n > 1)

    def abort(self) -> None:
        pass  # a classify-many job has no abort route; it ends by itself


def wait_position(work: Work, at_least: float, timeout: float) -> float:
    """Wait until `work` got at least this far; how far it got (raises if it ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (end := work.ended()) is not None:
            raise RuntimeError(f"{work.kind} ended {end[0]} before the fault: {end[1][:200]}")
        if (at := work.position()) is not None and at >= at_least:
            return at
        time.sleep(0.25)
    raise RuntimeError(f"{work.kind} did not reach {at_least:.0%} in {timeout:.0f} s")


def until_end(work: Work, timeout: float) -> tuple[str, str] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (end := work.ended()) is not None:
            return end
        time.sleep(0.5)
    return None


def rounded(seconds: float | None) -> str:
    return "-" if seconds is None or math.isnan(seconds) else f"{seconds:.1f}"
