"""DIGITS's dataset routes: create (JSON or form), show, mean image, summary, abort, delete."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.response import File, Redirect

from digits_gateway import commands, idempotency, ui, views
from digits_gateway.controllers._common import require_user, text
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, JobNotFound, rejected_errors
from digits_gateway.forms import FormErrors
from digits_gateway.params import read_params, strip_json, username, wants_json
from digits_gateway.readmodel import queries
from digits_proto.base import BlobRef
from digits_proto.runtime import fetch

NEW_FORM = "/datasets/images/classification/new"


class DatasetController(Controller):
    """`/datasets/...` (DIGITS's blueprint `digits.dataset`)."""

    path = "/datasets"

    @post(["/images/classification", "/images/classification.json"], status_code=200)
    async def create_dataset(self, request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
        """JSON: `{id, name, status}`; form: 302 to the dataset page, or the form with errors."""
        params = await read_params(request)
        as_json = wants_json(request)
        pages = None if as_json else ui.pages()
        if pages is not None and not username(request, params):
            return ui.login_redirect(request, NEW_FORM)
        user = require_user(request, params)
        try:
            key = idempotency.from_params(request, params, "dataset")
            accepted = await commands.create_dataset(gw, params.values, user, params.files, key)
        except (FormErrors, CommandRejected) as e:
            if pages is None or (isinstance(e, CommandRejected) and e.code != 400):
                raise
            errors = e.errors if isinstance(e, FormErrors) else rejected_errors(e)
            return pages.dataset_new_page(params.values, errors, user.username)  # type: ignore[no-any-return]
        if as_json:
            return Response(
                {"id": accepted.id, "name": accepted.name, "status": str(accepted.status)}
            )
        return Redirect(path=f"/datasets/{accepted.id}")

    @get("/summary")
    async def dataset_summary(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[Any]:
        """The dataset summary shown on model pages (JSON, or a small HTML fragment)."""
        job = commands.find_job(gw, job_id, "dataset")
        with gw.db.cursor() as cur:
            data = views.dataset(cur, job)
        keys = ("id", "name", "status", "image dimensions", "resize_mode", "labels")
        brief = {k: data[k] for k in keys}
        brief["entries"] = {t["split"]: t["entries"] for t in data["CreateDbTasks"]}
        if wants_json(request):
            return Response(brief)
        h, w, c = data["image dimensions"]
        rows = "".join(
            f"<dt>{split}</dt><dd>{n if n is not None else '…'} images</dd>"
            for split, n in brief["entries"].items()
        )
        html = (
            f'<dl class="dataset-summary"><dt>Dataset</dt><dd>{_esc(job.name)}</dd>'
            f"<dt>Status</dt><dd>{job.status}</dd><dt>Image size</dt><dd>{w}×{h}, "
            f"{'grayscale' if c == 1 else 'color'}</dd>{rows}</dl>"
        )
        return Response(html, media_type=MediaType.HTML)

    @get("/{job_id:str}")
    async def get_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[Any]:
        """`/datasets/<id>.json` (DIGITS's keys, dims not swapped) or the dataset page."""
        job = commands.find_job(gw, strip_json(job_id), "dataset")
        with gw.db.cursor() as cur:
            data = views.dataset(cur, job)
        pages = None if wants_json(request) else ui.pages()
        if pages is None:
            return Response(data)
        return pages.dataset_page(data, username(request))  # type: ignore[no-any-return]

    @get("/{job_id:str}/mean.jpg")
    async def mean_image(self, gw: Gateway, job_id: str) -> File:
        """The train split's mean image, from the Object Store (cached locally by digest)."""
        return await mean_jpg(gw, job_id)

    @delete("/{job_id:str}", status_code=200)
    async def delete_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job deleted." (403 while models depend on it)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.delete_job(gw, strip_json(job_id), user, "dataset", key)
        return text("Job deleted.")

    @post("/{job_id:str}/abort", status_code=200)
    async def abort_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job aborted." (403 when not running)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.abort_job(gw, strip_json(job_id), user, "dataset", key)
        return text("Job aborted.")


async def mean_jpg(gw: Gateway, job_id: str) -> File:
    """A dataset's mean.jpg fetched from the Object Store; 404 before the build made it."""
    commands.find_job(gw, job_id, "dataset")
    with gw.db.cursor() as cur:
        details = queries.dataset_details(cur, job_id)
    if not details.mean_jpg:
        raise JobNotFound("No mean image yet")
    path = await fetch(gw.js, BlobRef(**details.mean_jpg), gw.settings.cache_dir)
    return File(path, media_type="image/jpeg", content_disposition_type="inline")


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
