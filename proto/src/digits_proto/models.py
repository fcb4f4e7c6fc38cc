"""Model (training job) context: commands, events, the training ticket and metric events."""

from __future__ import annotations

from datetime import datetime

import msgspec

from digits_proto.base import BlobRef, Command, Event, Principal, Reply


class TrainSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How to train: DIGITS's image-classification model fields (§2) on MXNet Gluon."""

    method: str = "standard"
    standard_network: str = "lenet"
    custom_network: str = ""
    framework: str = "mxnet"
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
    priority: int = 0  # device queue order: higher first, FIFO within one (beyond DIGITS)
    # method "previous": fine-tune from another job's snapshot (DIGITS's `previous_networks` and
    # `<job>-snapshot`); epoch 0 or None = that job's latest snapshot.
    previous_network: str = ""
    previous_snapshot: float | None = None
    # Augmentations (DIGITS §2.1 defaults: all off), applied to training batches only.
    aug_flip: str = "none"  # none, fliplr, flipud, fliplrud
    aug_quad_rot: str = "none"  # none, rot90, rot180, rotall
    aug_rot: float = 0.0  # ± degrees
    aug_scale: float = 0.0  # stddev of the scale factor
    aug_noise: float = 0.0  # stddev of Gaussian noise on a [0, 1] scale
    aug_contrast: float = 0.0  # factor in [1 - c, 1 + c]
    aug_whitening: bool = False  # per-image standardization
    aug_hsv_use: bool = False
    aug_hsv_h: float = 0.02
    aug_hsv_s: float = 0.04
    aug_hsv_v: float = 0.06
    # Beyond DIGITS: stop after this many validations without a lower val loss (0 = never);
    # keep only the last N snapshots plus the best (0 = keep all; SnapshotDeleted says which go).
    early_stopping_patience: int = 0
    snapshot_keep: int = 0


class CreateModel(Command, frozen=True, kw_only=True, tag="models.CreateModel"):
    """Create a training job on a dataset; `form` keeps the submitted fields for clone."""

    name: str
    username: str = ""  # superseded by principal (the owner is principal.username)
    group: str = ""
    dataset_id: str
    spec: TrainSpec
    form: dict[str, str] = {}
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


class AbortModel(Command, frozen=True, kw_only=True, tag="models.AbortModel"):
    """Stop a training job."""

    model_id: str
    username: str = ""  # superseded by principal
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    idempotency_key: str = ""  # the client's Idempotency-Key: a retry returns this abort


class DeleteModel(Command, frozen=True, kw_only=True, tag="models.DeleteModel"):
    """Delete a training job and its snapshots."""

    model_id: str
    username: str = ""  # superseded by principal
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class EditModel(Command, frozen=True, kw_only=True, tag="models.EditModel"):
    """Rename a training job and/or change its notes, tags (None = as is; "" / [] = clear)."""

    model_id: str
    username: str = ""  # superseded by principal
    name: str | None = None
    notes: str | None = None
    tags: list[str] | None = None  # None = unchanged; [] = none (see base.clean_tags)
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class CustomizeNetwork(Command, frozen=True, kw_only=True, tag="models.CustomizeNetwork"):
    """Ask for a network's editable Gluon source: a standard name, or a previous job's id."""

    network: str
    snapshot_epoch: float | None = None
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class NetworkSource(Reply, frozen=True, kw_only=True, tag="models.NetworkSource"):
    """Reply to CustomizeNetwork: Gluon source defining `build_network(classes, input_shape)`."""

    network: str
    snapshot: float | None = None


class VisualizeNetwork(Command, frozen=True, kw_only=True, tag="models.VisualizeNetwork"):
    """Build a custom network in a sandbox and describe its graph (for the browser to draw)."""

    custom_network: str
    dataset_id: str = ""
    input_shape: list[int] = []  # [C, H, W]; else the dataset's, else [3, 32, 32]
    classes: int = 0  # else the dataset's label count, else 10
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class GraphNode(msgspec.Struct, frozen=True, kw_only=True):
    """One operator of a network graph, with its output shape and parameter count."""

    id: int
    name: str
    op: str
    shape: list[int] = []
    params: int = 0


