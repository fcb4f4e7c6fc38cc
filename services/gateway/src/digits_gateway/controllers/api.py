"""`/api/v1`: the native JSON API, over the same commands and read model as DIGITS's routes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from digits_gateway import commands, idempotency, views
from digits_gateway.controllers._common import require_user
from digits_gateway.controllers._paging import DEFAULT_LIMIT, Cursor, Limit, job_page
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected
from digits_gateway.forms import FormErrors
from digits_gateway.params import Params, read_params
from digits_gateway.readmodel import queries
from digits_gateway.schemas import (
    Classification,
    DatasetCreate,
    Deleted,
    DeviceList,
    JobEdit,
    JobEdited,
    JobList,
    JobRef,
    MetricPoint,
    MetricSeries,
    ModelCreate,
)
from digits_proto.base import Principal


def _user(request: Request[Any, Any, Any], body_user: str | None) -> Principal:
    """The signed-in principal; a `username` in the body never changes who you are."""
    return require_user(request)


# DIGITS form names → this API's field names, so a 400 names the field the client sent.
API_NAMES = {
    "job_name": "name",
    "job_notes": "notes",
    "job_tags": "tags",
    "dataset_name": "name",
    "model_name": "name",
    "dataset": "dataset_id",
    "standard_networks": "network",
    "group_name": "group",
    "select_gpus_list": "select_gpus",
}


@contextlib.contextmanager
def _api_field_names() -> Iterator[None]:
    try:
        yield
    except FormErrors as e:
        raise FormErrors({API_NAMES.get(k, k): v for k, v in e.errors.items()}) from e
    except CommandRejected as e:
        if e.code == 400 and e.field:
            raise FormErrors({API_NAMES.get(e.field, e.field): [e.message]}) from e
        raise


def _ref(job_id: str, name: str, status: str) -> JobRef:
    return JobRef(id=job_id, name=name, status=status)


@dataclass
class ClassifyOperation(Operation):
    """classify reads its multipart form itself (DIGITS's way); this tells clients what it reads."""

    def __post_init__(self) -> None:
        form = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "image_file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                "snapshot_epoch": Schema(type=OpenAPIType.NUMBER),
            },
            required=["image_file"],
        )
        media = {RequestEncodingType.MULTI_PART.value: OpenAPIMediaType(schema=form)}
        self.request_body = RequestBody(content=media, required=True)


