"""A tiny stand-in gateway for the web UI: page routes, render-function routes, fake JSON and
finite SSE streams, served by uvicorn on a free loopback port in a background thread."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from PIL import Image, ImageDraw

from digits_gateway.identity import Account, start_session
from digits_gateway.identity._session import session_claims
from digits_gateway.pages import (
    STATIC_DIR,
    TEMPLATES_DIR,
    classify_one_page,
    current_user,
    dataset_new_page,
    dataset_page,
    login_page,
    model_new_page,
    model_page,
    page_routes,
    safe_next,
)
from digits_gateway.pages._assets import import_map
from digits_gateway.security import headers_hook
from digits_proto.base import Principal
from tests.gateway.accounts import PASSWORDS, ROLES
from tests.web import fake_cluster

DS_DONE = "20261127-101500-a1b2"
DS_RUNNING = "20261127-103000-c3d4"
DS_GONE = "20261126-090000-0f0f"
DS_BUILDING = "20261127-104500-b00b"
DS_STALE = "20261120-080000-5a1e"  # in /completed_jobs.json but gone by the stream's history
MODEL = "20261127-110000-e5f6"
NEW_MODEL = "20261127-120000-9999"
EVENT_GAP_S = 0.05  # between live events, so a test can see each step
NOW = time.time()  # sample timestamps are recent, so relative times read naturally

DATASETS: dict[str, dict[str, Any]] = {
    DS_DONE: {
        "id": DS_DONE,
        "name": "mnist-28",
        "status": "Done",
        "username": "alice",
        "directory": "/data/jobs/" + DS_DONE,
        "resize_mode": "squash",
        "ParseFolderTasks": [
            {
                "name": "Parse Folder (train/val)",
                "folder": "/data/mnist/train",
                "label_count": 10,
                "train_count": 3750,
                "val_count": 1250,
                "test_count": 0,
            }
        ],
        "CreateDbTasks": [
            {
                "name": "train",
                "entries": 3750,
                "image_width": 28,
                "image_height": 28,
                "image_channels": 1,
                "backend": "recordio",
                "encoding": "png",
                "compression": "none",
                "class_counts": [380, 420, 375, 371, 360, 340, 377, 390, 366, 371],
            },
            {
                "name": "val",
                "entries": 1250,
                "image_width": 28,
                "image_height": 28,
                "image_channels": 1,
                "backend": "recordio",
                "encoding": "png",
            },
        ],
        "labels": [str(i) for i in range(10)],
        "status_history": [
            ["Initialized", NOW - 2700],
            ["Running", NOW - 2698.5],
            ["Done", NOW - 2670],
        ],
        "errors": [
            {"path": "train/3/bad.png", "reason": "cannot identify image file", "split": "train"}
        ],
        "warnings": ["class 7 has fewer images than the others"],
        "mean_image": f"/datasets/{DS_DONE}/mean.jpg",
    },
    DS_BUILDING: {
        "id": DS_BUILDING,
        "name": "cifar10-32",
        "status": "Running",
        "username": "bob",
        "progress": 0.42,
        "eta": 75,
        "resize_mode": "half_crop",
        "ParseFolderTasks": [
            {
                "name": "Parse Folder",
                "label_count": 10,
                "train_count": 37500,
                "val_count": 12500,
                "test_count": 10000,
            }
        ],
        "labels": [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        "status_history": [["Initialized", NOW - 64], ["Running", NOW - 62]],
    },
    DS_RUNNING: {
        "id": DS_RUNNING,
        "name": "cifar-small <b>bold?</b>",
        "status": "Running",
        "progress": 0.42,
        "eta": 75,
        "status_history": [
            {"status": "Initialized", "timestamp": "2026-11-27T10:30:00Z"},
            {"status": "Running", "timestamp": "2026-11-27T10:30:02Z"},
        ],
    },
}

MODELS: dict[str, dict[str, Any]] = {
    MODEL: {
        "id": MODEL,
        "name": "lenet-mnist",
        "status": "Running",
        "dataset_id": DS_DONE,
        "job id": MODEL,
        "creation time": NOW - 600,
        "username": "alice",
        "image dimensions": [28, 28, 1],
        "framework": "mxnet",
        "snapshots": [1, 2],
        "train_epochs": 5,
        "image resize mode": "squash",
        "mean subtraction": "image",
        "network": "lenet",
        "progress": 0.4,
        "eta": 120,
        "status_history": [
            ["Initialized", NOW - 600],
            ["Waiting", NOW - 599],
            ["Running", NOW - 597],
        ],
    },
}


def _train(epoch: float, it: int) -> dict[str, Any]:
    return {
        "job_id": MODEL,
        "epoch": round(epoch, 2),
        "iteration": it,
        "phase": "train",
        "values": {
            "loss": round(2.3 * 0.35**epoch + 0.05, 4),
            "learning_rate": 0.01 if epoch < 2.5 else 0.001,
        },
    }


def _val(epoch: int, loss: float, acc: float) -> dict[str, Any]:
    return {
        "job_id": MODEL,
        "epoch": float(epoch),
        "iteration": epoch * 100,
        "phase": "val",
        "values": {"loss": loss, "accuracy": acc},
    }


HISTORY_METRICS = [_train(i / 10, i * 10) for i in range(1, 21)]
HISTORY_METRICS[10:10] = [_val(1, 0.42, 0.881)]
HISTORY_METRICS.append(_val(2, 0.21, 0.934))
LIVE_METRICS = [_train(i / 10, i * 10) for i in range(21, 31)] + [_val(3, 0.12, 0.9712)]


def _msg(kind: str, payload: dict[str, Any], n: int) -> ServerSentEventMessage:
    # retry: the stream is finite; keep the browser from reconnecting during a test.
    return ServerSentEventMessage(event=kind, data=json.dumps(payload), id=str(n), retry=600_000)


async def pushed_stream(
    first: tuple[str, dict[str, Any]],
    listeners: list[asyncio.Queue[tuple[str, dict[str, Any]]]],
    idle_s: float,
) -> AsyncIterator[ServerSentEventMessage]:
    """A live stream a test drives: `first`, then what is put on its queue (registered in
    `listeners` while open), ending after `idle_s` without an event."""
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    listeners.append(queue)
    try:
        yield _msg(*first, 1)
        n = 1
        while True:
            try:
                kind, payload = await asyncio.wait_for(queue.get(), idle_s)
            except TimeoutError:
                return
            n += 1
            yield _msg(kind, payload, n)
    finally:
        listeners.remove(queue)


async def _events(steps: list[tuple[str, dict[str, Any]]]) -> AsyncIterator[ServerSentEventMessage]:
    for n, (kind, payload) in enumerate(steps, start=1):
        if n > 1:
            await asyncio.sleep(EVENT_GAP_S)
        yield _msg(kind, payload, n)


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    """The gateway's one-line job summary (views.summary) for the home history."""
    created = datetime.fromtimestamp(job["submitted"], tz=UTC).isoformat()
    return {
        "id": job["id"],
        "type": job["type"],
        "name": job["name"],
        "status": job["status"],
        "created": created,
        "progress": job.get("progress", 0.0),
    }


