"""Inference routes beyond classify one: model download (the inference service packs the archive
into the Object Store; the gateway streams it to a temporary file) and classify many / top-N."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, route
from litestar.background_tasks import BackgroundTask
from litestar.response import File, Redirect
from nats.errors import NoRespondersError

from digits_gateway import commands, forms, idempotency, many, ui, views
from digits_gateway.controllers._common import require_user
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, JobNotFound, StorageFull, Unavailable
from digits_gateway.forms import FormErrors
from digits_gateway.params import read_params, strip_json, username, wants_json
from digits_gateway.readmodel import queries
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany, ClassifyManyQueued, ExportModel
from digits_proto.replies import Rejected
from digits_proto.runtime import read_blob
from digits_proto.runtime import request as bus_request

EXTENSIONS = ("tar", "tar.gz", "tgz", "tar.bz2", "zip")
EXPORT_TIMEOUT = 120.0  # ONNX conversion and compression of a large net take seconds
TRUE = ("1", "true", "on", "yes")
RUNS = "/models/images/classification/classify_many"
RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-z]{4}")
# Classify Many / Top N without a list, in the words of the model page's form labels.
NO_LIST = "Choose an image list (a text file, one 'path [label]' a line) or an archive of images"


@route("/models/{job_id:str}/{action:str}", http_method=["GET", "POST"], status_code=200)
async def download(request: Request[Any, Any, Any], gw: Gateway, job_id: str, action: str) -> File:
    """The snapshot's deployment archive (`epoch`/`snapshot_epoch`; `onnx=1` adds model.onnx)."""
    if action == "download":
        fmt = "tar.gz"
    elif action.startswith("download."):
        fmt = action.removeprefix("download.")
    else:
        raise JobNotFound("Not found")
    if fmt not in EXTENSIONS:
        raise FormErrors({"archive_format": [f"Unknown archive type: {fmt}"]})
    params = await read_params(request)
    epoch_text = params.get("epoch") or params.get("snapshot_epoch") or ""
    epoch = commands.snapshot_epoch({"snapshot_epoch": epoch_text})
    model = commands.find_job(gw, job_id, commands.CLASSIFIERS)
    command = ExportModel(
        job_id=model.id,
        snapshot_epoch=epoch,
        archive_format=fmt,
        onnx=(params.get("onnx") or "").lower() in TRUE,
        principal=require_user(request),
    )
    try:
        body, rejected = await bus_request(
            gw.nc, subjects.CMD_INFERENCE_EXPORT, command, timeout=EXPORT_TIMEOUT
        )
    except (TimeoutError, NoRespondersError) as e:
        raise Unavailable("The inference service did not answer; retry") from e
    reply = rejected or codec.export_reply.decode(body)
    if isinstance(reply, Rejected):
        raise CommandRejected(reply.code, reply.message, reply.field)
    path = await _fetch_to_temp(gw, reply.archive.bucket, reply.archive.name)
    return File(
        path=path,
        filename=reply.filename,
        media_type="application/zip" if fmt == "zip" else "application/x-tar",
        background=BackgroundTask(_remove, path),
    )


