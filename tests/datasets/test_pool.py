"""The build pool: started once, reused by every build, replaced when a worker dies."""

from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from PIL import Image

from digits_datasets.packing import EncodeSpec, process_chunk
from digits_datasets.pool import BuildPool


@pytest.fixture
def pool():
    """A one-worker pool, shut down after the test."""
    built = BuildPool(1)
    built.start()
    yield built
    built.shutdown()


def test_the_same_worker_serves_successive_builds(pool: BuildPool) -> None:
    """executor() hands out the pool started at start(): the worker process is reused."""
    first = pool.executor().submit(os.getpid).result(timeout=30)
    second = pool.executor().submit(os.getpid).result(timeout=30)
    assert first == second != os.getpid()


def test_a_pool_broken_by_a_killed_worker_is_replaced(pool: BuildPool, tmp_path: Path) -> None:
    """After the kernel kills a worker the next build gets a fresh pool that packs images."""
    broken = pool.executor()
    os.kill(broken.submit(os.getpid).result(timeout=30), signal.SIGKILL)
    with pytest.raises(BrokenProcessPool):
        broken.submit(os.getpid).result(timeout=30)
    Image.new("RGB", (20, 10), (200, 10, 10)).save(tmp_path / "a.png")
    spec = EncodeSpec(width=8, height=8, channels=3)
    fresh = pool.executor()
    assert fresh is not broken
    result = fresh.submit(process_chunk, [(str(tmp_path / "a.png"), 0)], spec, True, 0).result(
        timeout=30
    )
    assert len(result.records) == 1 and not result.errors