@get("/events", sync_to_thread=False)
def all_events() -> ServerSentEvent:
    """Home stream: the job list, then a dataset finishes, a model progresses, a model
    appears and one is deleted."""
    listed = _listing()
    jobs = [
        _summary(j)
        for part in ("running", "datasets", "models")
        for j in listed[part]
        if j["id"] != DS_STALE
    ]
    return ServerSentEvent(
        _events(
            [
                ("history", {"jobs": jobs}),
                ("gpu", fake_cluster.ALL_GPU_EVENT),  # the cluster page's live telemetry
                ("progress", {"job_id": DS_RUNNING, "progress": 0.6, "eta_seconds": 40}),
                (
                    "status",
                    {
                        "job_id": DS_RUNNING,
                        "type": "dataset",
                        "name": "cifar-small <b>bold?</b>",
                        "status": "Done",
                    },
                ),
                ("progress", {"job_id": MODEL, "progress": 0.55, "eta_seconds": 90}),
                (
                    "status",
                    {
                        "job_id": NEW_MODEL,
                        "type": "model",
                        "name": "fresh-model",
                        "status": "Initialized",
                    },
                ),
                ("deleted", {"job_id": DS_GONE}),
            ]
        )
    )


@get("/jobs/{job_id:str}/events", sync_to_thread=False)
def job_events(job_id: str) -> ServerSentEvent:
    """Job stream: history first, then live metrics (model) or a status change (dataset)."""
    if job_id == MODEL:
        steps: list[tuple[str, dict[str, Any]]] = [
            (
                "history",
                {
                    "status": "Running",
                    "progress": 0.4,
                    "eta_seconds": 120,
                    "epoch": 2.0,
                    "status_history": MODELS[MODEL]["status_history"],
                    "metrics": HISTORY_METRICS,
                    "snapshots": [1.0, 2.0],
                },
            )
        ]
        steps += [("metric", m) for m in LIVE_METRICS]
        steps += [("gpu", fake_cluster.GPU_EVENT)]
        steps += [
            ("snapshot", {"job_id": MODEL, "epoch": 3.0}),
            ("progress", {"job_id": MODEL, "progress": 0.6, "eta_seconds": 80, "epoch": 3.0}),
        ]
    elif job_id == DS_BUILDING:
        steps = [
            ("history", {"status": "Running", "progress": 0.42, "eta_seconds": 75}),
            ("progress", {"job_id": DS_BUILDING, "progress": 0.63, "eta_seconds": 41}),
        ]
    elif job_id == DS_RUNNING:
        steps = [
            (
                "history",
                {
                    "status": "Running",
                    "progress": 0.42,
                    "eta_seconds": 75,
                    "status_history": [["Initialized", NOW - 60], ["Running", NOW - 58]],
                },
            ),
            ("progress", {"job_id": DS_RUNNING, "progress": 0.9, "eta_seconds": 8}),
            ("status", {"job_id": DS_RUNNING, "type": "dataset", "name": "x", "status": "Done"}),
        ]
    else:
        steps = [
            ("history", {"status": DATASETS.get(job_id, {}).get("status", "Done"), "progress": 1.0})
        ]
    return ServerSentEvent(_events(steps))


