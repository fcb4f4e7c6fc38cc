"""The trainer's settings, from `DIGITS_*` / `DIGITS_TRAINER_*` environment variables."""

from __future__ import annotations

import functools
import os
import socket

import msgspec

from digits_proto.runtime import env_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the trainer service reads at start; tests build it directly."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    port: int = 0  # health/metrics HTTP port; 0 = any free port, -1 = none
    node_id: str = msgspec.field(default_factory=socket.gethostname)
    log_level: str = "info"
    concurrent_jobs: int = 4  # tickets handled at once; each job still needs a device lease
    ack_wait: float = 30.0  # seconds a ticket stays ours without a heartbeat
    retry_delay: float = 2.0  # seconds before a waiting job's ticket comes back
    lease_timeout: float = 5.0  # seconds to wait for the gpu-broker's answer
    kill_grace: float = 2.0  # DIGITS: SIGTERM, then SIGKILL after 2 s
    progress_every: float = 2.0  # at most one TrainingProgressed per this many seconds
    log_upload_every: float = 30.0  # the raw log reaches the Object Store this often (and at ends)
    # At least this many seconds between a running job's resume points (more when writing one
    # costs over 2% of training time); 0 = none, a crash then redoes the work since a snapshot.
    resume_every: float = 2.0
    # One training child waits with MXNet imported for the next attempt (the environment of the
    # node's last lease, remembered in <data_dir>/trainer/spare-lease.json): a job, above all a
    # resumed one, starts ~4 s sooner.
    warm_child: bool = True
    # A job's splits are preloaded in memory when their decoded pixels fit in this many MiB,
    # else read from disk batch by batch (in threads, ahead of the network); 0 = half this
    # machine's memory shared by the `concurrent_jobs` that may train at once.
    preload_mb: int = 0
    sandbox_wall_seconds: float = 60.0  # building a custom network: wall-time limit
    sandbox_cpu_seconds: int = 30  # ... and CPU-time limit (RLIMIT_CPU), MXNet's import excluded
    sandbox_warm: bool = True  # one sandbox child waits with MXNet imported, from the start
    # Pretrained-model uploads: an archive may expand to at most this many bytes; loading the
    # network to check it gets this much wall time.
    import_max_bytes: int = 4 * 1024 * 1024 * 1024
    import_wall_seconds: float = 120.0


def preload_bytes(settings: Settings) -> int:
    """The preload budget of one job, in bytes."""
    if settings.preload_mb > 0:
        return settings.preload_mb * 1024 * 1024
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return memory // (2 * max(1, settings.concurrent_jobs))


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return env_settings(Settings, "trainer")


def inherited_environment() -> dict[str, str]:
    """The environment a training child starts from: ours, minus the bus and DIGITS settings.

    The child talks to nobody; keeping PATH, HOME, CUDA and MXNet variables lets it run.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "NATS"))}
