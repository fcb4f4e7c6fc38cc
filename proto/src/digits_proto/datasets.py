"""Dataset context: commands, events and the ticket for building a dataset."""

from __future__ import annotations

from datetime import datetime

import msgspec

from digits_proto.base import BlobRef, Command, Event, Principal, Reply


class DatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to build: DIGITS's image-classification dataset fields (§1), validated shapes."""

    method: str = "folder"
    folder_train: str = ""
    folder_pct_val: int = 25
    folder_pct_test: int = 0
    folder_train_min_per_class: int = 2
    folder_train_max_per_class: int | None = None
    # A separate val/test folder (DIGITS §1.2): parsed against the train labels; its split's
    # percentage of the train folder is then 0.
    has_val_folder: bool = False
    folder_val: str = ""
    folder_val_min_per_class: int = 2
    folder_val_max_per_class: int | None = None
    has_test_folder: bool = False
    folder_test: str = ""
    folder_test_min_per_class: int = 2
    folder_test_max_per_class: int | None = None
    # method "textfile" (DIGITS §1.3): lists of "path label" lines and a labels file, uploaded
    # (blobs in the uploads bucket) or server paths (`textfile_local_*`, when use_local_files).
    textfile_use_local_files: bool = False
    textfile_train_images: BlobRef | None = None
    textfile_local_train_images: str = ""
    textfile_train_folder: str = ""
    textfile_use_val: bool = True
    textfile_val_images: BlobRef | None = None
    textfile_local_val_images: str = ""
    textfile_val_folder: str = ""
    textfile_use_test: bool = False
    textfile_test_images: BlobRef | None = None
    textfile_local_test_images: str = ""
    textfile_test_folder: str = ""
    textfile_shuffle: bool = True
    textfile_labels_file: BlobRef | None = None
    textfile_local_labels_file: str = ""
    # method "upload": a zip or tar(.gz) of class folders (a blob in the uploads bucket), then
    # split like a folder with the folder_pct_* and folder_train_* fields.
    upload_archive: BlobRef | None = None
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
    username: str = ""  # superseded by principal (the owner is principal.username)
    group: str = ""
    spec: DatasetSpec
    form: dict[str, str] = {}
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


class AbortDataset(Command, frozen=True, kw_only=True, tag="datasets.AbortDataset"):
    """Stop a dataset build."""

    dataset_id: str
    username: str = ""  # superseded by principal
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    idempotency_key: str = ""  # the client's Idempotency-Key: a retry returns this abort


class DeleteDataset(Command, frozen=True, kw_only=True, tag="datasets.DeleteDataset"):
    """Delete a dataset (refused while models depend on it)."""

    dataset_id: str
    username: str = ""  # superseded by principal
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class EditDataset(Command, frozen=True, kw_only=True, tag="datasets.EditDataset"):
    """Rename a dataset and/or change its notes, tags (None = leave as is; "" / [] = clear)."""

    dataset_id: str
    username: str = ""  # superseded by principal
    name: str | None = None
    notes: str | None = None
    tags: list[str] | None = None  # None = unchanged; [] = none (see base.clean_tags)
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class BuildDatasetTicket(Command, frozen=True, kw_only=True, tag="datasets.BuildDatasetTicket"):
    """Work-queue ticket: build this dataset (redelivered if its worker dies)."""

    dataset_id: str


class ResizeExample(Command, frozen=True, kw_only=True, tag="datasets.ResizeExample"):
    """Resize and encode one image as a dataset build would (the form's "See example")."""

    image: bytes  # the sample image's file bytes (small: the message stays under 700 kB)
    width: int = 256
    height: int = 256
    channels: int = 3
    resize_mode: str = "squash"
    encoding: str = "png"
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class ResizedExample(Reply, frozen=True, kw_only=True, tag="datasets.ResizedExample"):
    """The resized example: bytes to show, and the size of the record a build would store."""

    image: bytes
    media_type: str  # of `image`: image/png or image/jpeg
    width: int
    height: int
    encoded_size: int  # bytes of one stored record (png / jpg q90 / raw)
    scaled_for_display: bool = False  # `image` is a smaller JPEG: the real one is too big


