"""Fake routes of the stand-in gateway for the compare pages (see fake_site.build_app).

Three runs of a learning-rate / batch-size sweep (group "lr-sweep"); the JSON is shaped by the
real gateway's own functions (controllers.compare), so the page reads what production sends.
RUN_C trains on: each poll of the JSON adds an epoch until it completes.
"""

from __future__ import annotations

import math
import time
from typing import Any

from litestar import Request, get
from litestar.response import Response, Template

from digits_gateway.controllers import compare
from digits_gateway.forms import FormErrors
from digits_gateway.pages import current_user
from tests.web import fake_site

RUN_A = "20261201-090000-aaaa"
RUN_B = "20261201-091000-bbbb"
RUN_C = "20261201-092000-cccc"
GROUP = "lr-sweep"
SPEC = {
    "method": "standard",
    "standard_network": "lenet",
    "solver_type": "SGD",
    "lr_policy": "step",
    "lr_step_size": 33.0,
    "lr_step_gamma": 0.1,
    "train_epochs": 6,
    "momentum": 0.9,
    "use_mean": "image",
    "shuffle": True,
    "val_interval": 1.0,
    "snapshot_interval": 1.0,
    "select_gpu_count": 1,
}
RUNS: dict[str, dict[str, Any]] = {
    RUN_A: {"name": "sweep lr=0.1 bs=32", "lr": 0.1, "batch": 32, "acc": 0.91, "epochs": 6},
    RUN_B: {"name": "sweep lr=0.01 bs=64", "lr": 0.01, "batch": 64, "acc": 0.97, "epochs": 6},
    RUN_C: {"name": "sweep lr=0.001 bs=32", "lr": 0.001, "batch": 32, "acc": 0.83, "epochs": 3},
}
POLLS = {"count": 0}
NOW = time.time()


