"""Inference context: request/reply messages for classification."""

from __future__ import annotations

from digits_proto.base import BlobRef, Command, Reply


class ClassifyOne(Command, frozen=True, kw_only=True, tag="inference.ClassifyOne"):
    """Classify one image with a model's snapshot (latest when `snapshot_epoch` is None).

    Small images travel inline in `image`; larger ones through the Object Store (`image_blob`).
    """

    job_id: str
    image: bytes = b""
    image_blob: BlobRef | None = None
    snapshot_epoch: float | None = None
    top_k: int = 5


class Classified(Reply, frozen=True, kw_only=True, tag="inference.Classified"):
    """Top-k predictions as `(label, percent)`, best first."""

    job_id: str
    snapshot_epoch: float
    predictions: list[tuple[str, float]]


InferenceCommands = ClassifyOne
