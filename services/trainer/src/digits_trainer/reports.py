"""What a training child tells its parent: one JSON object per stdout line (no NATS in the child)."""

from __future__ import annotations

import errno
import os

import msgspec

# A file the parent creates in the job's folder (the child's working folder) when its node
# drains: the child writes a resume point at its next metric point, and the job continues on
# another node from there. A file, not a signal: inside the sandbox the child's pid is not the
# one the parent knows.
HAND_BACK_FILE = "hand-back"


class Report(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every child report."""


class MetricsReport(Report, frozen=True, kw_only=True, tag="metrics"):
    """One point of a series: phase train {loss, learning_rate} or val {loss, accuracy}."""

    phase: str
    epoch: float
    iteration: int
    values: dict[str, float]


class ProgressReport(Report, frozen=True, kw_only=True, tag="progress"):
    """How far training is (0..1), sent about once a second and at each epoch end."""

    epoch: float
    progress: float
    eta_seconds: float | None = None
    epoch_end: bool = False
    images_per_second: float | None = None  # training speed since the last progress report


class SnapshotReport(Report, frozen=True, kw_only=True, tag="snapshot"):
    """A snapshot's three local files, ready to upload."""

    epoch: float
    symbol: str
    params: str
    state: str
    input_shape: list[int]
    dropped: list[float] = []  # earlier snapshots retention (`snapshot_keep`) lets go


class ResumePointReport(Report, frozen=True, kw_only=True, tag="resume_point"):
    """A resume point's local file (weights, optimizer, position, RNGs), ready to upload; the
    parent deletes it once uploaded."""

    epoch: float
    iteration: int
    path: str
    asked: bool = False  # written because the parent asked (HAND_BACK_FILE), not by the clock


class ReadyReport(Report, frozen=True, kw_only=True, tag="ready"):
    """A spare child has imported MXNet and waits for its job (see spares.py)."""


class DoneReport(Report, frozen=True, kw_only=True, tag="done"):
    """Every epoch trained."""


class ErrorReport(Report, frozen=True, kw_only=True, tag="error"):
    """Training stopped with an error (the traceback is in the child's log)."""

    message: str
    # A file that could not be written (a full disk, a read-only folder), as the child names
    # it, and why: the parent says where it lies on its node (see relay.py).
    path: str = ""
    reason: str = ""


# What a full or read-only disk raises (ENOSPC, EROFS, EDQUOT, EFBIG, EIO).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO})


class WriteFailed(Exception):
    """A file could not be written (a full disk, a read-only folder): which file, and why."""

    def __init__(self, path: object, reason: str):
        super().__init__(f"{reason} writing {path}")
        self.path = str(path)
        self.reason = reason


def error_report(e: Exception) -> ErrorReport:
    """What the child says about the exception that stopped it; a failed write names its file."""
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        # A write to an open stream (the log) names no file: then the job's folder, the
        # child's working folder, is where it failed.
        e = WriteFailed(e.filename or os.getcwd(), e.strerror or str(e))
    if isinstance(e, WriteFailed):
        return ErrorReport(message=str(e), path=e.path, reason=e.reason)
    return ErrorReport(message=f"{type(e).__name__}: {e}")


Reports = (
    MetricsReport
    | ProgressReport
    | SnapshotReport
    | ResumePointReport
    | ReadyReport
    | DoneReport
    | ErrorReport
)
decoder = msgspec.json.Decoder(Reports)
encoder = msgspec.json.Encoder()
