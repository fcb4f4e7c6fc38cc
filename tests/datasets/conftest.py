"""Fixtures for the datasets tests: small image folders and the service running in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_datasets import app
from digits_datasets.settings import Settings
from digits_proto import subjects
from digits_proto.runtime import ServiceHost

COLORS = {"a_cat": (220, 30, 30), "b": (30, 220, 30), "c": (30, 30, 220)}


def make_folder(root: Path, per_class: dict[str, int], size: tuple[int, int] = (24, 18)) -> Path:
    """A folder of class sub-folders holding noisy PNG/JPEG images of a class colour."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, count in per_class.items():
        color = np.array(COLORS.get(name, (128, 128, 128)), np.int16)
        (root / name).mkdir(exist_ok=True)
        for i in range(count):
            noise = rng.integers(-20, 20, (size[1], size[0], 3))
            pixels = np.clip(color + noise, 0, 255).astype(np.uint8)
            ext = "png" if i % 2 else "jpg"
            sub = root / name / ("nested" if i % 3 == 0 else "")
            sub.mkdir(exist_ok=True)
            Image.fromarray(pixels).save(sub / f"img{i:02}.{ext}")
    return root


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """The data root of the test: the service may read anything under it."""
    root = tmp_path / "images"
    root.mkdir()
    return root


@pytest.fixture
def overrides() -> dict[str, object]:
    """Settings a test changes (parametrize `overrides` to change them)."""
    return {}


@pytest.fixture
def settings(nats_url: str, tmp_path: Path, images: Path, overrides: dict[str, object]) -> Settings:
    """Settings of the in-process service: data root `images`, no health port, small chunks."""
    fields: dict[str, object] = {
        "nats_url": nats_url,
        "data_dir": str(tmp_path / "data"),
        "data_roots": [str(images)],
        "port": -1,
        "build_workers": 1,
        "chunk_size": 8,
        "progress_interval": 0.0,
    }
    return Settings(**{**fields, **overrides})


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[ServiceHost]:
    """The datasets service running in this event loop, ready, until the block ends."""
    host = ServiceHost(subjects.SERVICE_DATASETS, settings.nats_url, settings.port)
    task = asyncio.create_task(app.main(settings, host))
    await wait_for(lambda: host.ready or task.done(), timeout=20)
    if task.done():
        task.result()
    try:
        yield host
    finally:
        host.stop.set()
        await asyncio.wait_for(task, 40)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Settings]:
    """The datasets service running for the whole test."""
    async with running(settings):
        yield settings


async def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll `condition` until true, or fail the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)
