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
from digits_gateway.forms import FormErrors
from digits_proto.base import is_job_id


@get("/index.json", sync_to_thread=True)
def index_json(gw: Gateway) -> dict[str, Any]:
    """`{version, jobs_dir, datasets: [{id, name, status}], models: [model json]}`."""
    with gw.db.cursor() as cur:
        return views.index(cur, gw.settings.data_dir)


MAX_IDS = 500


@get("/completed_jobs.json", sync_to_thread=True)
def completed_jobs_json(gw: Gateway, ids: str | None = None) -> dict[str, Any]:
    """`{running, datasets, models, pretrained_models, model_output_fields}` (home tables);
    `?ids=<id>,<id>` keeps only those jobs (400 naming `ids` past MAX_IDS or for a bad id)."""
    wanted = None
    if ids is not None:
        wanted = [i for i in ids.split(",") if i]
        if len(wanted) > MAX_IDS or not all(is_job_id(i) for i in wanted):
            raise FormErrors({"ids": [f"up to {MAX_IDS} job ids, separated by commas"]})
    with gw.db.cursor() as cur:
        return views.completed_jobs(cur, wanted)
