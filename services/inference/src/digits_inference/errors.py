"""Why a classification is refused: each error names the field at fault and an HTTP code."""

from __future__ import annotations

from digits_proto.runtime import Conflict, DomainError, Forbidden, NotFound


class InferenceError(DomainError):
    """Base of every refusal of the inference service."""


class JobNotFound(InferenceError, NotFound):
    """The model job does not exist or was deleted."""

    def __init__(self, job_id: str):
        super().__init__("Job not found", field="job_id")
        self.job_id = job_id


class NoPrincipal(InferenceError, Forbidden):
    """The command does not say who asks: only the gateway sends commands, and it always does."""

    def __init__(self) -> None:
        super().__init__("Refused: the command carries no principal (who asks is unknown)")


class ReadOnly(InferenceError, Forbidden):
    """A viewer classifies one image and downloads, but starts no classify-many job."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} is a viewer: viewers classify one image, not many")


class NoSnapshot(InferenceError, Conflict):
    """The model has not saved a snapshot yet."""

    def __init__(self, job_id: str):
        super().__init__(f"Model {job_id} has no snapshot yet: wait for its first epoch to finish")


class UnknownSnapshot(InferenceError):
    """The requested snapshot epoch is not among the model's snapshots."""

    def __init__(self, epoch: float, available: list[float]):
        listed = ", ".join(f"{e:g}" for e in available)
        super().__init__(
            f"No snapshot for epoch {epoch:g}; available epochs: {listed}",
            field="snapshot_epoch",
        )


class DatasetUnavailable(InferenceError, Conflict):
    """The model's dataset cannot tell how to preprocess (gone, or never built)."""

    def __init__(self, dataset_id: str, why: str):
        super().__init__(f"Dataset {dataset_id} of this model {why}")


class ShapeMismatch(InferenceError, Conflict):
    """The snapshot expects an input the dataset's images cannot give."""

    def __init__(self, expected: list[int], got: list[int]):
        super().__init__(
            "Model expects input {} but the dataset gives images {}".format(
                "×".join(map(str, expected)), "×".join(map(str, got))
            )
        )


class SnapshotUnusable(InferenceError):
    """The snapshot's files are missing or cannot be loaded (a server-side fault)."""

    code = 500

    def __init__(self, job_id: str, epoch: float, why: str):
        super().__init__(f"Snapshot {epoch:g} of model {job_id} cannot be used: {why}")


class NotAnImage(InferenceError):
    """The uploaded bytes are not an image we can decode, said in a user's words (no library
    names): a file of no image format at all, or a damaged image with the decoder's reason."""

    def __init__(self, why: str, known_format: bool = False):
        message = (
            f"The image is damaged or incomplete ({why})"
            if known_format
            else "The file is not an image (PNG, JPEG, …)"
        )
        super().__init__(message, field="image_file")


class BadImageInput(InferenceError):
    """No image, an image too large, or an upload that cannot be found."""

    def __init__(self, message: str):
        super().__init__(message, field="image_file")


class BadTopK(InferenceError):
    """`top_k` must be at least 1."""

    def __init__(self, top_k: int):
        super().__init__(f"top_k must be at least 1, got {top_k}", field="top_k")


class BadArchiveFormat(InferenceError):
    """The download extension is not one DIGITS offered."""

    def __init__(self, archive_format: str, allowed: list[str]):
        super().__init__(
            f"Unknown archive format {archive_format!r}; use one of {', '.join(allowed)}",
            field="archive_format",
        )


class OnnxUnavailable(InferenceError):
    """MXNet's ONNX exporter could not convert this network."""

    code = 500

    def __init__(self, why: str):
        super().__init__(f"ONNX export failed: {why}", field="onnx")


class StorageFailed(InferenceError):
    """A file of an export could not be written (a full disk, a read-only folder)."""

    code = 507  # Insufficient Storage: the request was fine, this node's disk was not

    def __init__(self, error: OSError, node: str):
        reason = error.strerror or str(error) or type(error).__name__
        where = f" writing {error.filename}" if error.filename is not None else ""
        super().__init__(f"Export failed: {reason}{where} on node {node}")


class BadList(InferenceError):
    """The image list is missing, too large or not in the uploads bucket."""

    def __init__(self, message: str):
        super().__init__(message, field="image_list")


class EmptyList(InferenceError):
    """The image list names no image."""

    def __init__(self) -> None:
        super().__init__("The image list names no image", field="image_list")


class BadTopN(InferenceError):
    """`top_n` must not be negative."""

    def __init__(self, top_n: int):
        super().__init__(f"top_n must be at least 1, got {top_n}", field="top_n")


class BadArchive(InferenceError):
    """An uploaded image archive that cannot be used (unsafe, too large, not an archive)."""

    def __init__(self, message: str):
        super().__init__(message, field="image_archive")
