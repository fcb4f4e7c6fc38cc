"""The packer's memory is a window: a few chunks in flight, a bounded list of failed files."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from digits_datasets import shards
from digits_datasets.packing import EncodeSpec
from digits_datasets.shards import Packer
from digits_datasets.splits import SplitPlan


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that remembers the most tasks it ever held unfinished at once."""

    def __init__(self) -> None:
        super().__init__(2)
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: self._done())
        return future

    def _done(self) -> None:
        with self.lock:
            self.open -= 1


def plan_of(folder: Path, good: int, bad: int) -> SplitPlan:
    """A train-only plan over `good` tiny PNGs and `bad` undecodable files, two labels."""
    items = []
    for i in range(good):
        path = folder / f"ok{i}.png"
        Image.new("RGB", (6, 4), (i % 256, 0, 0)).save(path)
        items.append((str(path), i % 2))
    for i in range(bad):
        path = folder / f"bad{i}.jpg"
        path.write_bytes(b"not an image")
        items.append((str(path), 1))
    return SplitPlan(labels=["a", "b"], splits={"train": items})


async def noop(*_: object) -> None:
    return None


async def test_at_most_inflight_chunks_are_ever_pending(tmp_path: Path) -> None:
    """600 images in chunks of 4: never more than `inflight` chunks submitted and unwritten."""
    plan = plan_of(tmp_path, 600, 0)
    with CountingExecutor() as executor:
        packer = Packer(executor, EncodeSpec(width=4, height=4, channels=3), 4, inflight=3)
        result = await packer.pack(plan, tmp_path / "out", lambda: False, noop)
    assert result.splits[0].entries == 600
    assert executor.most <= 3


async def test_failed_files_are_all_counted_but_only_the_first_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every failure counts per split and per class; the listed ones stop at KEPT_ERRORS."""
    monkeypatch.setattr(shards, "KEPT_ERRORS", 3)
    plan = plan_of(tmp_path, 4, 10)
    with ThreadPoolExecutor(2) as executor:
        packer = Packer(executor, EncodeSpec(width=4, height=4, channels=3), 4, inflight=2)
        result = await packer.pack(plan, tmp_path / "out", lambda: False, noop)
    (train,) = result.splits
    assert (train.entries, train.error_count, len(train.errors)) == (4, 10, 3)
    assert train.class_errors == [0, 10]
