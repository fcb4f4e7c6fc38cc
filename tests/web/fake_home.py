"""Fake routes of the stand-in gateway for the home pages (see fake_site.build_app).

`/test/home` is the real home template pointed at a richer job list of its own (groups, owners,
networks, tags, metric columns: the real `/completed_jobs.json` shape, see
tests/gateway/test_home_listing.py) and at a live stream whose progress events make the
running model's loss series grow, as training does. The per-job routes (`DELETE /jobs/<id>`,
`POST /jobs/<id>/abort`) answer as the real ones: 403 for someone else's job.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.response import ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from digits_gateway.pages import current_user
from digits_gateway.pages._frame import _page
from tests.web import fake_site

NOW = fake_site.NOW
DS_ALICE = "20261128-080000-d001"
DS_BOB = "20261128-081000-d002"
M_A = "20261128-090000-a001"  # lr-sweep, done
M_B = "20261128-091000-a002"  # lr-sweep, done, the best
M_RUN = "20261128-100000-b003"  # bob's, running: its sparkline grows live
M_OLD = "20261128-070000-a004"  # aborted, no metrics
M_BOB = "20261128-093000-b005"  # bob's, done
M_LATE = "20261128-110000-a006"  # created while the page is open (`/test/home?late=1`)
GROUP = "lr-sweep"
BASE_LOSS = [2.3, 1.7, 1.3]


def _job(
    job_id: str, kind: str, name: str, owner: str, status: str, **extra: Any
) -> dict[str, Any]:
    job = {
        "id": job_id,
        "name": name,
        "group": "",
        "status": status,
        "status_css": "success",
        "submitted": NOW - 3600 + int(job_id[9:13]) % 100,
        "elapsed": 60.0,
        "progress": 1.0 if status == "Done" else 0.3,
        "eta_seconds": None,
        "type": kind,
        "username": owner,
        "tags": [],
        "duration": 60.0,
    }
    if kind == "dataset":
        job["backend"] = "recordio"
    else:
        job.update(framework="mxnet", dataset_id=DS_ALICE, loss_sparkline=[], network="lenet")
        job.update(best_val_accuracy=None, final_train_loss=None)
    job.update(extra)
    return job


def _fixture() -> dict[str, dict[str, Any]]:
    return {
        DS_ALICE: _job(DS_ALICE, "dataset", "mnist-home", "alice", "Done", duration=45.0),
        DS_BOB: _job(DS_BOB, "dataset", "cifar-bob", "bob", "Done", group="vision", duration=300.0),
        M_A: _job(
            M_A,
            "model",
            "lenet-lr-0.1",
            "alice",
            "Done",
            group=GROUP,
            tags=["baseline"],
            best_val_accuracy=0.912,
            final_train_loss=0.31,
            duration=610.0,
            loss_sparkline=[2.2, 1.1, 0.6, 0.31],
        ),
        M_B: _job(
            M_B,
            "model",
            "lenet-lr-0.01",
            "alice",
            "Done",
            group=GROUP,
            tags=["sweep"],
            best_val_accuracy=0.951,
            final_train_loss=0.21,
            duration=905.0,
            loss_sparkline=[2.1, 0.9, 0.4, 0.21],
        ),
        M_RUN: _job(
            M_RUN,
            "model",
            "alexnet-bob",
            "bob",
            "Running",
            network="alexnet",
            best_val_accuracy=0.5,
            final_train_loss=1.3,
            duration=120.0,
            loss_sparkline=list(BASE_LOSS),
            progress=0.3,
        ),
        M_OLD: _job(M_OLD, "model", "old-lenet", "alice", "Aborted", duration=30.0),
        M_BOB: _job(
            M_BOB,
            "model",
            "bob-alexnet-done",
            "bob",
            "Done",
            network="alexnet",
            tags=["sweep", "bob's"],
            best_val_accuracy=0.884,
            final_train_loss=0.44,
            duration=1500.0,
            loss_sparkline=[2.0, 1.0, 0.44],
        ),
    }


JOBS: dict[str, dict[str, Any]] = {}
PROGRESS_SENT = [0]  # progress events the stream has sent: the running model's metrics follow


def reset() -> None:
    """Back to the fixture (tests change the jobs: tags, aborts, deletes)."""
    JOBS.clear()
    JOBS.update(_fixture())
    PROGRESS_SENT[0] = 0
    # The stand-in's PUT /jobs/<id> (names, notes) finds them here too.
    fake_site.MODELS.update({k: v for k, v in JOBS.items() if v["type"] == "model"})
    fake_site.DATASETS.update({k: v for k, v in JOBS.items() if v["type"] == "dataset"})


reset()


def _running_model() -> dict[str, Any]:
    """The running model as it stands after PROGRESS_SENT progress events."""
    job = copy.deepcopy(JOBS[M_RUN])
    steps = PROGRESS_SENT[0]
    job["loss_sparkline"] = BASE_LOSS + [round(1.3 * 0.8 ** (i + 1), 4) for i in range(steps)]
    if steps:
        job["final_train_loss"] = job["loss_sparkline"][-1]
        job["progress"] = min(0.9, 0.3 + 0.1 * steps)
    return job


@get("/test/home", sync_to_thread=False)
def home_page(request: Request, late: bool = False) -> Template:
    """The real home template, reading this module's list and stream (`late`: a job of the
    lr-sweep group is created once the stream has run)."""
    return _page(
        "home.html",
        "Home",
        current_user(request),
        listing_url="/test/home/completed_jobs.json",
        events_url="/test/home/events" + ("?late=1" if late else ""),
    )


@get("/test/home/completed_jobs.json", sync_to_thread=False)
def home_listing(ids: str | None = None) -> dict[str, Any]:
    """The real shape: running first, then finished jobs by kind; `?ids=` keeps only those."""
    wanted = None if ids is None else set(ids.split(","))
    out: dict[str, Any] = {
        "running": [],
        "datasets": [],
        "models": [],
        "pretrained_models": [],
        "model_output_fields": ["accuracy (val)", "loss (train)", "loss (val)"],
    }
    for job_id, job in JOBS.items():
        if wanted is not None and job_id not in wanted:
            continue
        item = _running_model() if job_id == M_RUN else copy.deepcopy(job)
        running = item["status"] in ("Initialized", "Waiting", "Running")
        out["running" if running else f"{item['type']}s"].append(item)
    return out


def _sse(kind: str, payload: dict[str, Any], n: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=kind, data=json.dumps(payload), id=str(n), retry=600_000)


async def _stream(late: bool) -> AsyncIterator[ServerSentEventMessage]:
    jobs = [
        {k: j[k] for k in ("id", "type", "name", "status", "username", "group", "tags")}
        | {"progress": _running_model()["progress"] if j["id"] == M_RUN else j["progress"]}
        for j in JOBS.values()
    ]
    yield _sse("history", {"jobs": jobs}, 1)
    for n in range(3):
        await asyncio.sleep(0.3)
        PROGRESS_SENT[0] += 1
        progress = {"job_id": M_RUN, "progress": _running_model()["progress"], "eta_seconds": 60}
        yield _sse("progress", progress, n + 2)
    if late:
        # As the real projection's first status event: no group, owner or network in it.
        JOBS[M_LATE] = _job(M_LATE, "model", "late-run", "alice", "Initialized", group=GROUP)
        created = {"job_id": M_LATE, "type": "model", "name": "late-run", "status": "Initialized"}
        yield _sse("status", created, 9)


@get("/test/home/events", sync_to_thread=False)
def home_events(late: bool = False) -> ServerSentEvent:
    """History, then three progress events of the running model (and a new job, `late`)."""
    return ServerSentEvent(_stream(late))


def _refuse(request: Request, job_id: str, verb: str) -> Response[Any] | None:
    job = JOBS.get(job_id)
    if job is None:
        return Response({"error": {"message": "Job not found."}}, status_code=404)
    if current_user(request) != job["username"]:
        msg = f"You don't have permission to {verb} this job"
        return Response({"error": {"message": msg, "type": "Forbidden"}}, status_code=403)
    return None


@delete("/jobs/{job_id:str}", status_code=200, sync_to_thread=False)
def delete_job(request: Request, job_id: str) -> Response[Any]:
    """The real route's answers: "Job deleted.", 403 someone else's, 404 unknown."""
    refused = _refuse(request, job_id, "delete")
    if refused is not None:
        return refused
    del JOBS[job_id]
    return Response("Job deleted.", media_type="text/plain")


@post("/jobs/{job_id:str}/abort", status_code=200, sync_to_thread=False)
def abort_job(request: Request, job_id: str) -> Response[Any]:
    """ "Job aborted." for the owner's running job; 403 otherwise."""
    refused = _refuse(request, job_id, "abort")
    if refused is not None:
        return refused
    JOBS[job_id]["status"] = "Aborted"
    return Response("Job aborted.", media_type="text/plain")


ROUTES: list[Any] = [home_page, home_listing, home_events, delete_job, abort_job]
