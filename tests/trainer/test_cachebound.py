"""The trainer's blob cache kept under its size, least recently used first."""

from __future__ import annotations

import os
import time
from pathlib import Path

from digits_trainer.cachebound import prune_cache


def entry(root: Path, key: str, size: int, used_ago: float) -> Path:
    folder = root / "blobs" / key
    folder.mkdir(parents=True)
    (folder / "train.rec").write_bytes(b"r" * size)
    at = time.time() - used_ago
    os.utime(folder / "train.rec", (at, at))
    os.utime(folder, (at, at))
    return folder


def test_the_least_recently_used_entries_go_until_the_cache_fits(tmp_path: Path) -> None:
    """Given 4 entries of 100 bytes and a 250-byte bound, then the two used longest ago go."""
    old = entry(tmp_path, "a", 100, 4000)
    older = entry(tmp_path, "b", 100, 5000)
    recent = entry(tmp_path, "c", 100, 3000)
    newest = entry(tmp_path, "d", 100, 2000)
    assert prune_cache(tmp_path, 250, spare_seconds=60) == 200
    assert not older.exists() and not old.exists()
    assert recent.exists() and newest.exists()


def test_entries_in_use_and_an_unbounded_cache_stay(tmp_path: Path) -> None:
    """An entry used within the spare window stays even over the bound; 0 = no bound."""
    busy = entry(tmp_path, "busy", 1000, 10)
    assert prune_cache(tmp_path, 0) == 0
    assert prune_cache(tmp_path, 10, spare_seconds=600) == 0
    assert busy.exists()
    assert prune_cache(tmp_path / "missing", 10) == 0
