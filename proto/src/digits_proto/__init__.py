"""The bus contract every DIGITS service shares: messages, subjects and codecs (msgspec only).

`digits_proto.runtime` is the separate layer of shared service plumbing (nats-py, structlog).
"""

from digits_proto import datasets, gpus, inference, models, replies, subjects, users
from digits_proto.base import (
    BlobRef,
    Command,
    Event,
    JobStatus,
    Principal,
    Reply,
    Role,
    new_job_id,
    utcnow,
)

ALL_MESSAGES: tuple[type, ...] = (
    *datasets.DatasetCommands.__args__,
    *datasets.DatasetEvents.__args__,
    datasets.ResizedExample,
    datasets.ExploredPage,
    datasets.DatasetRecord,
    *models.ModelCommands.__args__,
    *models.ModelEvents.__args__,
    models.MetricsRecorded,
    models.NetworkSource,
    models.NetworkGraph,
    *inference.InferenceCommands.__args__,
    inference.ClassifyManyTicket,
    inference.Classified,
    inference.ClassifyManyQueued,
    inference.ClassifiedMany,
    inference.Exported,
    *gpus.GpuCommands.__args__,
    *gpus.GpuEvents.__args__,
    gpus.LeaseAccepted,
    gpus.TelemetrySampled,
    *users.UserEvents.__args__,
    replies.Accepted,
    replies.Rejected,
)

__all__ = [
    "ALL_MESSAGES",
    "BlobRef",
    "Command",
    "Event",
    "JobStatus",
    "Principal",
    "Reply",
    "Role",
    "datasets",
    "gpus",
    "inference",
    "models",
    "new_job_id",
    "replies",
    "subjects",
    "users",
    "utcnow",
]
