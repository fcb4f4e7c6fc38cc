"""The inference service's settings, read once from `DIGITS_*` environment variables."""

from __future__ import annotations

import functools
import os

import msgspec

from digits_proto.runtime import env_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the inference service can be told; defaults work for `make run`."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    port: int = 0  # health/metrics HTTP port (DIGITS_INFERENCE_PORT); 0 = any free port, -1 = none
    log_level: str = "info"
    net_cache_size: int = 8  # loaded networks kept in memory, keyed by (model, epoch, params)
    omp_threads: int = 1  # modest: a trainer usually shares the same cores
    max_image_bytes: int = 32 * 1024 * 1024  # larger uploads are refused before download
    data_roots: list[str] = []  # DIGITS_DATA_ROOTS: where classify-many lists may point
    max_list_bytes: int = 16 * 1024 * 1024  # an image list larger than this is refused
    batch_size: int = 64  # images per forward pass in classify many
    ack_wait: float = 30.0  # seconds a classify-many ticket may go without a heartbeat

    @property
    def cache_dir(self) -> str:
        """Where fetched snapshot blobs are kept (digest-keyed, shared with nothing)."""
        return os.path.join(self.data_dir, "cache")


@functools.cache
def get_settings() -> Settings:
    """The process's settings (cached)."""
    return env_settings(Settings, "inference")


def apply_thread_limits(settings: Settings) -> None:
    """Size MXNet's OpenMP pool; only effective before `mxnet` is first imported."""
    os.environ["OMP_NUM_THREADS"] = str(max(1, settings.omp_threads))
    # Idle OpenMP threads sleep instead of spinning: inference is bursty and shares the cores
    # with trainers (a spinning pool after each request slows their steps).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
