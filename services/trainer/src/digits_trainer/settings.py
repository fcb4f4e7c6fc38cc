"""The trainer's settings, from `DIGITS_*` / `DIGITS_TRAINER_*` environment variables."""

from __future__ import annotations

import functools
import os
import socket

import msgspec

from digits_proto.runtime import env_settings
from digits_trainer.confine import Limits


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the trainer service reads at start; tests build it directly."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    port: int = 0  # health/metrics HTTP port; 0 = any free port, -1 = none
    node_id: str = msgspec.field(default_factory=socket.gethostname)
    log_level: str = "info"
    concurrent_jobs: int = 4  # tickets handled at once; each job still needs a device lease
    # Seconds a ticket stays ours without a heartbeat (sent every third of it while a job is
    # handled): a killed trainer's job is taken over by another this soon.
    ack_wait: float = 5.0
    # A job whose trainer was lost this many times (killed, crashed mid-job) ends Error instead
    # of being taken over again (DIGITS_MAX_DELIVER); 0 = no bound.
    max_deliver: int = 5
    retry_delay: float = 2.0  # seconds before a waiting job's ticket comes back
    # A job waiting for devices asks again this soon when it is among the next few in the
    # queue (`concurrent_jobs` places), `near_retry_delay` within 4 × that, `far_retry_delay`
    # further back: under the broker's queue TTL (60 s), so it keeps its place, yet a few
    # hundred waiting jobs cost few requests.
    next_retry_delay: float = 0.5
    near_retry_delay: float = 5.0
    far_retry_delay: float = 30.0
    lease_timeout: float = 5.0  # seconds to wait for the gpu-broker's answer
    # POST /drain: how long a running job's child gets to write its resume point (at its next
    # metric point) before the job is handed back from its last saved point anyway.
    drain_wait: float = 60.0
    kill_grace: float = 2.0  # DIGITS: SIGTERM, then SIGKILL after 2 s
    progress_every: float = 2.0  # at most one TrainingProgressed per this many seconds
    # Snapshots a job keeps when its form leaves `snapshot_keep` at 0: the last this many plus
    # the best (lowest validation loss); 0 here = every epoch's snapshot is kept.
    snapshot_keep: int = 3
    # The node's blob cache (dataset shards, snapshots: <data_dir>/cache) is pruned to this
    # many MiB after each job, least recently used first; 0 = unbounded.
    cache_mb: int = 20480
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
    # User code (custom networks, fine-tuning from source, pretrained imports, and every
    # training child) runs under bubblewrap as uid 65534 with no network. "off" runs it
    # unconfined, as the service's own user: DANGEROUS (see the README).
    sandbox: str = "bwrap"
    sandbox_bwrap: str = "/usr/bin/bwrap"
    sandbox_memory_mb: int = 4096  # address space of a network check or import child
    train_memory_mb: int = 0  # ... of a training child on the CPU; 0 = this machine's memory
    sandbox_processes: int = 1024  # processes + threads of uid 65534, all sandboxes together
    sandbox_file_mb: int = 8192  # the largest file a child may write (a snapshot)
    sandbox_per_user: int = 1  # network checks of one user at once ...
    sandbox_backlog: int = 4  # ... and waiting behind them; more is a 429
    sandbox_children: int = 2  # network checks at once, all users together
    # Pretrained-model uploads: an archive may expand to at most this many bytes; loading the
    # network to check it gets this much wall time.
    import_max_bytes: int = 4 * 1024 * 1024 * 1024
    import_wall_seconds: float = 120.0


def sandbox_limits(settings: Settings) -> tuple[Limits, Limits]:
    """The rlimits of a network check or import child, and of a training child."""
    check = Limits(
        memory_mb=settings.sandbox_memory_mb,
        processes=settings.sandbox_processes,
        file_mb=min(64, settings.sandbox_file_mb),  # it writes nothing we keep
    )
    train = Limits(
        memory_mb=settings.train_memory_mb or machine_memory_mb(),
        processes=settings.sandbox_processes,
        file_mb=settings.sandbox_file_mb,
    )
    return check, train


def machine_memory_mb() -> int:
    """This machine's memory in MiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


def preload_bytes(settings: Settings) -> int:
    """The preload budget of one job, in bytes."""
    if settings.preload_mb > 0:
        return settings.preload_mb * 1024 * 1024
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return memory // (2 * max(1, settings.concurrent_jobs))


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return env_settings(Settings, "trainer", aliases={"max_deliver": "DIGITS_MAX_DELIVER"})


def inherited_environment() -> dict[str, str]:
    """The environment a training child starts from: ours, minus the bus and DIGITS settings.

    The child talks to nobody; keeping PATH, HOME, CUDA and MXNet variables lets it run.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "NATS"))}