class DatasetApi(Controller):
    """Datasets."""

    path = "/api/v1/datasets"
    tags = ["datasets"]

    @get("/")
    async def list_datasets(
        self, gw: Gateway, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = ""
    ) -> JobList:
        """Every dataset, a page at a time (`limit`, `cursor`; `next` links the next page)."""
        return job_page(gw, "dataset", limit, cursor, self.path)

    @post("/", status_code=202)
    async def create_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, data: DatasetCreate
    ) -> JobRef:
        """Create and build a dataset; 202 with its id once the read model shows it."""
        user = _user(request, data.username)
        form = data.form()
        key = idempotency.keyed(idempotency.read_key(request.headers), "dataset", form)
        with _api_field_names():
            accepted = await commands.create_dataset(gw, form, user, key=key)
        return _ref(accepted.id, accepted.name, str(accepted.status))

    @get("/{job_id:str}")
    async def get_dataset(self, gw: Gateway, job_id: str) -> dict[str, Any]:
        """One dataset with its build details (the DIGITS JSON keys)."""
        job = commands.find_job(gw, job_id, "dataset")
        with gw.db.cursor() as cur:
            return views.dataset(cur, job)

    @delete("/{job_id:str}", status_code=200)
    async def delete_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Deleted:
        """Delete a dataset no model uses."""
        key = idempotency.read_key(request.headers)
        await commands.delete_job(gw, job_id, require_user(request), "dataset", key)
        return Deleted(id=job_id)

    @post("/{job_id:str}/abort", status_code=200)
    async def abort_dataset(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> JobRef:
        """Stop a build."""
        key = idempotency.read_key(request.headers)
        accepted = await commands.abort_job(gw, job_id, require_user(request), "dataset", key)
        return _ref(job_id, accepted.name, str(accepted.status))


class ModelApi(Controller):
    """Models (training jobs)."""

    path = "/api/v1/models"
    tags = ["models"]

    @get("/")
    async def list_models(
        self, gw: Gateway, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = ""
    ) -> JobList:
        """Every model, a page at a time (`limit`, `cursor`; `next` links the next page)."""
        return job_page(gw, "model", limit, cursor, self.path)

    @post("/", status_code=202)
    async def create_model(
        self, request: Request[Any, Any, Any], gw: Gateway, data: ModelCreate
    ) -> JobRef:
        """Create a training job; 202 with its id once the read model shows it."""
        user = _user(request, data.username)
        form = data.form()
        key = idempotency.keyed(idempotency.read_key(request.headers), "model", form)
        with _api_field_names():
            accepted = (await commands.create_models(gw, form, user, key))[0]
        return _ref(accepted.id, accepted.name, str(accepted.status))

    @get("/{job_id:str}")
    async def get_model(self, gw: Gateway, job_id: str) -> dict[str, Any]:
        """One model (the DIGITS JSON keys, snapshots included)."""
        job = commands.find_job(gw, job_id, "model")
        with gw.db.cursor() as cur:
            return views.model(cur, job)

    @get("/{job_id:str}/metrics")
    async def get_metrics(self, gw: Gateway, job_id: str, after_seq: int = 0) -> MetricSeries:
        """Every metric point after `after_seq` (0: all), in order."""
        commands.find_job(gw, job_id, "model")
        with gw.db.cursor() as cur:
            points = queries.metrics(cur, job_id, after_seq)
        return MetricSeries(
            job_id=job_id,
            points=[
                MetricPoint(
                    seq=p.seq, epoch=p.epoch, iteration=p.iteration, phase=p.phase, values=p.values
                )
                for p in points
            ],
        )

    @post("/{job_id:str}/classify", status_code=200, operation_class=ClassifyOperation)
    async def classify(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Classification:
        """Multipart `image_file` (+ `snapshot_epoch`): the top-5 predictions."""
        params: Params = await read_params(request)
        upload = params.files.get("image_file")
        image = await upload.read() if upload is not None else b""
        result = await commands.classify_one(
            gw,
            job_id,
            image,
            commands.snapshot_epoch(params.values),
            principal=require_user(request),
        )
        return Classification(
            job_id=result.job_id,
            snapshot_epoch=result.snapshot_epoch,
            predictions=result.predictions,
        )

    @delete("/{job_id:str}", status_code=200)
    async def delete_model(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> Deleted:
        """Delete a model and its snapshots."""
        key = idempotency.read_key(request.headers)
        await commands.delete_job(gw, job_id, require_user(request), "model", key)
        return Deleted(id=job_id)

    @post("/{job_id:str}/abort", status_code=200)
    async def abort_model(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str
    ) -> JobRef:
        """Stop training."""
        key = idempotency.read_key(request.headers)
        accepted = await commands.abort_job(gw, job_id, require_user(request), "model", key)
        return _ref(job_id, accepted.name, str(accepted.status))


class JobApi(Controller):
    """Every job, and the devices they run on."""

    path = "/api/v1"
    tags = ["jobs"]

    @get("/jobs")
    async def list_jobs(
        self, gw: Gateway, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = ""
    ) -> JobList:
        """Datasets and models, oldest first, a page at a time (`limit`, `cursor`, `next`)."""
        return job_page(gw, None, limit, cursor, f"{self.path}/jobs")

    @patch("/jobs/{job_id:str}")
    async def edit_job(
        self, request: Request[Any, Any, Any], gw: Gateway, job_id: str, data: JobEdit
    ) -> JobEdited:
        """Rename a dataset or model and/or set its notes or tags (its owner only)."""
        user = _user(request, data.username)
        with _api_field_names():
            await commands.edit_job(gw, job_id, user, data.name, data.notes, data.tags)
        job = commands.find_job(gw, job_id)
        return JobEdited(
            id=job.id, name=job.name, status=job.status, notes=job.notes, tags=job.tags
        )

    @get("/devices")
    async def list_devices(self, gw: Gateway) -> DeviceList:
        """Devices offered by the gpu-brokers and the job holding each."""
        with gw.db.cursor() as cur:
            return DeviceList(devices=queries.devices(cur))
