"""Pure lease logic: device choice, validation, snapshots, thread shares, history fold."""

from __future__ import annotations

import pytest

from digits_gpu_broker import domain
from digits_gpu_broker.domain import Holding, LeaseRecord
from digits_gpu_broker.errors import DevicesBusy, NotHolder, TooManyDevices, UnknownDevice
from digits_gpu_broker.nvml import GpuInfo
from digits_proto.gpus import DevicesDiscovered, LeaseExpired, LeaseGranted, LeaseReleased

GPUS = domain.gpu_devices(
    GpuInfo(index=i, uuid=f"u{i}", name="G", memory_total=1) for i in range(4)
)


def record(lease_id: str, *devices: str, holder: str = "h", job: str = "j") -> LeaseRecord:
    return LeaseRecord(
        lease_id=lease_id, job_id=job, holder=holder, node_id="n", devices=list(devices)
    )


def snapshot(*records: LeaseRecord) -> dict[str, Holding]:
    return {d: Holding(record=r, revision=7) for r in records for d in r.devices}


def test_count_request_gets_the_lowest_free_devices() -> None:
    """`count` takes the next free devices in index order, skipping busy ones."""
    chosen = domain.choose_devices(GPUS, {"gpu0", "gpu2"}, 2, [])
    assert [d.device_id for d in chosen] == ["gpu1", "gpu3"]


def test_count_request_is_all_or_nothing() -> None:
    """Asking for more free devices than there are is busy, never a partial grant."""
    with pytest.raises(DevicesBusy):
        domain.choose_devices(GPUS, {"gpu0", "gpu1", "gpu2"}, 2, [])


def test_explicit_indexes_get_exactly_those_or_busy() -> None:
    """Explicit indexes are granted as listed, and one busy index refuses the whole request."""
    assert [d.index for d in domain.choose_devices(GPUS, set(), 1, [3, 1])] == [3, 1]
    with pytest.raises(DevicesBusy):
        domain.choose_devices(GPUS, {"gpu1"}, 1, [0, 1])


def test_unknown_or_repeated_index_names_select_gpus() -> None:
    """An index the node lacks (or a repeated one) is a 400 on DIGITS's `select_gpus` field."""
    for bad in ([4], [-1], [1, 1]):
        with pytest.raises(UnknownDevice) as e:
            domain.validate_request(GPUS, 1, bad)
        assert e.value.code == 400 and e.value.field == "select_gpus"


def test_count_beyond_the_node_names_select_gpu_count() -> None:
    """More devices than the node has, or fewer than one, is a 400 on `select_gpu_count`."""
    for bad in (5, 0):
        with pytest.raises(TooManyDevices) as e:
            domain.validate_request(GPUS, bad, [])
        assert e.value.code == 400 and e.value.field == "select_gpu_count"


def test_cpu_slots_divide_the_cores_and_leases_multiply_the_share() -> None:
    """Each CPU slot gets cores // slots threads (at least 1); a lease gets share × devices."""
    slots = domain.cpu_devices(3, 16)
    assert [d.device_id for d in slots] == ["cpu0", "cpu1", "cpu2"]
    assert {d.kind for d in slots} == {"cpu"} and slots[0].cores == 5
    assert domain.lease_threads(16, 3, 2) == 10
    assert domain.lease_threads(2, 4, 1) == 1
    assert domain.lease_threads(16, 2, 1) == 8


def test_snapshot_tells_complete_leases_and_a_jobs_existing_lease() -> None:
    """A lease is complete only while every one of its device keys holds it."""
    a, b = record("a", "gpu0", "gpu1", job="ja"), record("b", "gpu2", "gpu3", job="jb")
    snap = snapshot(a, b)
    del snap["gpu3"]
    assert set(domain.complete_leases(snap)) == {"a"}
    assert domain.find_job_lease(snap, "ja", "h") == a
    assert domain.find_job_lease(snap, "jb", "h") is None
    assert domain.find_job_lease(snap, "ja", "other") is None
    assert domain.lease_keys(snap, "b") == {"gpu2": 7}


def test_tracked_lease_that_lost_a_key_is_expired() -> None:
    """A tracked lease missing a key (TTL ran out) is reported; complete ones are not."""
    a, b = record("a", "gpu0"), record("b", "gpu1", "gpu2")
    snap = snapshot(a, b)
    del snap["gpu2"]
    assert domain.expired({"a": a, "b": b}, snap) == [b]


def test_only_the_holder_may_touch_a_lease() -> None:
    """Another holder gets a 409 naming `holder`."""
    with pytest.raises(NotHolder) as e:
        domain.check_holder(record("a", "gpu0", holder="me"), "you")
    assert e.value.code == 409


def test_history_fold_keeps_leases_not_yet_ended() -> None:
    """Granted leases stay open until released or expired."""
    history = [
        DevicesDiscovered(node_id="n", devices=GPUS),
        LeaseGranted(node_id="n", lease_id="a", job_id="ja", device_ids=["gpu0"]),
        LeaseGranted(node_id="n", lease_id="b", job_id="jb", device_ids=["gpu1"]),
        LeaseGranted(node_id="n", lease_id="c", job_id="jc", device_ids=["gpu2"]),
        LeaseReleased(node_id="n", lease_id="a", job_id="ja"),
        LeaseExpired(node_id="n", lease_id="c", job_id="jc"),
    ]
    assert list(domain.open_leases(history, "n")) == ["b"]


def test_release_and_expiry_of_a_lease_share_one_event_id() -> None:
    """Both end events of a lease get the same id, so JetStream keeps only the first."""
    assert domain.end_event_id("x") == domain.end_event_id("x") != domain.end_event_id("y")
    assert domain.granted_event_id("x") != domain.end_event_id("x")


def test_a_gpu_request_on_a_cpu_only_node_runs_on_cpu_slots() -> None:
    """No GPU on the node: GPU indexes are dropped and a large count is clamped to the slots."""
    slots = domain.cpu_devices(2, 8)
    assert domain.cpu_fallback(slots, 4, [3]) == (2, [])
    assert domain.cpu_fallback(slots, 1, []) == (1, [])
    assert domain.cpu_fallback(GPUS, 4, [3]) == (4, [3])
