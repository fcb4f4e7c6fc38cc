"""DIGITS_NATS_REPLICAS and start-up reconciliation: every stream and bucket at the replica count
asked, updated in place with its messages kept, nothing deleted, and one clear refusal (exit 78)
for what only an operator may change."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StreamConfig

from digits_proto import subjects
from digits_proto.permissions import ALL_STREAMS
from digits_proto.runtime import (
    EXIT_NEEDS_OPERATOR,
    REPLICAS_ENV,
    RETRY_ENV,
    NeedsOperator,
    StorageLimits,
    ensure_streams,
    nats_replicas,
    put_bytes,
    read_bytes,
)
from tests.conftest import NatsCluster

ROOT = Path(__file__).resolve().parents[2]


def test_the_replica_count_is_one_to_five_and_a_wrong_one_names_the_setting() -> None:
    assert nats_replicas({}) is None  # unset: new ones get 1, existing ones keep theirs
    assert nats_replicas({REPLICAS_ENV: "3"}) == 3
    for wrong in ("0", "6", "-1", "three"):
        with pytest.raises(NeedsOperator) as refused:  # a restart would meet the same value
            nats_replicas({REPLICAS_ENV: wrong})
        assert REPLICAS_ENV in str(refused.value) and "1 to 5" in str(refused.value)
        assert refused.value.code == EXIT_NEEDS_OPERATOR


async def test_a_wrong_setting_refuses_the_start(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = await nats.connect(nats_url)
    try:
        for name, wrong in ((REPLICAS_ENV, "9"), (RETRY_ENV, "soon")):
            with monkeypatch.context() as env:
                env.setenv(name, wrong)
                with pytest.raises(NeedsOperator, match=name):
                    await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


async def _counts(js: JetStreamContext) -> dict[str, tuple[int, int]]:
    """Every stream of the system: (replicas, messages)."""
    found = {}
    for name in ALL_STREAMS:
        info = await js.stream_info(name)
        found[name] = (info.config.num_replicas or 1, info.state.messages)
    return found


async def _copies_current(js: JetStreamContext, name: str, copies: int) -> None:
    """Until the stream has `copies` followers, each caught up with its leader."""
    deadline = time.monotonic() + 30
    while True:
        peers = (await js.stream_info(name)).cluster.replicas or []
        if len(peers) == copies and all(p.current for p in peers):
            return
        assert time.monotonic() < deadline, f"{name}: followers {peers}"
        await asyncio.sleep(0.1)


async def _fill(js: JetStreamContext) -> None:
    """A message in every event stream, a ticket, a key in each bucket, an object in each."""
    for subject in subjects.EVENT_STREAMS.values():
        await js.publish(subject.replace(">", "x.y").replace("*", "x"), b"{}")
    await js.publish(subjects.WORK.replace(">", "x").replace("*", "x"), b"{}")
    for bucket in (subjects.KV_LEASES, subjects.KV_QUEUE):
        await (await js.key_value(bucket)).put("k", b"kept")
    for bucket in (subjects.BUCKET_DATASETS, subjects.BUCKET_MODELS, subjects.BUCKET_UPLOADS):
        await put_bytes(js, bucket, "o", b"x" * 2_000_000)


async def test_r1_raised_to_r3_and_lowered_again_in_place_keeps_every_message(
    nats_cluster: NatsCluster,
) -> None:
    nc = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_streams(js, replicas=1)
        await _fill(js)
        before = await _counts(js)
        assert {r for r, _ in before.values()} == {1}
        assert all(messages > 0 for _, messages in before.values()), before

        await ensure_streams(js, replicas=3)  # what a restart with DIGITS_NATS_REPLICAS=3 does
        raised = await _counts(js)
        assert raised == {name: (3, messages) for name, (_, messages) in before.items()}
        for name in ALL_STREAMS:
            await _copies_current(js, name, 2)  # beside the leader, on the two other nodes
        assert (await (await js.key_value(subjects.KV_QUEUE)).get("k")).value == b"kept"
        assert await read_bytes(js, subjects.BUCKET_MODELS, "o") == b"x" * 2_000_000

        await ensure_streams(js)  # a service not told the count leaves it as it is
        assert await _counts(js) == raised

        await ensure_streams(js, replicas=1)  # lowering is done in place too
        assert await _counts(js) == before
        assert await read_bytes(js, subjects.BUCKET_DATASETS, "o") == b"x" * 2_000_000
    finally:
        await nc.close()


async def test_more_replicas_than_nodes_is_refused_with_what_to_set(
    nats_cluster: NatsCluster,
) -> None:
    nc = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_streams(js, replicas=3)
        with pytest.raises(NeedsOperator) as refused:
            await ensure_streams(js, replicas=5)
        assert refused.value.code == EXIT_NEEDS_OPERATOR
        assert REPLICAS_ENV in str(refused.value) and "number of NATS nodes" in str(refused.value)
        assert {r for r, _ in (await _counts(js)).values()} == {3}  # nothing half-changed
    finally:
        await nc.close()


async def test_replicas_on_a_single_server_are_refused(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(NeedsOperator) as refused:
            await ensure_streams(nc.jetstream(), replicas=3)
        assert "non-clustered" in str(refused.value) and REPLICAS_ENV in str(refused.value)
    finally:
        await nc.close()


async def test_a_retention_that_differs_is_refused_and_nothing_is_deleted(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        # The work queue made by hand as a limits stream: only recreating it could change that.
        await js.add_stream(StreamConfig(name=subjects.STREAM_WORK, subjects=[subjects.WORK]))
        await js.publish(subjects.WORK.replace(">", "x").replace("*", "x"), b"ticket")
        with pytest.raises(NeedsOperator) as refused:
            await ensure_streams(js)
        assert "retention: limits → workqueue" in str(refused.value)
        info = await js.stream_info(subjects.STREAM_WORK)
        assert info.config.retention == RetentionPolicy.LIMITS and info.state.messages == 1
    finally:
        await nc.close()


async def test_subjects_taken_by_another_stream_are_refused(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="SQUATTER", subjects=[subjects.WORK]))
        with pytest.raises(NeedsOperator) as refused:
            await ensure_streams(js)
        assert f"stream {subjects.STREAM_WORK}" in str(refused.value)
        assert "overlap" in str(refused.value)
        assert (await js.stream_info("SQUATTER")).config.subjects == [subjects.WORK]
    finally:
        await nc.close()


def _start_as(service: str, url: str, creds: Path, **env: str) -> subprocess.CompletedProcess:
    """What a service's start does with the bus (`ServiceHost.start`), in its own process."""
    script = textwrap.dedent(f"""
        import asyncio
        from digits_proto.runtime import connect, ensure_streams
        async def main():
            nc = await connect({url!r}, {service!r})
            await ensure_streams(nc.jetstream(timeout=2))
            await nc.close()
        asyncio.run(main())
    """)
    environ = {**os.environ, "DIGITS_NATS_CREDS": str(creds), **env}
    return subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("service", ["digits-trainer"])
