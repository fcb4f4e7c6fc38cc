"""DIGITS's model routes: create (sweeps too), show, classify one, abort, delete."""

from __future__ import annotations

import base64
from typing import Any

from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.response import Redirect

from digits_gateway import commands, idempotency, inference, joblogs, ui, views
from digits_gateway.controllers._common import require_user, text
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, JobNotFound, rejected_errors
from digits_gateway.forms import FormErrors
from digits_gateway.params import Params, read_params, strip_json, username, wants_json
from digits_gateway.readmodel import queries

NEW_FORM = "/models/images/classification/new"
IMAGE_TYPES = {
    b"\x89PNG": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF8": "image/gif",
    b"BM": "image/bmp",
}


class ModelController(Controller):
    """`/models/...` (DIGITS's blueprint `digits.model`)."""

    path = "/models"

    @post(["/images/classification", "/images/classification.json"], status_code=200)
    async def create_model(self, request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
        """One job: its model json; a sweep: `{"jobs": [...]}`; forms: 302 or the form again."""
        params = await read_params(request)
        as_json = wants_json(request)
        pages = None if as_json else ui.pages()
        if pages is not None and not username(request, params):
            return ui.login_redirect(request, NEW_FORM)
        user = require_user(request, params)
        try:
            key = idempotency.from_params(request, params, "model")
            accepted = await commands.create_models(gw, params.values, user, key)
        except (FormErrors, CommandRejected) as e:
            if pages is None or (isinstance(e, CommandRejected) and e.code != 400):
                raise
            errors = e.errors if isinstance(e, FormErrors) else rejected_errors(e)
            return pages.model_new_page(  # type: ignore[no-any-return]
                params.values, errors, _dataset_choices(gw), user.username
            )
        if not as_json:
            return Redirect(path=f"/models/{accepted[0].id}" if len(accepted) == 1 else "/")
        with gw.db.cursor() as cur:
            jobs = [views.model(cur, j) for a in accepted if (j := queries.get_job(cur, a.id))]
        return Response(jobs[0] if len(jobs) == 1 else {"jobs": jobs})

    @post(
        ["/images/classification/classify_one", "/images/classification/classify_one.json"],
        status_code=200,
    )
    async def classify_one(self, request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
        """`{"predictions": [[label, percent], ...]}` (top 5), or the Classify One page."""
        params = await read_params(request)
        job_id = params.get("job_id") or ""
        if not job_id:
            raise FormErrors({"job_id": ["This field is required."]})
        image = await _image(gw, params)
        result = await commands.classify_one(
            gw,
            job_id,
            image,
            commands.snapshot_epoch(params.values),
            visualize=bool(params.get("show_visualizations")),
            principal=require_user(request),
        )
        predictions = [[label, pct] for label, pct in result.predictions]
        visuals = await inference.visualizations(gw, result)
        extra = inference.visualizations_json(visuals) if visuals is not None else {}
        pages = None if wants_json(request) else ui.pages()
        if pages is None:
            return Response(
                {"predictions": predictions, "snapshot_epoch": result.snapshot_epoch, **extra}
            )
        with gw.db.cursor() as cur:
            data = views.model_like(cur, commands.find_job(gw, job_id, commands.CLASSIFIERS))
        return pages.classify_one_page(  # type: ignore[no-any-return]
            data,
            predictions,
            _data_url(image),
            username(request, params),
            extra or None,
            snapshot_epoch=result.snapshot_epoch,
        )

    @get("/{job_id:str}")
    async def get_model(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[Any]:
        """`/models/<id>.json` (DIGITS's model json_dict) or the model page."""
        job = commands.find_job(gw, strip_json(job_id), commands.CLASSIFIERS)
        if job.type == "pretrained_model":  # the classify pages link "back to the model" here
            if wants_json(request):
                raise JobNotFound()
            return Redirect(path=f"/pretrained_models/{job.id}")
        with gw.db.cursor() as cur:
            data = views.model(cur, job)
        pages = None if wants_json(request) else ui.pages()
        if pages is None:
            return Response(data)
        return pages.model_page(data, username(request))  # type: ignore[no-any-return]

    @get("/{job_id:str}/log")
    async def model_log(self, gw: Gateway, job_id: str) -> Response[bytes]:
        """The raw training log as text (DIGITS's "Raw output"): every attempt, in order; live
        while a trainer runs the job."""
        job = commands.find_job(gw, job_id, "model")
        data = await joblogs.model_log(gw, job.id, job.running)
        if data is None:
            raise JobNotFound(f"No training log yet: job {job.id} has not started training")
        return Response(data, media_type=MediaType.TEXT, headers={"Cache-Control": "no-store"})

    @delete("/{job_id:str}", status_code=200)
    async def delete_model(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job deleted." (403 when another user owns it)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.delete_job(gw, strip_json(job_id), user, "model", key)
        return text("Job deleted.")

    @post("/{job_id:str}/abort", status_code=200)
    async def abort_model(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job aborted." (403 when not running)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.abort_job(gw, strip_json(job_id), user, "model", key)
        return text("Job aborted.")


async def _image(gw: Gateway, params: Params) -> bytes:
    upload = params.files.get("image_file")
    if upload is not None:
        return await upload.read()
    path = params.get("image_path")
    if path:
        return commands.server_image(gw, path)
    raise FormErrors({"image_file": ["Provide an image: image_file (upload) or image_path"]})


def _data_url(image: bytes) -> str:
    kind = next((t for magic, t in IMAGE_TYPES.items() if image.startswith(magic)), "image/png")
    return f"data:{kind};base64,{base64.b64encode(image).decode()}"


def _dataset_choices(gw: Gateway) -> list[dict[str, Any]]:
    with gw.db.cursor() as cur:
        return [
            {"id": d.id, "name": d.name, "status": d.status}
            for d in queries.list_jobs(cur, "dataset")
        ]
