"""Retention decisions (pure) and the stream limits every process reconciles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digits_proto import subjects
from digits_proto.runtime import purge_step, storage_limits, stream_configs
from digits_proto.runtime._limits import DAY, StorageLimits

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def step(deleted_days_ago: float | None, tombstoned: bool = False, count: int = 5, days=7.0):
    deleted_at = None if deleted_days_ago is None else NOW - timedelta(days=deleted_days_ago)
    return purge_step(
        deleted_at=deleted_at,
        tombstoned=tombstoned,
        count=count,
        now=NOW,
        retention_days=days,
    )


def test_a_job_that_was_not_deleted_is_never_purged() -> None:
    """Given a live job's last event (no deletion), when judged, then nothing is done."""
    assert step(None) is None


def test_a_deletion_inside_the_window_waits() -> None:
    """Given a job deleted 6 days ago and a 7-day window, then it is kept as it is."""
    assert step(6.0) is None


def test_a_deletion_older_than_the_window_gets_its_tombstone() -> None:
    """Given a job deleted 7 days ago (or more), then the tombstone is appended first."""
    assert step(7.0) == "tombstone"
    assert step(30.0) == "tombstone"


def test_no_window_means_at_once() -> None:
    """Given retention 0, a job deleted a moment ago is due."""
    assert step(0.0, days=0.0) == "tombstone"


def test_a_tombstone_with_history_behind_it_is_purged() -> None:
    """Given a tombstone appended before a crash (history still there), then the purge follows."""
    assert step(None, tombstoned=True, count=12) == "purge"


def test_a_tombstone_alone_is_done() -> None:
    """Given a subject holding only its tombstone, then the job needs nothing more."""
    assert step(None, tombstoned=True, count=1) is None


def test_limits_have_sane_defaults_and_read_the_environment() -> None:
    """Defaults bound progress and metrics per job, device events by age, a 7-day window;
    DIGITS_RETENTION_DAYS and DIGITS_STORAGE_* change them."""
    default = storage_limits({})
    assert default == StorageLimits()
    assert default.retention_days == 7.0 and default.progress_keep >= 1
    env = {
        "DIGITS_RETENTION_DAYS": "0",
        "DIGITS_STORAGE_PROGRESS_KEEP": "1",
        "DIGITS_STORAGE_METRICS_PER_JOB": "500",
        "DIGITS_STORAGE_GPU_EVENTS_DAYS": "2",
    }
    limits = storage_limits(env)
    assert (limits.retention_days, limits.progress_keep) == (0.0, 1)
    assert (limits.metrics_per_job, limits.gpu_events_days) == (500, 2.0)


def test_stream_configs_carry_the_limits_and_leave_domain_streams_whole() -> None:
    """Progress keeps N per job, metrics M per job, device events D days; the dataset and model
    streams have no limit (their deleted jobs go behind tombstones instead)."""
    limits = StorageLimits(progress_keep=2, metrics_per_job=500, gpu_events_days=3)
    by_name = {c.name: c for c in stream_configs(limits)}
    assert by_name[subjects.STREAM_PROGRESS].max_msgs_per_subject == 2
    assert by_name[subjects.STREAM_PROGRESS].subjects == [subjects.PROGRESS_EVENTS]
    assert by_name[subjects.STREAM_METRICS].max_msgs_per_subject == 500
    assert by_name[subjects.STREAM_GPUS].max_age == 3 * DAY
    for name in (subjects.STREAM_DATASETS, subjects.STREAM_MODELS, subjects.STREAM_USERS):
        assert by_name[name].max_msgs_per_subject in (None, -1)
        assert not by_name[name].max_age
