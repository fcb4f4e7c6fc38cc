"""Dataset context: commands, events and the ticket for building a dataset."""

from __future__ import annotations

import msgspec

from digits_proto.base import BlobRef, Command, Event


class DatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to build: DIGITS's image-classification dataset fields (§1), validated shapes."""

    method: str = "folder"
    folder_train: str = ""
    folder_pct_val: int = 25
    folder_pct_test: int = 0
    folder_train_min_per_class: int = 2
    folder_train_max_per_class: int | None = None
    resize_width: int = 256
    resize_height: int = 256
    resize_channels: int = 3
    resize_mode: str = "squash"
    encoding: str = "png"
    backend: str = "recordio"
    compression: str = "none"


class CreateDataset(Command, frozen=True, kw_only=True, tag="datasets.CreateDataset"):
    """Create and build a dataset; `form` keeps the submitted fields for clone."""

    name: str
    username: str = ""
    group: str = ""
    spec: DatasetSpec
    form: dict[str, str] = {}


class AbortDataset(Command, frozen=True, kw_only=True, tag="datasets.AbortDataset"):
    """Stop a dataset build."""

    dataset_id: str
    username: str = ""


class DeleteDataset(Command, frozen=True, kw_only=True, tag="datasets.DeleteDataset"):
    """Delete a dataset (refused while models depend on it)."""

    dataset_id: str
    username: str = ""


class BuildDatasetTicket(Command, frozen=True, kw_only=True, tag="datasets.BuildDatasetTicket"):
    """Work-queue ticket: build this dataset (redelivered if its worker dies)."""

    dataset_id: str


class SplitBlobs(msgspec.Struct, frozen=True, kw_only=True):
    """One split (train/val/test) packed as RecordIO."""

    split: str
    entries: int
    rec: BlobRef
    idx: BlobRef
    class_counts: list[int] = []
    error_count: int = 0


class ImageError(msgspec.Struct, frozen=True, kw_only=True):
    """A source file that was skipped, and why."""

    path: str
    reason: str
    split: str = ""


class DatasetEvent(Event, frozen=True, kw_only=True):
    """Base of every dataset event."""

    dataset_id: str


class DatasetCreated(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetCreated"):
    """A dataset job was accepted."""

    name: str
    username: str = ""
    group: str = ""
    spec: DatasetSpec
    form: dict[str, str] = {}


class DatasetBuildStarted(
    DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetBuildStarted"
):
    """A worker took the build ticket."""

    worker: str = ""


class DatasetFolderParsed(
    DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetFolderParsed"
):
    """Labels found and images assigned to splits."""

    folder: str
    labels: list[str]
    split_counts: dict[str, int]
    warnings: list[str] = []


class DatasetProgressed(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetProgressed"):
    """Build progress (throttled to at most 2 per second)."""

    phase: str
    done: int
    total: int
    eta_seconds: float | None = None


class DatasetBuilt(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetBuilt"):
    """Every split packed; blobs are in the Object Store."""

    labels: list[str]
    labels_blob: BlobRef
    splits: list[SplitBlobs]
    mean: BlobRef
    mean_jpg: BlobRef
    image_width: int
    image_height: int
    image_channels: int
    encoding: str = "png"
    errors: list[ImageError] = []


class DatasetFailed(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetFailed"):
    """The build stopped with an error."""

    error: str


class DatasetAborted(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetAborted"):
    """The build was aborted by a user."""


class DatasetDeleted(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetDeleted"):
    """The dataset is gone."""


DatasetEvents = (
    DatasetCreated
    | DatasetBuildStarted
    | DatasetFolderParsed
    | DatasetProgressed
    | DatasetBuilt
    | DatasetFailed
    | DatasetAborted
    | DatasetDeleted
)
DatasetCommands = CreateDataset | AbortDataset | DeleteDataset | BuildDatasetTicket
