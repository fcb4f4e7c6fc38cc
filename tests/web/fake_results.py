"""Fake routes of the stand-in gateway for the results pages (see fake_site.build_app).

The result bodies go through the real `many.result_json` and `many.thumbnails` (signed links to
the real thumbnail code, over images written to a temporary data root), the error pages through
the real `errors` functions, so the browser tests see what the gateway renders."""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Template
from PIL import Image, ImageDraw

from digits_gateway import errors, many
from digits_gateway.controllers.inference import NO_LIST
from digits_gateway.pages import classify_many_page, classify_one_page, current_user, top_n_page
from digits_inference.errors import NotAnImage
from digits_proto.inference import ImageResult, LineError, ManyResult, TopImages
from tests.web.fake_site import MODEL, MODELS

LABELS = ["cat", "dog", "bird"]
DATA_ROOT = Path(tempfile.mkdtemp(prefix="digits-fake-roots-"))
COLOURS = {"cat": (200, 60, 40), "dog": (40, 120, 200), "bird": (60, 170, 60)}


def _png(colour: tuple[int, int, int], mark: int) -> bytes:
    img = Image.new("RGB", (32, 32), colour)
    ImageDraw.Draw(img).rectangle([4 + mark, 4, 12 + mark, 27], fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _rows() -> list[ImageResult]:
    """12 images, 3 misclassified; the first nine exist under the data root, one is gone."""
    rows = []
    for i in range(12):
        truth = i % 3
        top1 = (truth + 1) % 3 if i in (4, 7, 11) else truth
        path = DATA_ROOT / LABELS[truth] / f"{i:03d}.png"
        if i != 10:  # #10 was classified, then deleted: its thumbnail is gone
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_png(COLOURS[LABELS[truth]], i % 8))
        confident = 100.0 if i == 0 else 96.5 - i
        preds = [(LABELS[top1], confident)] + [
            (LABELS[j], (100.0 - confident) / 2) for j in range(3) if j != top1
        ]
        rows.append(ImageResult(path=str(path), label=truth, top1=top1, predictions=preds))
    return rows


def _result(top_n: bool = False) -> ManyResult:
    rows = _rows()
    confusion = [[0] * 3 for _ in LABELS]
    for r in rows:
        top1 = LABELS.index(r.predictions[0][0])
        confusion[r.label or 0][top1] += 1
    per_class = [100.0 * confusion[i][i] / max(1, sum(confusion[i])) for i in range(3)]
    tops = []
    if top_n:
        tops = [
            TopImages(label=label, paths=[r.path for r in rows[:3]], scores=[99.0, 97.5, 90.25])
            for label in LABELS
        ]
    return ManyResult(
        job_id=MODEL,
        snapshot_epoch=2.0,
        labels=LABELS,
        results=rows,
        errors=[LineError(line=13, path="/elsewhere/x.png", error="Outside the data roots")],
        confusion=confusion,
        per_class_accuracy=per_class,
        top1_accuracy=75.0,
        top5_accuracy=100.0,
        top_n=tops,
    )


@get("/test/classify-many", sync_to_thread=False)
def classify_many_result(request: Request[Any, Any, Any]) -> Template:
    """A classify-many result with ground truth, as the gateway's result page renders it."""
    body = many.result_json(_result())
    user = current_user(request)
    body["thumbnails"] = many.thumbnails(body, user, [str(DATA_ROOT)])
    return classify_many_page(MODELS[MODEL], body, user)


@get("/test/top-n", sync_to_thread=False)
def top_n_result(request: Request[Any, Any, Any]) -> Template:
    """A top-N result (mosaics left out: the page says 'No image.')."""
    return top_n_page(MODELS[MODEL], many.result_json(_result(top_n=True)), current_user(request))


@get(many.THUMBNAIL_URL, sync_to_thread=False)
def thumbnail(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The real thumbnail check over the fake data root; 404 as the gateway answers."""
    try:
        data, kind = many.thumbnail(
            current_user(request),
            request.query_params.get("path") or "",
            request.query_params.get("t") or "",
            [str(DATA_ROOT)],
        )
    except LookupError as e:
        return errors.error_response(request, 404, str(e), "NotFound")  # type: ignore[return-value]
    return Response(data, media_type=kind)


@post("/models/images/classification/classify_one", status_code=200)
async def classify_one(request: Request[Any, Any, Any]) -> Response[Any]:
    """The form's post: the image back with fixed predictions, for the snapshot asked (the
    real route's inference answers with the snapshot it used), or the error page."""
    form = await request.form()
    upload = form.get("image_file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    if not data.startswith(b"\x89PNG"):  # the inference service's refusal, in its words
        return errors.errors_response({"image_file": [str(NotAnImage("not a PNG"))]}, request)
    epoch = float(str(form.get("snapshot_epoch") or 2))
    preds = [["7", 88.5], ["1", 10.0], ["4", 1.5]]
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    user = current_user(request)
    return classify_one_page(MODELS[MODEL], preds, url, user, snapshot_epoch=epoch)


@get("/test/classify-one", sync_to_thread=False)
def classify_one_result(request: Request[Any, Any, Any]) -> Template:
    """Classify-one result for snapshot epoch 1 (not the newest: the page must say which)."""
    preds = [["1", 97.12], ["7", 2.01], ["4", 0.5]]
    url = "data:image/png;base64," + base64.b64encode(_png((0, 0, 0), 2)).decode()
    return classify_one_page(MODELS[MODEL], preds, url, current_user(request), snapshot_epoch=1.0)


@get("/test/form-error", sync_to_thread=False)
def form_error(request: Request[Any, Any, Any]) -> Response[Any]:
    """What a Top-N post without a list answers (errors.errors_response, as the gateway's
    handler calls it): the error page for a browser, the JSON body otherwise."""
    return errors.errors_response({"image_list": [NO_LIST]}, request)


@post(["/models/images/classification/classify_many", "/models/images/classification/top_n"])
async def classify_many_refused(request: Request[Any, Any, Any]) -> Response[Any]:
    """The model page's Classify Many / Top N post, refused as the gateway's route refuses it
    (no list, or an archive of another type): the error page for the browser."""
    form = await request.form()
    archive, listing = form.get("image_archive"), form.get("image_list")
    if isinstance(archive, UploadFile) and archive.filename:
        kinds = ", ".join(many.ARCHIVE_TYPES)
        if not archive.filename.lower().endswith(many.ARCHIVE_TYPES):
            message = f"Upload a {kinds} archive of images"
            return errors.errors_response({"image_archive": [message]}, request)
    elif not (isinstance(listing, UploadFile) and listing.filename):
        return errors.errors_response({"image_list": [NO_LIST]}, request)
    return errors.error_response(request, 409, "The stand-in runs no classification", "Conflict")


@get("/test/missing-job", sync_to_thread=False)
def missing_job(request: Request[Any, Any, Any]) -> Response[Any]:
    """What a deleted job's URL answers (errors.error_response for JobNotFound)."""
    return errors.error_response(request, 404, "Job not found", "NotFound")


ROUTES: list[Any] = [
    classify_many_result,
    top_n_result,
    thumbnail,
    classify_one,
    classify_one_result,
    form_error,
    classify_many_refused,
    missing_job,
]