class NetworkGraph(Reply, frozen=True, kw_only=True, tag="models.NetworkGraph"):
    """Reply to VisualizeNetwork: nodes, edges [from_id, to_id] and the total parameter count."""

    nodes: list[GraphNode]
    edges: list[list[int]]
    total_params: int


class CreatePretrainedModel(Command, frozen=True, kw_only=True, tag="models.CreatePretrainedModel"):
    """Register a pretrained model: an uploaded archive (DIGITS's `upload_archive`, with its
    `info.json`) or uploaded files (`/pretrained_models/new`), all as blobs in the uploads
    bucket. Fields left at their defaults come from the archive's info.json."""

    name: str = ""
    username: str = ""  # superseded by principal (the owner is principal.username)
    group: str = ""
    archive: BlobRef | None = None
    weights: BlobRef | None = None  # MXNet .params (`weights_file`)
    model_def: BlobRef | None = None  # exported symbol .json (`model_def_file`)
    labels: BlobRef | None = None  # labels.txt, one label a line (`labels_file`)
    mean: BlobRef | None = None  # optional float32 C×H×W .npy, for downloads only
    channels: int = 3
    resize_mode: str = "squash"
    width: int = 224
    height: int = 224
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


class MakePretrained(Command, frozen=True, kw_only=True, tag="models.MakePretrained"):
    """Register a trained model's snapshot as a pretrained model (DIGITS's `to_pretrained`)."""

    model_id: str
    epoch: float | None = None  # None: the latest snapshot
    username: str = ""  # superseded by principal
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class TrainModelTicket(Command, frozen=True, kw_only=True, tag="models.TrainModelTicket"):
    """Work-queue ticket: train this model (redelivered if its trainer dies)."""

    model_id: str


class ModelEvent(Event, frozen=True, kw_only=True):
    """Base of every model-job event."""

    model_id: str


class ModelCreated(ModelEvent, frozen=True, kw_only=True, tag="models.ModelCreated"):
    """A training job was accepted."""

    name: str
    username: str = ""  # the owner
    group: str = ""
    dataset_id: str
    spec: TrainSpec
    form: dict[str, str] = {}
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


class ModelWaiting(ModelEvent, frozen=True, kw_only=True, tag="models.ModelWaiting"):
    """The job waits: for its dataset, or for devices."""

    reason: str


class TrainingStarted(ModelEvent, frozen=True, kw_only=True, tag="models.TrainingStarted"):
    """A trainer runs the job on leased devices (attempt > 1 means a resume)."""

    node_id: str = ""
    devices: list[str] = []
    lease_id: str = ""
    attempt: int = 1
    resume_epoch: float = 0.0


class WorkerLost(ModelEvent, frozen=True, kw_only=True, tag="models.WorkerLost"):
    """The job's ticket came back while the job was Running: the worker that held it (on
    `node_id`) is gone (its heartbeats stopped), and the trainer on `taken_by` resumes the job.
    `losses` counts this job's lost workers; at the bound (`DIGITS_MAX_DELIVER`) it ends Error."""

    node_id: str = ""
    taken_by: str = ""
    losses: int = 1
    ended: bool = False  # the bound was reached: not resumed, TrainingFailed follows


class TrainingProgressed(ModelEvent, frozen=True, kw_only=True, tag="models.TrainingProgressed"):
    """Training progress (throttled)."""

    epoch: float
    progress: float
    eta_seconds: float | None = None


class SnapshotSaved(ModelEvent, frozen=True, kw_only=True, tag="models.SnapshotSaved"):
    """A snapshot: exported symbol and params, plus the full training state for resume."""

    epoch: float
    symbol: BlobRef
    params: BlobRef
    state: BlobRef | None = None
    input_shape: list[int] = []


