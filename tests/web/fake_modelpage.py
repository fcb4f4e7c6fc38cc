"""Fake routes of the stand-in gateway for the model page (see fake_site.build_app).

Two more models: MANY, 59 of 60 epochs trained with a snapshot each (the defaults, the snapshot
select, the numbers: epoch 59.33333, a loss stored as -1.43e-6 before the trainer clamped it);
FRESH, a run without a snapshot yet whose stream a test drives: `POST /test/modelpage/events`
hands an event to every open FRESH stream, so a snapshot arrives while the page is open.
The main MODEL's metric points gain `occurred` here, as the real gateway sends them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar import get, post
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from tests.web import fake_site

MANY = "20261127-130000-a060"
FRESH = "20261127-140000-f0e5"
MANY_EPOCHS = list(range(1, 60))
STREAM_IDLE_S = 30.0  # a FRESH stream with nothing to send for this long ends

_STARTED = fake_site.NOW - 3600


def _model(job_id: str, name: str, snapshots: list[int]) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": name,
        "status": "Running",
        "dataset_id": fake_site.DS_DONE,
        "job id": job_id,
        "creation time": _STARTED,
        "username": "alice",
        "image dimensions": [28, 28, 1],
        "framework": "mxnet",
        "snapshots": snapshots,
        "train_epochs": 60,
        "image resize mode": "squash",
        "mean subtraction": "image",
        "network": "lenet",
        "progress": len(snapshots) / 60,
        "eta": 40,
        "status_history": [["Initialized", _STARTED], ["Running", _STARTED + 2]],
    }


fake_site.MODELS[MANY] = _model(MANY, "lenet-60-epochs", MANY_EPOCHS)
fake_site.MODELS[FRESH] = _model(FRESH, "fresh-run", [])

# MODEL's points as the real gateway sends them: each with `occurred`, when it was measured
# (epoch seconds), here 2 s an iteration over the last ten minutes, val 1.5 s after its train.
MODEL_RUN_START = fake_site.NOW - 600
for _point in fake_site.HISTORY_METRICS + fake_site.LIVE_METRICS:
    _point["occurred"] = (
        MODEL_RUN_START + 2 * _point["iteration"] + (1.5 if _point["phase"] == "val" else 0)
    )

# The real history's metric points ({seq, epoch, iteration, phase, values, occurred}).
MANY_METRICS = [
    {
        "seq": 1,
        "epoch": 59.0,
        "iteration": 5900,
        "phase": "val",
        "values": {"loss": 3.2e-7, "accuracy": 1.0},
        "occurred": fake_site.NOW - 20.0,
    },
    {
        "seq": 2,
        "epoch": 59.33333333333333,
        "iteration": 5933,
        "phase": "train",
        "values": {"loss": -1.4305115e-06, "learning_rate": 0.000769},
        "occurred": fake_site.NOW - 5.0,
    },
]


def _history(job_id: str, epoch: float, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    job = fake_site.MODELS[job_id]
    return {
        "job_id": job_id,
        "status": "Running",
        "progress": epoch / 60,
        "eta_seconds": 40,
        "epoch": epoch,
        "status_history": job["status_history"],
        "status_notes": ["", ""],
        "metrics": metrics,
        "snapshots": [float(e) for e in job["snapshots"]],
    }


@get(f"/jobs/{MANY}/events", sync_to_thread=False)
def many_events() -> ServerSentEvent:
    """MANY's stream: its history, nothing after."""
    return ServerSentEvent(
        fake_site._events([("history", _history(MANY, 59.33333333333333, MANY_METRICS))])
    )


_listeners: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []


def _fresh_stream() -> AsyncIterator[ServerSentEventMessage]:
    first = ("history", _history(FRESH, 0.5, []))
    return fake_site.pushed_stream(first, _listeners, STREAM_IDLE_S)


@get(f"/jobs/{FRESH}/events", sync_to_thread=False)
def fresh_events() -> ServerSentEvent:
    """FRESH's stream: its history (no snapshot), then what the test pushes."""
    return ServerSentEvent(_fresh_stream())


@post("/test/modelpage/events", status_code=200)
async def push_event(data: dict[str, Any]) -> dict[str, int]:
    """Hand `{"kind", "payload"}` to every open FRESH stream; says how many got it."""
    for queue in _listeners:
        queue.put_nowait((str(data["kind"]), {"job_id": FRESH, **data["payload"]}))
    return {"listeners": len(_listeners)}


ROUTES: list[Any] = [many_events, fresh_events, push_event]
