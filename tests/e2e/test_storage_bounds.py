"""Bounded storage: created and deleted jobs leave the bus, the Object Store and the data
directory as they found them (retention 0: a deleted job's events go at once, behind a tombstone).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nats
import pytest

from digits_proto import subjects
from tests.e2e.conftest import System, signed_in, start_system, write_intensity_classes
from tests.e2e.flows import build_dataset, train_model

pytestmark = pytest.mark.e2e

JOBS = 5  # datasets, each with one model: ten jobs
# Whatever a job may leave behind: its tombstone on a domain stream, and the Object Store's
# delete markers of its files (one small message per file name).
TOMBSTONE_BYTES = 600
MARKER_BYTES = 400
BLOCK = 10 * 1024 * 1024  # JetStream's file store: one message block, and some
# Streams measured against the baseline (device and lease events are bounded by age instead).
MEASURED = (
    subjects.STREAM_DATASETS,
    subjects.STREAM_MODELS,
    subjects.STREAM_METRICS,
    subjects.STREAM_PROGRESS,
    subjects.STREAM_WORK,
)
BUCKETS = (subjects.BUCKET_DATASETS, subjects.BUCKET_MODELS, subjects.BUCKET_UPLOADS)


def bus_bytes(data_dir: Path) -> dict[str, tuple[int, int]]:
    """stream → (bytes, messages), every event stream, the work queue and the object buckets."""
    conf = json.loads((data_dir / "nats" / "nats.conf").read_text())
    admin = json.loads((data_dir / "nats" / "creds" / "digits-admin.json").read_text())

    async def measure() -> dict[str, tuple[int, int]]:
        nc = await nats.connect(
            f"nats://{conf['listen']}", user=admin["user"], password=admin["password"]
        )
        try:
            js = nc.jetstream()
            names = [*MEASURED, *(f"OBJ_{b}" for b in BUCKETS), subjects.STREAM_GPUS]
            out = {}
            for name in names:
                state = (await js.stream_info(name)).state
                out[name] = (state.bytes, state.messages)
            return out
        finally:
            await nc.close()

    return asyncio.run(measure())


def tree_bytes(folder: Path) -> int:
    """Bytes of every file under `folder`, logs left out (they are rotated apart)."""
    total = 0
    for root, _, files in os.walk(folder):
        if os.sep + "logs" in root:
            continue
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def one_round(client, system: System, n: int) -> list[str]:
    """A dataset built and a model trained on it (real MXNet, tiny); their ids."""
    folder = system.root / f"round-{n}"
    write_intensity_classes(folder, per_class=8, size=16)
    dataset_id = build_dataset(
        client,
        folder_train=str(folder),
        folder_pct_val="25",
        resize_width="16",
        resize_height="16",
        resize_channels="1",
        dataset_name=f"bounds-{n}",
    )
    model_id = train_model(
        client,
        dataset=dataset_id,
        standard_networks="lenet",
        train_epochs="3",
        snapshot_interval="1",
        solver_type="SGD",
        learning_rate="0.01",
        lr_policy="fixed",
        random_seed=str(n),
        model_name=f"bounds-{n}",
    )
    return [dataset_id, model_id]


def cycle(client, system: System, first: int) -> dict[str, tuple[int, int]]:
    """JOBS datasets and JOBS models made, measured, then deleted (models first)."""
    made = [one_round(client, system, n) for n in range(first, first + JOBS)]
    during = bus_bytes(system.data_dir)
    for dataset_id, model_id in made:
        assert client.delete(f"/models/{model_id}").is_success
        assert client.delete(f"/datasets/{dataset_id}").is_success
    return during


def disk(data_dir: Path) -> dict[str, int]:
    """The data directory's bytes: JetStream's store, the read model, and all else."""
    store = data_dir / "nats" / "jetstream"
    files = [data_dir / "gateway" / n for n in ("readmodel.duckdb", "readmodel.duckdb.wal")]
    model = sum(f.stat().st_size for f in files if f.exists())
    rest = tree_bytes(data_dir) - tree_bytes(store) - model
    return {"nats store": tree_bytes(store), "read model": model, "rest": rest}


@pytest.mark.timeout(1500)
def test_ten_jobs_created_and_deleted_leave_storage_as_they_found_it(tmp_path: Path) -> None:
    """After a first cycle (caches, device records, the stores' first blocks), five datasets and
    five models are created and deleted: every measured stream and bucket is back to its
    baseline within a tombstone per job and a delete marker per file, and the data directory
    (JetStream's files, the read model, everything else) has not grown beyond a small margin."""
    with (
        start_system(tmp_path, DIGITS_RETENTION_DAYS="0") as system,
        signed_in(system, "admin") as client,
    ):
        cycle(client, system, 0)
        before, disk_before = bus_bytes(system.data_dir), disk(system.data_dir)
        during = cycle(client, system, JOBS)
        after, disk_after = bus_bytes(system.data_dir), disk(system.data_dir)

    report = {name: (before[name][0], during[name][0], after[name][0]) for name in before}
    print("\nstream bytes (before, with 10 jobs, after):", json.dumps(report))
    print("data dir bytes before/after:", disk_before, disk_after)
    for name in MEASURED:
        grown = after[name][0] - before[name][0]
        assert grown <= 2 * JOBS * TOMBSTONE_BYTES, (name, report[name])
    for bucket in BUCKETS:
        name = f"OBJ_{bucket}"
        files = max(0, during[name][1] - before[name][1])
        assert after[name][0] - before[name][0] <= files * MARKER_BYTES, (name, report[name])
    # "rest" holds the trainer's blob cache: this cycle's shards stay there (LRU-bounded by
    # DIGITS_TRAINER_CACHE_MB, entries younger than 10 minutes kept), a few tens of kB each.
    assert disk_after["rest"] - disk_before["rest"] <= 512 * 1024, (disk_before, disk_after)
    # JetStream's file store gives a purged message's disk space back when its block (up to
    # ~8 MB) is compacted or dropped, not at the purge: the logical bytes above are exact, the
    # files may hold one block more than before.
    assert disk_after["nats store"] - disk_before["nats store"] <= BLOCK, (disk_before, disk_after)
    assert disk_after["read model"] - disk_before["read model"] <= 1024 * 1024, disk_after