@get("/index.json", sync_to_thread=False)
def index_json() -> dict[str, Any]:
    """DIGITS /index.json: datasets [{id, name, status}] and models."""
    return {
        "version": "reborn",
        "datasets": [
            {"id": DS_DONE, "name": "mnist-28", "status": "Done"},
            {"id": DS_RUNNING, "name": "cifar-small", "status": "Running"},
            {"id": "20261125-000000-dead", "name": "broken", "status": "Error"},
        ],
        "models": [{"id": MODEL, "name": "lenet-mnist", "status": "Running"}],
    }


@get("/completed_jobs.json", sync_to_thread=False)
def completed_jobs() -> dict[str, Any]:
    """DIGITS /completed_jobs.json: running jobs first, then finished datasets and models."""
    return _listing()


def _listing() -> dict[str, Any]:
    base = NOW - 600
    return {
        "running": [
            {
                "id": DS_RUNNING,
                "name": "cifar-small <b>bold?</b>",
                "status": "Running",
                "type": "dataset",
                "submitted": base - 1800,
                "progress": 0.42,
            },
            {
                "id": MODEL,
                "name": "lenet-mnist",
                "status": "Running",
                "type": "model",
                "submitted": base,
                "progress": 0.4,
                "loss_sparkline": [2.3, 1.6, 1.1, 0.8, 0.62, 0.5, 0.45, 0.41, 0.37, 0.36],
            },
        ],
        "datasets": [
            {
                "id": DS_DONE,
                "name": "mnist-28",
                "status": "Done",
                "type": "dataset",
                "submitted": base - 2700,
                "progress": 1.0,
            },
            {
                "id": DS_GONE,
                "name": "old-one",
                "status": "Aborted",
                "type": "dataset",
                "submitted": base - 90000,
            },
            {
                "id": DS_STALE,
                "name": "stale",
                "status": "Done",
                "type": "dataset",
                "submitted": base - 190000,
            },
        ],
        "models": [],
    }


