"""The builds running in this service process, as its `/builds` route shows them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec


class BuildView(msgspec.Struct, frozen=True, kw_only=True):
    """One build in flight on this service."""

    dataset_id: str
    phase: str  # "parse" until the folders are read, then the split being packed
    done: int  # images packed or skipped so far, all splits together
    total: int  # images the build packs (0 while parsing)
    progress: float  # done / total (0..1)
    workers: int  # build pool processes decoding and resizing images
    skipped: int  # image files skipped so far (unreadable, too large, ...): listed when built
    started_at: datetime


@dataclass
class BuildProgress:
    """What one build reports as it goes (written by the build, read by the route)."""

    dataset_id: str
    workers: int
    started_at: datetime
    phase: str = "parse"
    done: int = 0
    total: int = 0
    skipped: int = 0

    def view(self) -> BuildView:
        """The JSON view."""
        return BuildView(
            dataset_id=self.dataset_id,
            phase=self.phase,
            done=self.done,
            total=self.total,
            progress=round(self.done / self.total, 4) if self.total else 0.0,
            workers=self.workers,
            skipped=self.skipped,
            started_at=self.started_at,
        )


class InFlight:
    """The builds of this process, by dataset id."""

    def __init__(self) -> None:
        self.builds: dict[str, BuildProgress] = {}

    @contextmanager
    def building(self, dataset_id: str, workers: int) -> Iterator[BuildProgress]:
        """Track one build while the body runs."""
        progress = BuildProgress(dataset_id, workers, datetime.now(UTC))
        self.builds[dataset_id] = progress
        try:
            yield progress
        finally:
            if self.builds.get(dataset_id) is progress:
                del self.builds[dataset_id]

    def view(self) -> list[BuildView]:
        """Every build in flight, oldest first."""
        return sorted((b.view() for b in self.builds.values()), key=lambda v: v.started_at)