class SnapshotDeleted(ModelEvent, frozen=True, kw_only=True, tag="models.SnapshotDeleted"):
    """A snapshot's blobs were deleted by retention (`snapshot_keep`): no longer offered."""

    epoch: float


class TrainingCompleted(ModelEvent, frozen=True, kw_only=True, tag="models.TrainingCompleted"):
    """Training finished every epoch."""


class TrainingFailed(ModelEvent, frozen=True, kw_only=True, tag="models.TrainingFailed"):
    """Training stopped with an error."""

    error: str


class ModelAborted(ModelEvent, frozen=True, kw_only=True, tag="models.ModelAborted"):
    """The job was aborted (by a user, or because its dataset failed)."""

    reason: str = ""
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)
    idempotency_key: str = ""  # the client's Idempotency-Key: a retry returns this abort


class ModelDeleted(ModelEvent, frozen=True, kw_only=True, tag="models.ModelDeleted"):
    """The job is gone."""

    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)


class ModelPurged(ModelEvent, frozen=True, kw_only=True, tag="models.ModelPurged"):
    """Tombstone of a deleted job whose events were purged after the retention window: the only
    event left on its subject, saying that it existed and who deleted it when."""

    name: str = ""
    username: str = ""  # the owner
    deleted_at: datetime | None = None
    actor: str = ""  # the account that deleted it


class ModelEdited(ModelEvent, frozen=True, kw_only=True, tag="models.ModelEdited"):
    """The job's name and/or notes changed (None = unchanged; notes "" = none)."""

    name: str | None = None
    notes: str | None = None
    tags: list[str] | None = None  # None = unchanged; [] = none (see base.clean_tags)
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)


class PretrainedModelCreated(
    ModelEvent, frozen=True, kw_only=True, tag="models.PretrainedModelCreated"
):
    """A pretrained model was registered; its one snapshot follows as SnapshotSaved (then
    TrainingCompleted), so classify, download and fine-tuning read it like a trained job's.
    It has no dataset: the resize, labels and mean it needs are here."""

    name: str
    username: str = ""  # the owner
    group: str = ""
    framework: str = "mxnet"
    source: str = "archive"  # archive, files or model (made from a trained job's snapshot)
    source_model_id: str = ""
    width: int
    height: int
    channels: int
    resize_mode: str = "squash"
    labels: list[str] = []
    use_mean: str = "image"  # informational: the exported network subtracts its own mean
    crop_size: int | None = None
    mean: BlobRef | None = None  # float32 C×H×W .npy (for downloads), when known
    mean_jpg: BlobRef | None = None
    # The network as Gluon source (`build_network`), for fine-tuning from this model.
    standard_network: str = ""
    custom_network: str = ""
    actor: str = ""  # the account that caused it (an admin acting on another's job shows here)
    idempotency_key: str = ""  # the client's Idempotency-Key (scoped to its principal)
    request_digest: str = ""  # what the request asked: a retry must ask the same


class MetricsRecorded(ModelEvent, frozen=True, kw_only=True, tag="models.MetricsRecorded"):
    """One point of a training series (`phase` train or val): loss, accuracy, learning_rate…."""

    epoch: float
    iteration: int
    phase: str
    values: dict[str, float]


ModelEvents = (
    ModelCreated
    | ModelWaiting
    | TrainingStarted
    | WorkerLost
    | TrainingProgressed
    | SnapshotSaved
    | SnapshotDeleted
    | TrainingCompleted
    | TrainingFailed
    | ModelAborted
    | ModelDeleted
    | ModelEdited
    | PretrainedModelCreated
    | ModelPurged
)
MetricEvents = MetricsRecorded
ModelCommands = (
    CreateModel
    | AbortModel
    | DeleteModel
    | TrainModelTicket
    | CustomizeNetwork
    | VisualizeNetwork
    | EditModel
    | CreatePretrainedModel
    | MakePretrained
)
