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
