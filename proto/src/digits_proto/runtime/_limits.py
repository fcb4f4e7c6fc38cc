"""How much the bus keeps: stream limits and the retention of deleted jobs (one setting each).

Every process that reconciles the streams (the launcher's provisioning, each service, the test
fixtures) reads the same `DIGITS_STORAGE_*` variables, so none undoes another's limits.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from digits_proto.runtime._settings import env_settings

DAY = 86_400.0


class StorageLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on what JetStream keeps (0 in a limit = unlimited)."""

    # Progress events kept per job (the latest is all a page shows).
    progress_keep: int = 3
    # Metric points kept per job, oldest dropped beyond it: generous, a live job's series is
    # never cut in practice (a point per ~20 iterations: a 20-million-iteration job).
    metrics_per_job: int = 1_000_000
    # Device and lease events (they grow with every job) are kept this many days.
    gpu_events_days: float = 90.0
    # A deleted job's events (and metrics, progress) are purged this many days after its
    # deletion, behind a tombstone; 0 = at once.
    retention_days: float = 7.0
    # How often (seconds) datasets and trainer look for deleted jobs whose time has come.
    purge_every: float = 600.0


def storage_limits(env: Mapping[str, str] | None = None) -> StorageLimits:
    """The limits from `DIGITS_STORAGE_<NAME>` (retention also from `DIGITS_RETENTION_DAYS`)."""
    return env_settings(
        StorageLimits, "storage", env, aliases={"retention_days": "DIGITS_RETENTION_DAYS"}
    )