@get("/datasets/{job_id:str}", sync_to_thread=False)
def show_dataset(request: Request, job_id: str) -> Template | Response[dict[str, Any]]:
    """HTML dataset page through the render function; `<id>.json` gives the DIGITS JSON."""
    if job_id.endswith(".json"):
        job = DATASETS.get(job_id.removesuffix(".json"))
        return Response(
            job or {"error": {"message": "Job not found."}}, status_code=200 if job else 404
        )
    return dataset_page(copy.deepcopy(DATASETS.get(job_id, {"id": job_id})), current_user(request))


@get("/models/{job_id:str}", sync_to_thread=False)
def show_model(request: Request, job_id: str) -> Template:
    """HTML model page through the render function."""
    return model_page(copy.deepcopy(MODELS.get(job_id, {"id": job_id})), current_user(request))


@get("/datasets/{job_id:str}/mean.jpg", sync_to_thread=False, media_type="image/png")
def mean_image(job_id: str) -> bytes:
    """A grey blob standing in for the mean image."""
    img = Image.new("L", (28, 28), 40)
    ImageDraw.Draw(img).ellipse([(6, 4), (22, 24)], fill=150)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@delete("/datasets/{job_id:str}", status_code=403, sync_to_thread=False)
def delete_dataset(job_id: str) -> Response[dict[str, Any]]:
    """DIGITS refusal: a dataset with dependent models cannot be deleted."""
    msg = "Cannot delete dataset because 1 model(s) depend on it: lenet-mnist"
    return Response({"error": {"message": msg, "type": "Forbidden"}}, status_code=403)


@post("/models/{job_id:str}/abort", status_code=200, sync_to_thread=False)
def abort_model(job_id: str) -> str:
    """Accept an abort."""
    return "Job aborted."


@put("/jobs/{job_id:str}", status_code=200)
async def edit_job(request: Request, job_id: str) -> Response[Any]:
    """DIGITS's rename/notes: blank name → 400 naming job_name; the page's dict changes."""
    form = await request.form()
    job = DATASETS.get(job_id) or MODELS.get(job_id)
    if job is None:
        return Response({"error": {"message": "Job not found"}}, status_code=404)
    if "job_name" in form:
        if not str(form["job_name"]).strip():
            return Response({"errors": {"job_name": ["name cannot be blank"]}}, status_code=400)
        job["name"] = str(form["job_name"]).strip()
    if "job_notes" in form:
        job["notes"] = str(form["job_notes"]).strip()
    kind = "Dataset" if job_id in DATASETS else "Model"
    return Response(f"Image Classification {kind} updated.", media_type="text/plain")


MODEL_LOG = "\n".join(
    [
        "2026-11-27 11:00:02 [trainer  ] attempt 1 of 20261127-110000-e5f6 on node-1 "
        "(node-1/cpu0, 2 threads)",
        "2026-11-27 11:00:04 [info     ] data loaded                    train=45000 val=15000",
        *(
            f"2026-11-27 11:0{e}:30 [info     ] epoch {e} validation: loss 0.{9 - e}12, acc 0.9{e}"
            for e in range(1, 4)
        ),
        "2026-11-27 11:03:31 [info     ] epoch 3 snapshot saved",
        "",
    ]
)


@get("/models/{job_id:str}/log", sync_to_thread=False, media_type="text/plain")
def model_log(job_id: str) -> Response[str]:
    """The raw log of the sample model; 404 with the reason for any other job."""
    if job_id != MODEL:
        return Response("No training log yet: the job has not started training", status_code=404)
    return Response(MODEL_LOG, media_type="text/plain")