async def _fetch_to_temp(gw: Gateway, bucket: str, name: str) -> Path:
    """Stream the blob into a temporary file (never whole in memory), then delete the blob."""
    try:
        fd, tmp = tempfile.mkstemp(prefix="digits-download-")
    except OSError as e:
        raise StorageFull(e, "Download") from e
    try:
        with os.fdopen(fd, "wb") as out:
            await read_blob(gw.js, bucket, name, out)
    except OSError as e:  # a full disk: a clear 507, the partial file gone
        _remove(Path(tmp))
        raise StorageFull(OSError(e.errno, e.strerror, tmp), "Download") from e
    except BaseException:
        _remove(Path(tmp))
        raise
    finally:
        with contextlib.suppress(Exception):
            await (await gw.js.object_store(bucket)).delete(name)
    return Path(tmp)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@route(
    [
        "/models/images/classification/classify_many",
        "/models/images/classification/classify_many.json",
        "/models/images/classification/top_n",
        "/models/images/classification/top_n.json",
    ],
    http_method=["POST"],
    status_code=200,
)
async def classify_many(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """DIGITS's classify_many / top_n: `{"classifications": {path: [[label, pct]...]}}` plus
    accuracy, confusion matrix and per-class accuracy (JSON and page), or top-N mosaics."""
    params = await read_params(request)
    top_n_route = "/top_n" in request.url.path
    job_id = params.get("job_id") or ""
    if not job_id:
        raise FormErrors({"job_id": ["This field is required."]})
    fields = forms.Fields(params.values)
    limit = fields.integer("num_test_images")
    top_n = fields.integer("top_n", default=9, minimum=1, maximum=128) if top_n_route else 0
    fields.check()
    archive = params.files.get("image_archive")
    if archive is not None and not archive.filename:
        archive = None  # the page's empty file input
    upload = params.files.get("image_list")
    text = b""
    if archive is None:
        if upload is None:
            raise FormErrors({"image_list": [NO_LIST]})
        text = await upload.read()
        if not text.strip():
            raise FormErrors({"image_list": ["The image list is empty"]})
    elif not archive.filename.lower().endswith(many.ARCHIVE_TYPES):
        kinds = ", ".join(many.ARCHIVE_TYPES)
        raise FormErrors({"image_archive": [f"Upload a {kinds} archive of images"]})
    model = commands.find_job(gw, job_id, commands.CLASSIFIERS)
    as_json = wants_json(request)
    # An archive's size is unknown until inference opens it: it always runs as a job.
    lines = sum(1 for line in text.splitlines() if line.strip()) if archive is None else 0
    command = ClassifyMany(
        job_id=model.id,
        image_list=BlobRef(bucket="", name=""),
        image_folder=params.get("image_folder") or "",
        num_test_images=limit if limit and limit > 0 else None,
        snapshot_epoch=commands.snapshot_epoch(params.values),
        top_n=top_n or 0,
        # Small lists are answered at once (DIGITS answered in the request, and its scripts and
        # tests expect the result in the reply); big lists and archives run as a followed job.
        background=archive is not None or min(lines, limit or lines) > many.SYNC_LINES,
        principal=require_user(request),
    )
    key = idempotency.from_params(request, params, "classify_many")
    if command.background and key is not None:
        # A queued job is something made: a retry under the key gets it again (a list answered
        # at once makes nothing, so it is simply answered again).
        command = msgspec.structs.replace(
            command, idempotency_key=key.key, request_digest=key.digest
        )
    outcome = await many.submit(gw, command, text, archive)
    if isinstance(outcome, ClassifyManyQueued):
        url = f"{RUNS}/{outcome.run_id}"
        if not as_json:
            return Redirect(path=url, status_code=303)
        return Response(
            {
                "run_id": outcome.run_id,
                "status": "Waiting",
                "total": outcome.total,
                "status_url": f"{url}.json",
            },
            status_code=202,
        )
    body = many.result_json(outcome)
    if as_json:
        return Response(body)
    with gw.db.cursor() as cur:
        data = views.model_like(cur, model)
    return _result_page(request, gw, data, body, bool(top_n))


@get(f"{RUNS}/{{run_id:str}}")
async def classify_many_run(
    request: Request[Any, Any, Any], gw: Gateway, run_id: str
) -> Response[Any]:
    """A classify-many job: its status (JSON), the progress page, or the result when done."""
    run_id = strip_json(run_id)
    if not RUN_ID.fullmatch(run_id):
        raise JobNotFound()
    state = await many.status(gw, run_id)
    if state is None:
        raise JobNotFound()
    done = state.status == "Done"
    as_json = wants_json(request)
    pages = None if as_json else ui.pages()
    if pages is None:
        body = msgspec.to_builtins(state) | {"result": None}
        if done:
            body["result"] = many.result_json(await many.result(gw, state))
        return Response(body)
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, state.job_id)
        data = views.model_like(cur, job) if job is not None else {"id": state.job_id}
    user = username(request)
    if not done:
        return pages.classify_many_progress_page(  # type: ignore[no-any-return]
            data, msgspec.to_builtins(state), user
        )
    body = many.result_json(await many.result(gw, state))
    return _result_page(request, gw, data, body, state.top_n)


def _result_page(
    request: Request[Any, Any, Any],
    gw: Gateway,
    model: dict[str, Any],
    body: dict[str, Any],
    top_n: bool,
) -> Response[Any]:
    """The Classify Many or Top N page of a result; classify many's rows get thumbnail links."""
    user = username(request)
    pages = ui.pages()
    if top_n:
        return pages.top_n_page(model, body, user)  # type: ignore[no-any-return]
    page_body = body | {"thumbnails": many.thumbnails(body, user, gw.settings.data_roots)}
    return pages.classify_many_page(model, page_body, user)  # type: ignore[no-any-return]


@get(many.THUMBNAIL_URL, sync_to_thread=True)
def thumbnail(request: Request[Any, Any, Any], gw: Gateway) -> Response[bytes]:
    """One image of a classify-many result page, by the signed link the page was given (`path`,
    `t`): only images a classify-many of this user read, inside the data roots."""
    path = request.query_params.get("path") or ""
    token = request.query_params.get("t") or ""
    try:
        data, media_type = many.thumbnail(username(request), path, token, gw.settings.data_roots)
    except LookupError as e:
        raise JobNotFound(str(e)) from e
    headers = {"Cache-Control": "private, max-age=3600"}
    return Response(data, media_type=media_type, headers=headers)