def test_a_service_passes_when_all_is_in_place_and_exits_78_in_one_line_otherwise(
    nats_url: str, nats_creds: Path, service: str
) -> None:
    async def provision() -> None:  # as the admin, like `digits nats-provision`
        nc = await nats.connect(nats_url)
        await ensure_streams(nc.jetstream())
        await nc.close()

    asyncio.run(provision())
    plain = "nats://" + nats_url.rsplit("@", 1)[-1]
    passed = _start_as(service, plain, nats_creds)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    # Another limit than the provisioned one: the service's user may not update the stream.
    refused = _start_as(service, plain, nats_creds, DIGITS_STORAGE_PROGRESS_KEEP="5")
    out = refused.stdout + refused.stderr
    assert refused.returncode == EXIT_NEEDS_OPERATOR, out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if "bus_needs_operator" in line]
    assert len(lines) == 1, out
    assert "max_msgs_per_subject" in lines[0] and "digits nats-provision" in lines[0]


async def test_limits_are_updated_in_place_by_the_admin(js: JetStreamContext) -> None:
    await ensure_streams(js, StorageLimits(progress_keep=5))
    info = await js.stream_info(subjects.STREAM_PROGRESS)
    assert info.config.max_msgs_per_subject == 5


@pytest.mark.parametrize("module", ["digits_gateway", "digits_gpu_broker"])
def test_a_real_service_refusing_exits_78_with_one_line_and_no_traceback(
    nats_url: str, tmp_path: Path, module: str
) -> None:
    """More replicas than a single server holds: the service's own start says so and stops
    (the gateway reconciles before uvicorn, whose lifespan would print a traceback)."""
    env = {
        **os.environ,
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(tmp_path / "data"),
        "DIGITS_PORT": "0",
        "DIGITS_GPU_BROKER_PORT": "0",
        REPLICAS_ENV: "3",
    }
    env.pop("DIGITS_NATS_CREDS", None)
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == EXIT_NEEDS_OPERATOR, out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if "bus_needs_operator" in line]
    assert len(lines) == 1 and "non-clustered" in lines[0] and REPLICAS_ENV in lines[0], out
