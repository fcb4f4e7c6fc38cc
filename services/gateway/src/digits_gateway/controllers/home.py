"""DIGITS's home data: `/index.json` and `/completed_jobs.json`.

Both list every job, so they are built in a worker thread (a cursor of its own, DuckDB's way
for threads): the event loop meanwhile projects events and answers small reads, none of which
waits for a long list to be built.
"""

from __future__ import annotations

from typing import Any

from litestar import get

from digits_gateway import views
from digits_gateway.deps import Gateway


@get("/index.json", sync_to_thread=True)
def index_json(gw: Gateway) -> dict[str, Any]:
    """`{version, jobs_dir, datasets: [{id, name, status}], models: [model json]}`."""
    with gw.db.cursor() as cur:
        return views.index(cur, gw.settings.data_dir)


@get("/completed_jobs.json", sync_to_thread=True)
def completed_jobs_json(gw: Gateway) -> dict[str, Any]:
    """`{running, datasets, models, pretrained_models, model_output_fields}` (home tables)."""
    with gw.db.cursor() as cur:
        return views.completed_jobs(cur)
