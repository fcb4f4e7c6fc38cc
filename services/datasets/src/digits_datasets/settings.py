"""Settings of the datasets service, read once from `DIGITS_*` environment variables."""

from __future__ import annotations

import functools
import os

import msgspec

from digits_proto.runtime import env_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service reads from its environment (see README for the variables)."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    # Folders a dataset may be read from (DIGITS_DATA_ROOTS, like PATH); empty means `datasets/`
    # beside the data directory, never the data directory itself (logs, credentials, stores).
    data_roots: list[str] = []
    port: int = 0
    log_level: str = "info"
    # Processes that decode/resize/encode images (spawned, so NATS heartbeats keep flowing).
    build_workers: int = os.cpu_count() or 1
    chunk_size: int = 32
    # A split's `.rec` starts a new shard once it reaches this many MB. Not for the Object Store,
    # which chunks every blob anyway: a shard bounds what one reader or one fetch must handle,
    # and lets a trainer stream a large split shard by shard later. 512 MB keeps small and
    # medium datasets in one shard each (COMMON's `<split>.rec` names).
    shard_mb: float = 512.0
    progress_interval: float = 0.5
    # Seconds a build ticket stays ours without a heartbeat (sent every third of it while a
    # build runs): a killed service's build is taken over by another this soon.
    ack_wait: float = 5.0
    # A build whose worker was lost this many times (its ticket delivered once more) ends Error
    # instead of starting again (DIGITS_MAX_DELIVER); 0 = no bound.
    max_deliver: int = 5
    # Uploaded archives (method "upload"): refused when they expand past this or hold more,
    # or when unpacking would leave the data disk with less than `upload_min_free_bytes`.
    upload_max_bytes: int = 4 * 1024**3
    upload_max_members: int = 2_000_000
    upload_min_free_bytes: int = 1024**3
    # An image declaring more pixels is a skipped file (with the reason), never decoded; the
    # form's resize example is refused the same way (a 200 KB PNG can declare 10000×10000).
    max_pixels: int = 25_000_000

    def roots(self) -> list[str]:
        """The data roots, as absolute real paths."""
        beside = os.path.join(os.path.dirname(os.path.abspath(self.data_dir)), "datasets")
        return [os.path.realpath(r) for r in (self.data_roots or [beside])]

    def jobs_dir(self) -> str:
        """Where a build keeps its work files until they are uploaded."""
        return os.path.join(self.data_dir, "datasets", "jobs")


@functools.cache
def get_settings() -> Settings:
    """The process's settings (read once)."""
    return env_settings(Settings, "datasets", aliases={"max_deliver": "DIGITS_MAX_DELIVER"})
