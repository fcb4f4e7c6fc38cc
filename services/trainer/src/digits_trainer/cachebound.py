"""The blob cache (`<data_dir>/cache/blobs/<key>/`) kept under a size: least recently used first.

Dataset shards and snapshots are cached by digest for the next job; nothing says when a dataset
is deleted, so without a bound every dataset ever trained on stayed on this node's disk.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def prune_cache(cache_dir: Path, max_bytes: int, spare_seconds: float = 600.0) -> int:
    """Remove the least recently used entries until the cache holds at most `max_bytes`
    (0 = unbounded); entries used in the last `spare_seconds` stay (a job may be staging
    them). Returns the bytes freed."""
    root = cache_dir / "blobs"
    if max_bytes <= 0 or not root.is_dir():
        return 0
    entries = []
    for entry in root.iterdir():
        files = [f for f in entry.rglob("*") if f.is_file()] if entry.is_dir() else []
        stats = [f.stat() for f in files]
        used = max([entry.stat().st_mtime, *(s.st_mtime for s in stats)])
        entries.append((used, sum(s.st_size for s in stats), entry))
    total = sum(size for _, size, _ in entries)
    freed = 0
    now = time.time()
    for used, size, entry in sorted(entries, key=lambda e: e[0]):
        if total - freed <= max_bytes or now - used < spare_seconds:
            break
        shutil.rmtree(entry, ignore_errors=True)
        freed += size
    if freed:
        log.info("cache_pruned", freed=freed, left=total - freed)
    return freed
