"""`/api/v1` bodies and answers: msgspec Structs of their own, never the bus messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec


class DatasetCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new image-classification dataset from a folder of class sub-folders on the server
    (`folder_train`), or from an archive sent first to `/api/v1/uploads` (`"method": "upload"`,
    `upload_id`)."""

    name: str
    method: Literal["folder", "upload"] = "folder"
    folder_train: str = ""
    upload_id: str | None = None
    folder_pct_val: int = 25
    folder_pct_test: int = 0
    folder_train_min_per_class: int = 2
    folder_train_max_per_class: int | None = None
    resize_width: int = 256
    resize_height: int = 256
    resize_channels: int = 3
    resize_mode: str = "squash"
    encoding: str = "png"
    group: str = ""
    username: str | None = None

    def form(self) -> dict[str, Any]:
        """The same fields under DIGITS's form names (one translation for both APIs)."""
        values = msgspec.structs.asdict(self)
        values["dataset_name"] = values.pop("name")
        values["group_name"] = values.pop("group")
        return {k: v for k, v in values.items() if v is not None}


class ModelCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new training job on a dataset (MXNet); one learning rate and batch size per job."""

    name: str
    dataset_id: str
    method: str = "standard"
    network: str = "alexnet"
    custom_network: str = ""
    train_epochs: int = 30
    snapshot_interval: float = 1.0
    val_interval: float = 1.0
    random_seed: int | None = None
    batch_size: int | None = None
    batch_accumulation: int | None = None
    solver_type: str = "SGD"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float | None = None
    rms_decay: float = 0.99
    lr_policy: str = "step"
    lr_step_size: float = 33.0
    lr_step_gamma: float = 0.1
    lr_multistep_values: str = "50,85"
    lr_multistep_gamma: float = 0.5
    lr_exp_gamma: float = 0.95
    lr_inv_gamma: float = 0.1
    lr_inv_power: float = 0.5
    lr_poly_power: float = 3.0
    lr_sigmoid_step: float = 50.0
    lr_sigmoid_gamma: float = 0.1
    use_mean: str = "image"
    crop_size: int | None = None
    shuffle: bool = True
    select_gpu_count: int = 1
    select_gpus: list[int] = []
    group: str = ""
    username: str | None = None

    def form(self) -> dict[str, Any]:
        """The same fields under DIGITS's form names."""
        values = msgspec.structs.asdict(self)
        values["model_name"] = values.pop("name")
        values["dataset"] = values.pop("dataset_id")
        values["standard_networks"] = values.pop("network")
        values["group_name"] = values.pop("group")
        values["select_gpus_list"] = values.pop("select_gpus") or None
        return {k: v for k, v in values.items() if v is not None}


class JobRef(msgspec.Struct, kw_only=True):
    """A job just created or changed."""

    id: str
    name: str
    status: str


class JobEdit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new name, notes and/or tags for a job (absent = unchanged; notes "" / tags [] = none)."""

    name: str | None = None
    notes: str | None = None
    tags: list[str] | None = None
    username: str | None = None


class JobEdited(msgspec.Struct, kw_only=True):
    """A job after an edit."""

    id: str
    name: str
    status: str
    notes: str
    tags: list[str] = []


class JobSummary(msgspec.Struct, kw_only=True):
    """A job in one line."""

    id: str
    type: str
    name: str
    status: str
    username: str
    group: str
    created: str
    updated: str
    dataset_id: str | None
    progress: float
    eta_seconds: float | None
    epoch: float | None
    error: str | None
    tags: list[str] = []  # set by the owner (PUT /jobs/<id> job_tags)


class JobList(msgspec.Struct, kw_only=True):
    """A page of jobs, oldest first; `next` is the URL of the next page (null on the last)."""

    jobs: list[JobSummary]
    next: str | None = None


class Deleted(msgspec.Struct, kw_only=True):
    """A job is gone."""

    id: str
    deleted: bool = True


class MetricPoint(msgspec.Struct, kw_only=True):
    """One point of a training series; `seq` orders them and pages with `after_seq`."""

    seq: int
    epoch: float
    iteration: int
    phase: str
    values: dict[str, float | None]


class MetricSeries(msgspec.Struct, kw_only=True):
    """A model's recorded metrics."""

    job_id: str
    points: list[MetricPoint]


class Classification(msgspec.Struct, kw_only=True):
    """Top-5 predictions as (label, percent), best first."""

    job_id: str
    snapshot_epoch: float
    predictions: list[tuple[str, float]]


class DeviceList(msgspec.Struct, kw_only=True):
    """Devices the gpu-brokers offer, each with the job holding it."""

    devices: list[dict[str, Any]]


class UploadCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A chunked upload to come (`/api/v1/uploads`): what it is, how big, what it is for."""

    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")]
    size: Annotated[int, msgspec.Meta(ge=1)]
    purpose: Literal["dataset", "pretrained"]
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")] = ""


class UploadStatus(msgspec.Struct, kw_only=True):
    """Where an upload stands: `receiving` (send from `offset`), `storing`, `complete`, `used`."""

    id: str
    filename: str
    size: int
    purpose: str
    offset: int
    state: str
    expires_at: datetime
    job_id: str = ""
