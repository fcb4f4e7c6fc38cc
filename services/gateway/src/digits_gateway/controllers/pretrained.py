"""DIGITS's pretrained-model routes (§6.4): upload an archive or files, make one from a trained
model's snapshot, show and delete. The trainer service owns pretrained models: uploads go to the
uploads bucket (streamed from the spooled form), the command carries their references, and the
blobs are deleted once the trainer has answered (it copies what it keeps)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect

from digits_gateway import commands, idempotency, ui, views
from digits_gateway.controllers._common import require_user, text
from digits_gateway.controllers.uploads import registry
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, rejected_errors
from digits_gateway.forms import Fields, FormErrors
from digits_gateway.idempotency import Keyed
from digits_gateway.params import Params, read_params, strip_json, username, wants_json
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.models import CreatePretrainedModel, MakePretrained
from digits_proto.runtime import put_reader

ARCHIVE_TYPES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".zip")
# Upload fields of `/pretrained_models/new` → the extensions MXNet's exported files have.
FILE_TYPES = {
    "weights_file": (".params",),
    "model_def_file": (".json",),
    "labels_file": (".txt",),
    "mean_file": (".npy",),
}
CHANNELS = {"3": 3, "color": 3, "rgb": 3, "1": 1, "grayscale": 1, "gray": 1, "l": 1}
# The trainer copies the files and loads the network in a fresh child: a big model takes a while.
IMPORT_TIMEOUT = 180.0


def _html(request: Request[Any, Any, Any]) -> bool:
    """A browser form (it asks for HTML): DIGITS's scripts get JSON as before."""
    return "text/html" in request.headers.get("accept", "") and not wants_json(request)