def _series(run: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Train points every 0.25 epoch (4 iterations of 25), one val point per epoch."""
    rate = 0.3 + 4 * run["lr"]
    train: dict[str, Any] = {
        "epoch": [],
        "iteration": [],
        "time": [],
        "values": {"loss": [], "learning_rate": []},
    }
    for step in range(1, epochs * 4 + 1):
        epoch = step / 4
        train["epoch"].append(epoch)
        train["iteration"].append(step * 25)
        train["time"].append(NOW + step * run["batch"] / 2)  # bigger batches: slower steps
        wobble = 0.08 * math.sin(step * 1.7)  # noise for the smoothing to smooth
        train["values"]["loss"].append(round(2.3 * math.exp(-rate * epoch) + 0.05 + wobble, 4))
        train["values"]["learning_rate"].append(run["lr"])
    val: dict[str, Any] = {
        "epoch": [],
        "iteration": [],
        "time": [],
        "values": {"loss": [], "accuracy": []},
    }
    for e in range(1, epochs + 1):
        val["epoch"].append(float(e))
        val["iteration"].append(e * 100)
        val["time"].append(NOW + e * 4 * run["batch"] / 2 + 1)
        val["values"]["loss"].append(round(2.0 * math.exp(-rate * e) + 0.1, 4))
        val["values"]["accuracy"].append(round(run["acc"] * (1 - 0.5 * math.exp(-e)), 4))
    return {"train": train, "val": val}


def _run(run_id: str) -> dict[str, Any]:
    run = RUNS[run_id]
    epochs = min(6, run["epochs"] + (3 * POLLS["count"] if run_id == RUN_C else 0))
    done = epochs >= 6
    series = _series(run, epochs)
    settings = {key: None for key, _ in compare.SETTINGS}
    settings.update({k: v for k, v in SPEC.items() if k in settings})
    settings.update(
        network="lenet", dataset="mnist-28", learning_rate=run["lr"], batch_size=run["batch"]
    )
    return {
        "id": run_id,
        "name": run["name"],
        "status": "Done" if done else "Running",
        "username": "alice",
        "group": GROUP,
        "created": "2026-12-01T09:00:00+00:00",
        "duration_seconds": 60.0 * epochs,
        "finished": done,
        "url": f"/models/{run_id}",
        "settings": settings,
        "summary": compare.summary(series),
        "metrics": series,
    }


def _columns(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The fake model page's metric events as /api/v1/compare's columns."""
    out: dict[str, Any] = {}
    for p in sorted(points, key=lambda p: p["iteration"]):
        s = out.setdefault(p["phase"], {"epoch": [], "iteration": [], "time": [], "values": {}})
        n = len(s["epoch"])
        s["epoch"].append(p["epoch"])
        s["iteration"].append(p["iteration"])
        s["time"].append(NOW + p["iteration"])
        for name, value in p["values"].items():
            s["values"].setdefault(name, [None] * n).append(value)
        for column in s["values"].values():
            column.extend([None] * (n + 1 - len(column)))
    return out


def _home_run(run_id: str) -> dict[str, Any]:
    """The home page's two models (lenet-mnist training, fresh-model queued), so its
    Compare button leads somewhere real."""
    training = run_id == fake_site.MODEL
    series = _columns(fake_site.HISTORY_METRICS + fake_site.LIVE_METRICS) if training else {}
    settings = {key: None for key, _ in compare.SETTINGS}
    settings.update({k: v for k, v in SPEC.items() if k in settings})
    settings.update(
        network="lenet" if training else "alexnet", dataset="mnist-28", learning_rate=0.01
    )
    return {
        "id": run_id,
        "name": "lenet-mnist" if training else "fresh-model",
        "status": "Running" if training else "Initialized",
        "username": "alice",
        "group": "",
        "created": "2026-11-27T11:00:00+00:00",
        "duration_seconds": 597.0 if training else None,
        "finished": False,
        "url": f"/models/{run_id}",
        "settings": settings,
        "summary": compare.summary(series),
        "metrics": series,
    }


HOME_RUNS = (fake_site.MODEL, fake_site.NEW_MODEL)


def fake_view(ids: str | None, group: str | None) -> dict[str, Any]:
    """/api/v1/compare's shape (compare.compare_view) over the fake runs."""
    wanted = compare.requested_ids(ids, group)
    if wanted is None:
        wanted = list(RUNS) if (group or "").strip() == GROUP else []
    runs = [_run(i) if i in RUNS else _home_run(i) for i in wanted if i in (*RUNS, *HOME_RUNS)]
    runs.sort(key=lambda r: -(r["summary"]["best_val_accuracy"] or -math.inf))
    best = runs[0]["id"] if runs and runs[0]["summary"]["best_val_accuracy"] else None
    return {
        "group": group.strip() if group is not None else None,
        "runs": runs,
        "missing": [i for i in wanted if i not in (*RUNS, *HOME_RUNS)],
        "max_runs": compare.MAX_RUNS,
        "best_run": best,
        "finished": all(r["finished"] for r in runs),
        "settings": compare.settings_table(runs),
    }


@get("/api/v1/compare", sync_to_thread=False)
def compare_json(ids: str | None = None, group: str | None = None) -> Response[Any]:
    """The comparison JSON; each call moves RUN_C one epoch on (a run training)."""
    try:
        view = fake_view(ids, group)
    except FormErrors as e:
        return Response({"errors": e.errors}, status_code=400)
    POLLS["count"] += 1
    return Response(view)


@get("/models/compare", sync_to_thread=False)
def compare_page(request: Request, ids: str | None = None, group: str | None = None) -> Template:
    """The page, rendered by the real render function."""
    try:
        view = fake_view(ids, group)
    except FormErrors as e:
        error = " ".join(m for messages in e.errors.values() for m in messages)
        return compare.compare_page_template(
            current_user(request), ids or "", group, [], [], error, status_code=400
        )
    return compare.compare_page_template(
        current_user(request), ids or "", group, view["runs"], view["missing"], ""
    )


ROUTES: list[Any] = [compare_json, compare_page]
