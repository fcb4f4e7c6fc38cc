"""Launcher settings, read from the same `DIGITS_*` variables the services read."""

from __future__ import annotations

import functools
import os

import msgspec

from digits_proto.runtime import env_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What `digits run` needs to know; every field has a working default."""

    port: int = 5000
    host: str = "127.0.0.1"  # as the gateway binds by default (DIGITS_GATEWAY_HOST)
    data_dir: str = "./data"
    data_roots: list[str] = []
    nats_url: str = ""
    nats_port: int = 0  # the embedded server's client port; node i of a cluster: + i - 1
    # Embedded nats-servers: 1, or a JetStream cluster of 3 or more on loopback (`--cluster N`).
    cluster: int = 1
    # Copies of every stream and bucket; 0: 1 for one server, 3 for a cluster (R3).
    nats_replicas: int = 0
    cpu_slots: int = 1
    ready_timeout: float = 180.0
    log_to_terminal: bool = False
    # Each process's log (`<data>/logs/<name>.log`) is rotated at this size, keeping this many
    # older files (`.1` newest); 0 MB = never rotated.
    log_max_mb: float = 10.0
    log_backups: int = 5

    @property
    def data_path(self) -> str:
        """The data directory, absolute (children may run elsewhere)."""
        return os.path.abspath(self.data_dir)

    @property
    def replicas(self) -> int:
        """The replica count the embedded bus is provisioned with (and services are told); a
        clear error for a cluster too small or more replicas than servers."""
        if self.cluster != 1 and self.cluster < 3:
            raise SystemExit(
                f"--cluster {self.cluster} (DIGITS_NATS_CLUSTER): a cluster needs at least 3 "
                "nodes (a majority must survive the loss of one)"
            )
        wanted = self.nats_replicas or (1 if self.cluster == 1 else min(3, self.cluster))
        if not 1 <= wanted <= min(5, self.cluster):
            raise SystemExit(
                f"DIGITS_NATS_REPLICAS={wanted}: between 1 and the number of embedded NATS "
                f"servers ({self.cluster}; at most 5)"
            )
        return wanted

    @property
    def roots(self) -> list[str]:
        """Folders dataset paths may point into; when none are set, `datasets/` beside the data
        directory (never the data directory: logs, credentials and the NATS store live there)."""
        default = os.path.join(os.path.dirname(self.data_path), "datasets")
        return [os.path.abspath(r) for r in self.data_roots] or [default]


@functools.cache
def get_settings() -> Settings:
    """Settings from the environment (`DIGITS_PORT`, `DIGITS_DATA_DIR`, `DIGITS_NATS_URL`...)."""
    return env_settings(
        Settings,
        "launcher",
        aliases={
            "port": "DIGITS_PORT",
            "host": "DIGITS_GATEWAY_HOST",
            "nats_port": "DIGITS_NATS_PORT",
            "cluster": "DIGITS_NATS_CLUSTER",
            "nats_replicas": "DIGITS_NATS_REPLICAS",
            "cpu_slots": "DIGITS_CPU_SLOTS",
        },
    )
