"""`/jobs/<id>`: DIGITS's type-agnostic job routes (status, redirect, abort, delete)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.response import Redirect

from digits_gateway import commands, idempotency, views
from digits_gateway.controllers._common import require_user, text
from digits_gateway.deps import Gateway
from digits_gateway.params import read_params, strip_json
from digits_gateway.readmodel import queries


@get(["/jobs/{job_id:str}/status", "/datasets/{job_id:str}/status", "/models/{job_id:str}/status"])
async def job_status(gw: Gateway, job_id: str) -> dict[str, Any]:
    """`{"status", "type", "name", "error"}`; always 200, `{"error": "Job not found."}` if unknown."""
    with gw.db.cursor() as cur:
        return views.status(queries.get_job(cur, strip_json(job_id)))


def tags_param(value: Any) -> list[str] | None:
    """`job_tags` as sent: absent → None (unchanged); a JSON list, or text split at commas."""
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split(",")


class JobController(Controller):
    """Routes that accept a dataset or a model id alike."""

    path = "/jobs"

    @get("/{job_id:str}", status_code=302)
    async def show_job(self, gw: Gateway, job_id: str) -> Redirect:
        """302 to the dataset or model page."""
        suffix = ".json" if job_id.endswith(".json") else ""
        job = commands.find_job(gw, strip_json(job_id))
        return Redirect(path=f"/{job.type}s/{job.id}{suffix}")

    @delete("/{job_id:str}", status_code=200)
    async def delete_job(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job deleted." (404 unknown, 403 not the owner or models depend on it)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.delete_job(gw, strip_json(job_id), user, key=key)
        return text("Job deleted.")

    @put("/{job_id:str}", status_code=200)
    async def edit_job(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """DIGITS's edit: `job_name`, `job_notes` and/or `job_tags` (comma-separated, or a
        JSON list; "" clears) → "<job type> updated." (404 unknown, 403 not the owner, 400
        naming `job_name` when it is blank or `job_tags` when a tag is refused)."""
        params = await read_params(request)
        user = require_user(request, params)
        job, _ = await commands.edit_job(
            gw,
            strip_json(job_id),
            user,
            params.get("job_name"),
            params.get("job_notes"),
            tags_param(params.values.get("job_tags")),
        )
        return text(f"{views.JOB_TYPES.get(job.type, 'Job')} updated.")

    @post("/{job_id:str}/abort", status_code=200)
    async def abort_job(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job aborted." (404 unknown, 403 not running)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.abort_job(gw, strip_json(job_id), user, key=key)
        return text("Job aborted.")
