"""The gpu-broker's settings, from `DIGITS_*` environment variables."""

from __future__ import annotations

import functools
import re
import socket

import msgspec

from digits_proto.runtime import LEASE_TTL_SECONDS, env_settings


def default_node_id() -> str:
    """The hostname, reduced to characters that are safe in a subject token and a KV key."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-_") or "node"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the broker reads from its environment."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    port: int = 0
    log_level: str = "info"
    node_id: str = msgspec.field(default_factory=default_node_id)
    # With no GPU the node offers this many CPU slots (the cores are divided among them).
    cpu_slots: int = 1
    # False forces CPU slots even where NVML finds GPUs.
    use_nvml: bool = True
    lease_ttl: float = LEASE_TTL_SECONDS
    # A waiting job's place in the queue lasts this long after its holder last asked (trainers
    # ask again every 0.5-30 s by place; a job whose trainer is gone is asked for by another).
    queue_ttl: float = 60.0
    # Jobs one user may run at once across all nodes (0 = no cap; beyond DIGITS).
    max_jobs_per_user: int = 0
    telemetry_interval: float = 1.0
    # The queue (QueueChanged, every waiting job) is published at most this often.
    queue_publish_interval: float = 1.0


@functools.cache
def get_settings() -> Settings:
    """Settings from the environment (cached); DIGITS_CPU_SLOTS is a shared name."""
    return env_settings(Settings, "gpu-broker", aliases={"cpu_slots": "DIGITS_CPU_SLOTS"})