class PretrainedController(Controller):
    """`/pretrained_models/...` (DIGITS's blueprint `digits.pretrained_model`)."""

    path = "/pretrained_models"

    @post(["/upload_archive", "/upload_archive.json"], status_code=200)
    async def upload_archive(self, request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
        """`{"status": "success", "id", "name"}`; a refusal names the field and, as DIGITS's
        `status`, the reason (`Missing Key '…' in info.json`, `Incorrect Archive Type`)."""
        params = await read_params(request)
        user = require_user(request, params)
        try:
            upload = params.files.get("archive")
            upload_id = (params.get("upload_id") or "").strip()  # sent to /api/v1/uploads first
            if upload_id:
                upload = None
            elif upload is None or not upload.filename:
                raise FormErrors({"archive": ["This field is required."]})
            if upload is not None and not (upload.filename or "").lower().endswith(ARCHIVE_TYPES):
                kinds = ", ".join(ARCHIVE_TYPES)
                raise FormErrors({"archive": [f"Incorrect Archive Type: use {kinds}"]})
            accepted = await _create(
                gw,
                {"archive": upload} if upload is not None else {},
                idempotency.from_params(request, params, "pretrained_archive"),
                upload_id=upload_id,
                name=(params.get("job_name") or "").strip(),
                username=user.username,
                principal=user,
                group=params.get("group_name") or "",
            )
        except (FormErrors, CommandRejected) as e:
            if isinstance(e, CommandRejected) and e.code != 400:
                raise
            errors = e.errors if isinstance(e, FormErrors) else rejected_errors(e)
            if _html(request):
                return ui.pages().pretrained_new_page(params.values, errors, user.username)  # type: ignore[no-any-return]
            reason = next(iter(errors.values()))[0]
            return Response(
                {"status": reason, "errors": errors}, status_code=400, media_type=MediaType.JSON
            )
        if _html(request):
            return Redirect(path=f"/pretrained_models/{accepted.id}")
        return Response({"status": "success", "id": accepted.id, "name": accepted.name})

    @post(["/new", "/new.json"], status_code=200)
    async def create_pretrained(
        self, request: Request[Any, Any, Any], gw: Gateway
    ) -> Response[Any]:
        """Weights + network (+ labels): 302 (DIGITS), or `{id, name, status}` as JSON."""
        params = await read_params(request)
        user = require_user(request, params)
        try:
            fields = _new_fields(params)
            uploads = {k: f for k in FILE_TYPES if (f := params.files.get(k)) and f.filename}
            key = idempotency.from_params(request, params, "pretrained_files")
            accepted = await _create(
                gw, uploads, key, username=user.username, principal=user, **fields
            )
        except (FormErrors, CommandRejected) as e:
            if (isinstance(e, CommandRejected) and e.code != 400) or not _html(request):
                raise
            errors = e.errors if isinstance(e, FormErrors) else rejected_errors(e)
            return ui.pages().pretrained_new_page(params.values, errors, user.username)  # type: ignore[no-any-return]
        if wants_json(request):
            return Response({"id": accepted.id, "name": accepted.name, "status": "Done"})
        return Redirect(path=f"/pretrained_models/{accepted.id}")

    @get("/{job_id:str}")
    async def get_pretrained(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[Any]:
        """`/pretrained_models/<id>.json` or its page."""
        job = commands.find_job(gw, strip_json(job_id), "pretrained_model")
        with gw.db.cursor() as cur:
            data = views.pretrained(cur, job)
        if wants_json(request):
            return Response(data)
        return ui.pages().pretrained_page(data, username(request))  # type: ignore[no-any-return]

    @delete("/{job_id:str}", status_code=200)
    async def delete_pretrained(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Response[str]:
        """ "Job deleted." (403 when another user owns it)."""
        params = await read_params(request)
        user = require_user(request, params)
        key = idempotency.read_key(request.headers, params.values)
        await commands.delete_job(gw, strip_json(job_id), user, "pretrained_model", key)
        return text("Job deleted.")


@post("/models/{job_id:str}/to_pretrained", status_code=302)
async def to_pretrained(request: Request[Any, Any, Any], gw: Gateway, job_id: str) -> Redirect:
    """DIGITS's "Make Pretrained Model": the snapshot (`epoch`/`snapshot_epoch`, else the
    latest) becomes a pretrained model; 302 to it (DIGITS went to the home page's third tab)."""
    params = await read_params(request)
    user = require_user(request, params)
    epoch_text = params.get("epoch") or params.get("snapshot_epoch") or ""
    epoch = commands.snapshot_epoch({"snapshot_epoch": epoch_text})
    model = commands.find_job(gw, job_id, "model")
    command = MakePretrained(model_id=model.id, epoch=epoch, username=user.username, principal=user)
    accepted = await gw.bus.send(subjects.CMD_MODELS_TO_PRETRAINED, command, IMPORT_TIMEOUT)
    return Redirect(path=f"/pretrained_models/{accepted.id}", status_code=302)


def _new_fields(params: Params) -> dict[str, Any]:
    """`/pretrained_models/new`'s text fields, checked (400 naming each bad one)."""
    errors: dict[str, list[str]] = {}
    name = (params.get("job_name") or "").strip()
    if not name:
        errors["job_name"] = ["This field is required."]
    framework = (params.get("framework") or "mxnet").lower()
    if framework != "mxnet":
        errors["framework"] = [f"Framework {framework!r} is not available (mxnet only)"]
    for field, kinds in FILE_TYPES.items():
        upload = params.files.get(field)
        if upload is not None and upload.filename:
            if not upload.filename.lower().endswith(kinds):
                errors[field] = [f"The file must end in {' or '.join(kinds)}"]
        elif field in ("weights_file", "model_def_file"):
            errors[field] = ["This field is required."]
    channels = CHANNELS.get((params.get("image_type") or "3").strip().lower())
    if channels is None:
        errors["image_type"] = ["Not a valid choice"]
    f = Fields(params.values)
    resize_mode = f.choice("resize_mode", ("squash", "crop", "fill", "half_crop"), "squash")
    width = f.integer("width", default=224, minimum=1, maximum=8192)
    height = f.integer("height", default=224, minimum=1, maximum=8192)
    try:
        f.check()
    except FormErrors as e:
        errors.update(e.errors)
    if errors:
        raise FormErrors(errors)
    return {
        "name": name,
        "group": params.get("group_name") or "",
        "channels": channels,
        "resize_mode": resize_mode,
        "width": width,
        "height": height,
    }


FIELD_OF_BLOB = {
    "archive": "archive",
    "weights_file": "weights",
    "model_def_file": "model_def",
    "labels_file": "labels",
    "mean_file": "mean",
}


async def _create(
    gw: Gateway,
    uploads: dict[str, UploadFile],
    key: Keyed | None,
    upload_id: str = "",
    **fields: Any,
) -> Any:
    """Stream the uploads into the uploads bucket (or use the archive sent to /api/v1/uploads
    as `upload_id`), send the command, delete them after. A retry under the same
    Idempotency-Key gets the first job, uploading nothing."""
    first = idempotency.first_answers(gw.db, fields["principal"], key) if key else None
    if first and first[0] is not None:
        return first[0]
    if key is not None:
        fields.update(idempotency_key=key.key, request_digest=key.digest)
    if not upload_id:
        return await _send(gw, uploads, {}, fields)
    username = fields["principal"].username
    async with registry(gw).use(upload_id, username, "pretrained") as claim:
        accepted = await _send(gw, {}, {"archive": claim.ref}, fields)
        claim.job_id = accepted.id
    with contextlib.suppress(Exception):  # the trainer copied what it keeps
        store = await gw.js.object_store(subjects.BUCKET_UPLOADS)
        await store.delete(claim.ref.name)
    return accepted


async def _send(
    gw: Gateway, uploads: dict[str, UploadFile], stored: dict[str, BlobRef], fields: Any
) -> Any:
    """CreatePretrainedModel with the uploads put in the bucket (removed after) and `stored`."""
    blobs: dict[str, BlobRef] = {}
    try:
        for field, upload in uploads.items():
            await upload.seek(0)
            name = f"pretrained/{uuid.uuid4().hex}/{field}"
            blobs[FIELD_OF_BLOB[field]] = await put_reader(
                gw.js, subjects.BUCKET_UPLOADS, name, upload.file
            )
        command = CreatePretrainedModel(**fields, **blobs, **stored)
        return await gw.bus.send(subjects.CMD_MODELS_PRETRAINED, command, IMPORT_TIMEOUT)
    finally:
        with contextlib.suppress(Exception):  # the trainer copied what it keeps
            store = await gw.js.object_store(subjects.BUCKET_UPLOADS)
            for ref in blobs.values():
                await store.delete(ref.name)
