"""Resume points on the parent's side: the job's well-known blob, and where a point stands."""

from __future__ import annotations

import tarfile
from pathlib import Path

import msgspec
import structlog

from digits_proto.models import SnapshotSaved
from digits_trainer.domain import ModelState
from digits_trainer.store import Store, resume_point_name

__all__ = ["Position", "find_resume_point", "newer_point", "read_position", "resume_point_name"]

log = structlog.get_logger(__name__)

# The sidecar member of a `.state` tar or resume point (checkpoints.SIDECAR_MEMBER; that module
# imports MXNet, which the service process never loads).
SIDECAR_MEMBER = "checkpoint.json"


class Position(msgspec.Struct, frozen=True):
    """Where a checkpoint stands (the part of its sidecar the parent needs)."""

    model_id: str
    epoch: float
    iteration: int


def read_position(path: str | Path) -> Position:
    """The position of a resume point file; ValueError if it is not one."""
    try:
        with tarfile.open(path, "r") as tar:
            sidecar = tar.extractfile(SIDECAR_MEMBER)
            if sidecar is None:
                raise ValueError(f"{path}: no {SIDECAR_MEMBER}")
            return msgspec.json.decode(sidecar.read(), type=Position)
    except (OSError, KeyError, tarfile.TarError, msgspec.DecodeError) as e:
        raise ValueError(f"{path}: not a resume point ({e})") from e


def newer_point(model_id: str, point: Position, snapshot: SnapshotSaved | None) -> bool:
    """True if an attempt should continue from the resume point rather than the last snapshot:
    it is this job's and lies past that snapshot."""
    return point.model_id == model_id and point.epoch > (snapshot.epoch if snapshot else 0.0)


async def find_resume_point(
    store: Store, state: ModelState, cache_dir: Path
) -> tuple[Path, Position] | None:
    """The job's resume point, fetched, when it lies past its last snapshot; None otherwise
    (also when it cannot be read: the snapshot is still there, only more work is redone)."""
    try:
        path = await store.fetch_resume_point(state.model_id, cache_dir)
        if path is None:
            return None
        position = read_position(path)
    except Exception:  # any failure falls back to the snapshot
        log.warning("resume_point_unusable", model_id=state.model_id, exc_info=True)
        return None
    return (path, position) if newer_point(state.model_id, position, state.last_snapshot) else None