class ExploreDataset(Command, frozen=True, kw_only=True, tag="datasets.ExploreDataset"):
    """One page of a built split's records, optionally of one label (DIGITS's explore)."""

    dataset_id: str
    db: str = "train"
    page: int = 0
    size: int = 25
    label: int | None = None
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class ExploredPage(Reply, frozen=True, kw_only=True, tag="datasets.ExploredPage"):
    """Record indices and labels of one page; `total` records match the filter."""

    labels: list[str]
    total: int
    page: int
    size: int
    indices: list[int] = []
    record_labels: list[int] = []


class GetDatasetRecord(Command, frozen=True, kw_only=True, tag="datasets.GetDatasetRecord"):
    """One record's image, to show it (explore)."""

    dataset_id: str
    db: str = "train"
    index: int = 0
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class DatasetRecord(Reply, frozen=True, kw_only=True, tag="datasets.DatasetRecord"):
    """A record's image as a browser shows it (raw pixels come back as PNG)."""

    image: bytes
    media_type: str
    label: int


class Shard(msgspec.Struct, frozen=True, kw_only=True):
    """One RecordIO pair of a split: the next `entries` records of the split, in order."""

    entries: int
    rec: BlobRef
    idx: BlobRef


class SplitBlobs(msgspec.Struct, frozen=True, kw_only=True):
    """One split (train/val/test) packed as RecordIO, in one or more shards.

    `shards` lists every `.rec`/`.idx` pair in record order (`<split>.rec` when there is one,
    `<split>-0.rec`, `<split>-1.rec`, ... when there are several); record keys and header ids
    are the split's global indices, so shard n starts at the sum of the entries before it.
    `rec`/`idx` are the first shard's pair, the whole split when it has one shard. Events
    written before sharding have no `shards`: read them through `all_shards()`.
    """

    split: str
    entries: int
    rec: BlobRef
    idx: BlobRef
    class_counts: list[int] = []
    error_count: int = 0
    class_error_counts: list[int] = []  # files of each label that failed to load
    shards: list[Shard] = []

    def all_shards(self) -> list[Shard]:
        """Every shard in order; an old event's single `rec`/`idx` pair as one shard."""
        if self.shards:
            return list(self.shards)
        return [Shard(entries=self.entries, rec=self.rec, idx=self.idx)]


class ImageError(msgspec.Struct, frozen=True, kw_only=True):
    """A source file that was skipped, and why."""

    path: str
    reason: str
    split: str = ""
    label: str = ""  # the class the file belonged to


class DatasetEvent(Event, frozen=True, kw_only=True):
    """Base of every dataset event."""

    dataset_id: str


class DatasetCreated(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetCreated"):
    """A dataset job was accepted."""

    name: str
    username: str = ""  # the owner
    group: str = ""
    spec: DatasetSpec
    form: dict[str, str] = {}
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


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
    folders: dict[str, str] = {}  # split -> the folder it was parsed from (when several)


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

    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)
    idempotency_key: str = ""  # the client's Idempotency-Key: a retry returns this abort


class DatasetDeleted(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetDeleted"):
    """The dataset is gone."""

    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)


class DatasetPurged(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetPurged"):
    """Tombstone of a deleted dataset whose events were purged after the retention window: the
    only event left on its subject, saying that it existed and who deleted it when."""

    name: str = ""
    username: str = ""  # the owner
    deleted_at: datetime | None = None
    actor: str = ""  # the account that deleted it


class DatasetEdited(DatasetEvent, frozen=True, kw_only=True, tag="datasets.DatasetEdited"):
    """The dataset's name and/or notes changed (None = unchanged; notes "" = none)."""

    name: str | None = None
    notes: str | None = None
    tags: list[str] | None = None  # None = unchanged; [] = none (see base.clean_tags)
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)


DatasetEvents = (
    DatasetCreated
    | DatasetBuildStarted
    | DatasetFolderParsed
    | DatasetProgressed
    | DatasetBuilt
    | DatasetFailed
    | DatasetAborted
    | DatasetDeleted
    | DatasetEdited
    | DatasetPurged
)
DatasetCommands = (
    CreateDataset
    | AbortDataset
    | DeleteDataset
    | BuildDatasetTicket
    | ResizeExample
    | ExploreDataset
    | GetDatasetRecord
    | EditDataset
)
