"""A tiny stand-in gateway for the new-model form: the real page routes and visualize-lr, plus
fake JSON for datasets, earlier models, `/models/customize` and `/models/visualize-network`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from digits_gateway.controllers.lr_preview import visualize_lr
from digits_gateway.errors import EXCEPTION_HANDLERS
from digits_gateway.pages import (
    STATIC_DIR,
    TEMPLATES_DIR,
    current_user,
    model_new_page,
    page_routes,
)
from tests.web import fake_site

DS_GRAY = "20261127-101500-a1b2"
DS_COLOR = "20261127-103000-c3d4"
PREV = "20261127-110000-e5f6"
LENET_SOURCE = (
    "from mxnet.gluon import nn\n\n\ndef build_network(classes, input_shape):\n"
    "    net = nn.HybridSequential()\n    net.add(nn.Conv2D(20, 5), nn.MaxPool2D(2, 2))\n"
    "    net.add(nn.Dense(500, activation='relu'), nn.Dense(classes))\n    return net\n"
)
DATASETS = {
    DS_GRAY: {
        "id": DS_GRAY,
        "name": "mnist-28",
        "status": "Done",
        "resize_mode": "squash",
        "ParseFolderTasks": [{"label_count": 10, "train_count": 3750, "val_count": 1250}],
        "CreateDbTasks": [{"image_width": 28, "image_height": 28, "image_channels": 1}],
    },
    DS_COLOR: {
        "id": DS_COLOR,
        "name": "cifar-32",
        "status": "Done",
        "resize_mode": "crop",
        "ParseFolderTasks": [{"label_count": 3, "train_count": 300, "val_count": 100}],
        "CreateDbTasks": [{"image_width": 32, "image_height": 32, "image_channels": 3}],
    },
}
SAVED_FORM = {
    "dataset": DS_COLOR,
    "model_name": "resnet-cifar",
    "method": "previous",
    "previous_networks": PREV,
    f"{PREV}-snapshot": "2",
    "solver_type": "RMSPROP",
    "rms_decay": "0.9",
    "learning_rate": "0.05",
    "lr_policy": "poly",
    "lr_poly_power": "2",
    "aug_flip": "fliplr",
    "aug_hsv_use": "0,1",
    "shuffle": "0",
    "train_epochs": "12",
}
customize_calls: list[dict[str, str]] = []
visualize_calls: list[dict[str, str]] = []


def graph_for(source: str, classes: int) -> dict[str, Any]:
    """A fake graph: one node per `nn.` layer in the source (enough to see it drawn)."""
    ops = [part.split("(")[0] for part in source.split("nn.")[1:] if "(" in part]
    ops = [op for op in ops if op != "HybridSequential"] or ["Dense"]
    nodes = [{"id": 0, "name": "data", "op": "null", "shape": [1, 1, 28, 28], "params": 0}]
    for i, op in enumerate(ops, 1):
        shape = [1, classes] if i == len(ops) else [1, 20 * i, 12, 12]
        nodes.append(
            {"id": i, "name": f"{op.lower()}{i}", "op": op, "shape": shape, "params": 520 * i}
        )
    edges = [[i, i + 1] for i in range(len(nodes) - 1)]
    return {"nodes": nodes, "edges": edges, "total_params": sum(n["params"] for n in nodes)}


@get("/index.json", sync_to_thread=False)
def index_json() -> dict[str, Any]:
    """Datasets, and models of which one has snapshots (a previous network)."""
    return {
        "datasets": [{"id": k, "name": v["name"], "status": "Done"} for k, v in DATASETS.items()],
        "models": [
            {
                "id": PREV,
                "name": "lenet-mnist",
                "status": "Done",
                "network": "lenet",
                "snapshots": [1, 2, 3],
            },
            {
                "id": "20261127-111111-0000",
                "name": "no-snaps",
                "status": "Running",
                "snapshots": [],
            },
        ],
    }


@get("/datasets/{job_id:str}", sync_to_thread=False)
def dataset_json(job_id: str) -> Response[dict[str, Any]]:
    """`/datasets/<id>.json`."""
    job = DATASETS.get(job_id.removesuffix(".json"))
    return Response(
        job or {"error": {"message": "Job not found."}}, status_code=200 if job else 404
    )


@get("/models/{job_id:str}", sync_to_thread=False)
def model_json(job_id: str) -> Response[dict[str, Any]]:
    """`/models/<id>.json` with the saved form (for clone)."""
    if job_id.removesuffix(".json") != PREV:
        return Response({"error": {"message": "Job not found."}}, status_code=404)
    return Response({"id": PREV, "name": "lenet-mnist", "form": SAVED_FORM, "snapshots": [1, 2, 3]})


@post("/models/customize", status_code=200)
async def customize(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The trainer's Gluon source of a standard network or a previous job."""
    form = dict(await request.form())
    customize_calls.append(form)
    network = form.get("network", "")
    if network not in ("lenet", "alexnet", "googlenet", "resnet18", PREV):
        return Response({"errors": {"network": ["Not a valid choice"]}}, status_code=400)
    return Response({"network": f"# {network}\n" + LENET_SOURCE})


@post("/models/visualize-network", status_code=200)
async def visualize_network(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """A graph of the source, or the trainer's 400 naming the failing line."""
    form = dict(await request.form())
    visualize_calls.append(form)
    source = form.get("custom_network", "")
    for number, line in enumerate(source.split("\n"), 1):
        if "oops" in line:
            msg = f"NameError: name 'oops' is not defined (line {number})"
            return Response({"errors": {"custom_network": [msg]}}, status_code=400)
    classes = DATASETS.get(form.get("dataset_id", ""), {}).get("ParseFolderTasks", [{}])[0]
    return Response(graph_for(source, classes.get("label_count", 10)))


@get("/test/model-form-errors", sync_to_thread=False)
def model_form_errors(request: Request[Any, Any, Any]) -> Template:
    """The form re-rendered after a refused submit: custom tab, multistep, HSV ticked."""
    values = {
        "dataset": DS_GRAY,
        "method": "custom",
        "custom_network": "oops\n",
        "lr_policy": "multistep",
        "lr_multistep_values": "20,x",
        "aug_hsv_use": "0,1",
        "shuffle": "0",
        "solver_type": "RMSPROP",
    }
    errors = {
        "custom_network": ["NameError: name 'oops' is not defined (line 1)"],
        "lr_multistep_values": ["Not a valid float value: 'x'."],
    }
    return model_new_page(values, errors, [], current_user(request))


def build_app() -> Litestar:
    """The stand-in app, configured like the real gateway (templates, /static, error bodies)."""
    return Litestar(
        route_handlers=[
            *page_routes,
            index_json,
            dataset_json,
            model_json,
            customize,
            visualize_network,
            visualize_lr,
            model_form_errors,
            fake_site.login,
            fake_site.system_status,
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[fake_site.SESSIONS.middleware, fake_site.FakeAuth],
    )


@contextmanager
def serve() -> Iterator[str]:
    """Run the app with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(build_app(), log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake site did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
