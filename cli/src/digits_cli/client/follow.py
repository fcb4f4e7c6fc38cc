"""Follow a build or a training run to its end: a live progress bar on a terminal (rich, on
stderr), the job's JSON on stdout with `--json`; the exit code says how it ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from digits_cli.client.api import DONE, JOB_FAILED, Api

ENDED = ("Done", "Error", "Aborted")
POLL_EVERY = 1.0  # seconds: the read model updates progress a few times a second at most


def job_path(kind: str, job_id: str) -> str:
    """The `/api/v1` resource of a dataset or a model."""
    return f"/api/v1/{kind}s/{job_id}"


def _metrics_line(latest: dict[str, dict[str, float]]) -> str:
    """`loss 0.412 · val loss 0.388 · val acc 0.912` from the latest train and val points."""
    parts = []
    train, val = latest.get("train", {}), latest.get("val", {})
    if "loss" in train:
        parts.append(f"loss {train['loss']:.4f}")
    if "loss" in val:
        parts.append(f"val loss {val['loss']:.4f}")
    if "accuracy" in val:
        parts.append(f"val acc {val['accuracy']:.3f}")
    return " · ".join(parts)


class Metrics:
    """The latest value of each metric per phase, read a page at a time after `seq`."""

    def __init__(self, api: Api, job_id: str) -> None:
        self.api, self.job_id, self.seq = api, job_id, 0
        self.latest: dict[str, dict[str, float]] = {}

    def poll(self) -> str:
        """Read new points; the line to show."""
        body = self.api.json("GET", f"/api/v1/models/{self.job_id}/metrics?after_seq={self.seq}")
        for point in body["points"]:
            self.seq = max(self.seq, point["seq"])
            self.latest.setdefault(point["phase"], {}).update(point["values"])
        return _metrics_line(self.latest)


def follow(
    api: Api,
    kind: str,
    job_id: str,
    console: Console,
    quiet: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, dict[str, Any]]:
    """Poll the job until it ends; (exit code, its last JSON). `quiet` draws nothing; a console
    that is not a terminal (a CI log) gets a plain line at each new status or whole epoch."""
    metrics = Metrics(api, job_id) if kind == "model" else None
    logged = ""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        task = bar.add_task(kind, total=1.0, status="", detail="")
        while True:
            job = api.json("GET", job_path(kind, job_id))
            detail = metrics.poll() if metrics is not None else ""
            if kind == "model" and job.get("epoch") is not None:
                epochs = job.get("train_epochs")
                detail = f"epoch {job['epoch']:g}/{epochs} {detail}".strip()
            bar.update(
                task, completed=job.get("progress") or 0.0, status=job["status"], detail=detail
            )
            step = f"{job['status']} {int(job.get('epoch') or 0)}"
            if not quiet and not console.is_terminal and step != logged:
                console.print(f"{kind} {job_id}: {job['status']} {detail}".rstrip(), soft_wrap=True)
                logged = step
            if job["status"] in ENDED:
                break
            sleep(POLL_EVERY)
    return (DONE if job["status"] == "Done" else JOB_FAILED), job
