"""The build worker processes: spawned once when the service starts, reused by every build."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import structlog

from digits_datasets.packing import warm
from digits_proto.children import die_with_parent

log = structlog.get_logger(__name__)


class BuildPool:
    """A process pool started ahead of the first build (spawn: workers never inherit NATS).

    Starting a worker costs an interpreter and the Pillow/NumPy imports (0.3-1 s on a loaded
    box); paid once here instead of at every build. A pool broken by a dead worker (e.g. the
    kernel killing it) is replaced at the next build. Each worker dies with the service (the
    parent-death signal, armed by its initializer): a service killed with SIGKILL leaves none.
    Workers are spawned by `submit` in the calling thread (spawn starts them on demand), so
    `start` and `executor` are called from the service's main thread, which lives as long as it.
    """

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Spawn every worker now (one warm-up task each), without waiting for them."""
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        for _ in range(self.workers):
            self._pool.submit(warm)

    def executor(self) -> Executor:
        """The live pool (a broken one is replaced first)."""
        if self._pool is None or self._broken():
            if self._pool is not None:
                log.warning("build_pool_replaced", workers=self.workers)
                self._pool.shutdown(wait=False, cancel_futures=True)
            self.start()
        assert self._pool is not None
        return self._pool

    def _broken(self) -> bool:
        # ProcessPoolExecutor has no public "is broken"; a submit on a broken pool raises.
        try:
            self._pool.submit(warm)  # type: ignore[union-attr]
        except (BrokenProcessPool, RuntimeError):
            return True
        return False

    def shutdown(self) -> None:
        """Stop the workers (queued chunks are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