def _sample_png() -> str:
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).line([(14, 4), (14, 24)], fill=255, width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@get("/test/classify", sync_to_thread=False)
def classify_result(request: Request) -> Template:
    """Classify-one result for a sample image."""
    preds = [["1", 97.12], ["7", 2.01], ["4", 0.5], ["9", 0.25], ["2", 0.12]]
    return classify_one_page(MODELS[MODEL], preds, _sample_png(), current_user(request))


@get("/test/dataset-errors", sync_to_thread=False)
def dataset_errors(request: Request) -> Template:
    """New-dataset form re-rendered after a refused POST."""
    return dataset_new_page(
        {
            "dataset_name": "mine",
            "folder_train": "/etc",
            "folder_pct_val": 120,
            "resize_channels": "1",
            "resize_mode": "crop",
        },
        {
            "folder_train": ["Folder is outside the data roots"],
            "folder_pct_val": ["Must be between 0 and 100"],
        },
        current_user(request),
    )


@get("/test/model-errors", sync_to_thread=False)
def model_errors(request: Request) -> Template:
    """New-model form re-rendered after a refused POST (datasets passed by the gateway)."""
    return model_new_page(
        {"dataset": DS_DONE, "model_name": "", "learning_rate": "-1", "solver_type": "ADAM"},
        {"model_name": ["This field is required."], "learning_rate": ["Must be positive"]},
        [{"id": DS_DONE, "name": "mnist-28", "status": "Done"}],
        current_user(request),
    )


class FakeAuth:
    """The principal from the session cookie, as the real auth middleware sets it (the real one
    reads the accounts' read model; here they are the test accounts' fixed table)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            claims = session_claims(scope.get("session"), 3600)
            name = claims[0] if claims else ""
            scope["user"] = Principal(username=name, role=ROLES[name]) if name in ROLES else None
        await self.app(scope, receive, send)


@post("/login", status_code=302)
async def login(request: Request) -> Response[Any]:
    """The real route's contract: a right pair signs in and goes to `next`, else 401 + form."""
    form = await request.form()
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    if PASSWORDS.get(name) != password or not password:
        return login_page(target, "Wrong username or password", status_code=401)
    start_session(request, Account(username=name, role=ROLES[name], password_hash=""))
    return Redirect(path=target)


def sign_in(page: Any, site: str, name: str) -> None:
    """Sign a Playwright page in through the login form, with the account's password. It comes
    back to the login page (`next`), which needs nothing a stand-in site may lack."""
    page.goto(f"{site}/login?next=/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{site}/login")


@get("/test/login-error", sync_to_thread=False)
def login_error() -> Template:
    """Login form re-rendered with an error."""
    return login_page("/models/" + MODEL, "Wrong username or password")


# What /api/v1/status says: the degraded banner of every signed-in page polls it.
STATUS: dict[str, Any] = {"ready": True, "components": [], "notices": [], "checked_at": 0.0}


@get("/api/v1/status", sync_to_thread=False)
def system_status() -> dict[str, Any]:
    """The system's readiness now (tests/web/test_degraded_banner.py drives the real one)."""
    return STATUS


SESSIONS = CookieBackendConfig(secret=os.urandom(32), key="session", samesite="lax")


def _extra_routes() -> list[Any]:
    """Routes of the per-area fake modules (imported late: they may read this module's data)."""
    from tests.web import (
        fake_admin,
        fake_compare,
        fake_datasets,
        fake_hardware,
        fake_home,
        fake_modelpage,
        fake_results,
    )

    areas = (fake_home, fake_results, fake_modelpage, fake_compare, fake_hardware, fake_datasets)
    areas += (fake_admin,)
    return [route for area in areas for route in area.ROUTES]


def build_app() -> Litestar:
    """The stand-in gateway app, configured like the real one (templates, /static)."""
    return Litestar(
        route_handlers=[
            *page_routes,
            login,
            all_events,
            job_events,
            index_json,
            completed_jobs,
            show_dataset,
            show_model,
            mean_image,
            delete_dataset,
            abort_model,
            edit_job,
            model_log,
            classify_result,
            dataset_errors,
            model_errors,
            login_error,
            system_status,
            *fake_cluster.ROUTES,
            *_extra_routes(),
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine),
        middleware=[SESSIONS.middleware, FakeAuth],
        # The real gateway's headers, CSP included: every browser test runs under them.
        before_send=[headers_hook(import_map())],
    )


@contextmanager
def serve() -> Iterator[str]:
    """Run the app with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(), log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake site did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
