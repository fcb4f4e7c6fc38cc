"""The inference service's settings, read once from `DIGITS_*` environment variables."""

from __future__ import annotations

import functools
import os
import re
import socket

import msgspec

from digits_proto.runtime import env_settings


def default_node_id() -> str:
    """The hostname reduced as the gpu-broker reduces it (so both name the same node)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-_") or "node"


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
    decode_threads: int = 0  # threads reading/decoding classify-many images; 0 = auto
    ack_wait: float = 5.0  # seconds a classify-many ticket may go without a heartbeat
    # A classify-many job whose inference process was lost this many times ends Error instead
    # of being taken over again (DIGITS_MAX_DELIVER); 0 = no bound.
    max_deliver: int = 5
    # Seconds between checkpoints of a classify-many job: the process taking over a job whose
    # worker was lost continues from the last one (redoing at most this much work).
    checkpoint_every: float = 2.0
    cache_mb: int = 1024  # loaded networks' parameter bytes kept in memory (LRU; 0 = no bound)
    use_gpus: bool = True  # lease a free GPU from the gpu-broker when there is one
    node_id: str = msgspec.field(default_factory=lambda: default_node_id())  # the broker's node
    lease_idle: float = 60.0  # seconds without a forward pass before a leased GPU is given back
    retention_hours: float = 24.0  # classify-many job blobs are deleted this long after the end
    sweep_interval: float = 600.0  # seconds between sweeps of the uploads bucket
    max_archive_bytes: int = 1 << 30  # an uploaded image archive larger than this is refused
    max_archive_members: int = 100_000  # members (files and folders) one archive may hold
    max_expanded_bytes: int = 4 << 30  # bytes an archive's images may expand to
    min_free_bytes: int = 1 << 30  # an archive is refused if it would leave less free on disk
    # An image declaring more pixels is refused from its header, never decoded (classify one,
    # classify many): a 200 KB PNG can declare 10000×10000 16-bit pixels.
    max_pixels: int = 25_000_000

    @property
    def decode_workers(self) -> int:
        """`decode_threads`, or (auto) the cores the network's OpenMP threads leave, 1 to 4:
        Pillow decodes and resizes without the GIL, so JPEGs decode in parallel."""
        if self.decode_threads > 0:
            return self.decode_threads
        return min(4, max(1, (os.cpu_count() or 1) - max(1, self.omp_threads)))

    @property
    def cache_dir(self) -> str:
        """Where fetched snapshot blobs are kept (digest-keyed, shared with nothing)."""
        return os.path.join(self.data_dir, "cache")


@functools.cache
def get_settings() -> Settings:
    """The process's settings (cached)."""
    return env_settings(Settings, "inference", aliases={"max_deliver": "DIGITS_MAX_DELIVER"})


def apply_thread_limits(settings: Settings) -> None:
    """Size MXNet's OpenMP pool; only effective before `mxnet` is first imported."""
    os.environ["OMP_NUM_THREADS"] = str(max(1, settings.omp_threads))
    # Idle OpenMP threads sleep instead of spinning: inference is bursty and shares the cores
    # with trainers (a spinning pool after each request slows their steps).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
