"""Inference context: request/reply messages for classification."""

from __future__ import annotations

import msgspec

from digits_proto.base import BlobRef, Command, Principal, Reply


class ClassifyOne(Command, frozen=True, kw_only=True, tag="inference.ClassifyOne"):
    """Classify one image with a model's snapshot (latest when `snapshot_epoch` is None).

    Small images travel inline in `image`; larger ones through the Object Store (`image_blob`).
    """

    job_id: str
    image: bytes = b""
    image_blob: BlobRef | None = None
    snapshot_epoch: float | None = None
    top_k: int = 5
    show_visualizations: bool = False  # layers' activations, weights and a Grad-CAM map
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class Classified(Reply, frozen=True, kw_only=True, tag="inference.Classified"):
    """Top-k predictions as `(label, percent)`, best first."""

    job_id: str
    snapshot_epoch: float
    predictions: list[tuple[str, float]]
    visualizations: BlobRef | None = None  # JSON `Visualizations` in the uploads bucket
    total_parameters: int | None = None


class ExportModel(Command, frozen=True, kw_only=True, tag="inference.ExportModel"):
    """Pack a snapshot for deployment (DIGITS's download): network, labels, mean, info, script.

    `archive_format` is one of tar, tar.gz, tgz, tar.bz2, zip; `onnx` adds `model.onnx`.
    """

    job_id: str
    snapshot_epoch: float | None = None
    archive_format: str = "tar.gz"
    onnx: bool = False
    principal: Principal | None = None  # who asks (gateway-set); refused when missing


class Exported(Reply, frozen=True, kw_only=True, tag="inference.Exported"):
    """The archive, in the uploads bucket; the reader deletes it once it has sent it."""

    job_id: str
    snapshot_epoch: float
    filename: str
    archive: BlobRef


class ArrayStats(msgspec.Struct, frozen=True, kw_only=True):
    """Statistics and a picture of one activation or weight array (classify one's visualizations).

    `image` is a PNG data URL of the tiled maps (viridis, normalised over min..max), or "".
    """

    shape: list[int]
    mean: float
    std: float
    min: float
    max: float
    histogram_counts: list[int]
    histogram_edges: list[float]
    image: str = ""
    parameters: int = 0  # weights only: learned values of the layer (weights + bias)


class LayerVisual(msgspec.Struct, frozen=True, kw_only=True):
    """One layer of the network: its output, and its weights when it has learned parameters."""

    name: str
    op: str
    activation: ArrayStats | None = None
    weights: ArrayStats | None = None


class Visualizations(msgspec.Struct, frozen=True, kw_only=True):
    """What classify one shows inside the network; stored as JSON in the Object Store."""

    layers: list[LayerVisual]
    total_parameters: int
    gradcam: str = ""  # PNG data URL: Grad-CAM of the top class blended over the input
    gradcam_layer: str = ""
    gradcam_label: str = ""


class ClassifyMany(Command, frozen=True, kw_only=True, tag="inference.ClassifyMany"):
    """Classify every image of a list of `path [label]` lines (DIGITS's classify_many / top_n).

    The list travels through the uploads bucket (`image_list`); relative paths are joined to
    `image_folder`; every path must lie inside the service's data roots (else refused per line).
    `top_n` > 0 also collects, per class, the N images with the highest score for it.
    """

    job_id: str
    image_list: BlobRef
    image_folder: str = ""
    num_test_images: int | None = None
    snapshot_epoch: float | None = None
    top_n: int = 0
    background: bool = False  # True: run as a job (ticket), reply ClassifyManyQueued at once
    # Instead of the list: a zip/tar/tar.gz of images in the uploads bucket (class folders named
    # like the labels give the ground truth); `image_list` is then ignored (empty BlobRef).
    image_archive: BlobRef | None = None
    # A small list may travel inside the command instead (two Object Store trips saved);
    # `image_list` is then an empty BlobRef.
    image_list_text: str = ""
    # The requester takes the result inside the reply (`ClassifiedMany.inline`) when it fits
    # in one message; older requesters read the blob.
    inline_result: bool = False
    principal: Principal | None = None  # who asks (gateway-set); refused when missing
    # A background job's Idempotency-Key (scoped to its principal): a retry gets the first job.
    idempotency_key: str = ""
    request_digest: str = ""  # what the request asked: a retry must ask the same


class ClassifyManyTicket(Command, frozen=True, kw_only=True, tag="inference.ClassifyManyTicket"):
    """Work-queue ticket of a classify-many job; its status lives in the uploads bucket."""

    run_id: str
    command: ClassifyMany


class ClassifyManyQueued(Reply, frozen=True, kw_only=True, tag="inference.ClassifyManyQueued"):
    """A classify-many job was queued: follow `ManyStatus` at `status`."""

    run_id: str
    job_id: str
    total: int
    status: BlobRef


class ManyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Progress of a classify-many job (a small JSON blob, rewritten at most twice a second)."""

    run_id: str
    job_id: str
    status: str  # Waiting, Running, Done, Error (DIGITS's job status strings)
    done: int = 0
    total: int = 0
    error: str = ""
    top_n: bool = False
    result: BlobRef | None = None  # JSON ManyResult once Done


class ClassifiedMany(Reply, frozen=True, kw_only=True, tag="inference.ClassifiedMany"):
    """The result (JSON `ManyResult`) is in the uploads bucket: it may exceed a message.

    With `ClassifyMany.inline_result` and a result that fits in one message, it is `inline`
    instead and `result` is an empty BlobRef.
    """

    job_id: str
    snapshot_epoch: float
    result: BlobRef
    count: int
    inline: ManyResult | None = None


class ImageResult(msgspec.Struct, frozen=True, kw_only=True):
    """One classified image: its path as resolved, ground truth (if valid) and top-5."""

    path: str
    label: int | None = None
    predictions: list[tuple[str, float]]
    top1: int


class LineError(msgspec.Struct, frozen=True, kw_only=True):
    """A list line that was not classified (unreadable, outside the roots, not an image)."""

    line: int
    path: str
    error: str


class TopImages(msgspec.Struct, frozen=True, kw_only=True):
    """Top-N for one class: the images scoring highest for it, best first, and their mosaic."""

    label: str
    paths: list[str]
    scores: list[float]
    mosaic: str = ""  # PNG data URL


class ManyResult(msgspec.Struct, frozen=True, kw_only=True):
    """Classify-many result; accuracy, confusion matrix (rows = truth, columns = top-1) and
    per-class accuracy are present when at least one line had a valid ground-truth label."""

    job_id: str
    snapshot_epoch: float
    labels: list[str]
    results: list[ImageResult]
    errors: list[LineError] = []
    top1_accuracy: float | None = None
    top5_accuracy: float | None = None
    confusion: list[list[int]] | None = None
    per_class_accuracy: list[float | None] | None = None
    top_n: list[TopImages] = []


InferenceCommands = ClassifyOne | ExportModel | ClassifyMany


def many_status_name(run_id: str) -> str:
    """Object name (uploads bucket) of a classify-many job's `ManyStatus`."""
    return f"classify-many/{run_id}/status.json"
