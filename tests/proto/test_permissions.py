"""The permission table on a real nats-server: each service publishes only what it owns.

Every row of REFUSED is an attack: a service's credentials try a subject it must not publish
(another context's events, another's commands, the leases bucket, a fake metric, stream admin)
and the server refuses it. The expectations are written out here, not derived from the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.micro import add_service

from digits_proto import codec
from digits_proto import subjects as s
from digits_proto.models import ModelDeleted
from digits_proto.runtime import EventStore, ServiceHost, connect, credentials_for
from digits_proto.runtime._bus import NatsCredentials, subject_matches

SERVICES = ("gateway", "datasets", "trainer", "inference", "gpu-broker")
EVENTS = {  # subject of a fake event -> the one service allowed to publish it
    s.dataset_events("d1"): "datasets",
    s.model_events("m1"): "trainer",
    s.model_metrics("m1"): "trainer",
    s.gpu_events("node-1"): "gpu-broker",
    s.user_events("alice"): "gateway",
    s.model_progress("m1"): "trainer",
    s.dataset_progress("d1"): "datasets",
}
COMMANDS = {  # one command of each context -> the services that may send it
    s.CMD_DATASETS_CREATE: {"gateway"},
    s.CMD_MODELS_EDIT: {"gateway"},
    s.CMD_INFERENCE_CLASSIFY_ONE: {"gateway"},
    s.CMD_GPUS_ACQUIRE: {"trainer", "inference"},
    # A deleted job's events are purged by their owner only (after the retention window).
    f"$JS.API.STREAM.PURGE.{s.STREAM_MODELS}": {"trainer"},
    f"$JS.API.STREAM.PURGE.{s.STREAM_DATASETS}": {"datasets"},
}
EVERYONE_REFUSED = (
    f"$JS.API.STREAM.DELETE.{s.STREAM_MODELS}",
    f"$JS.API.STREAM.PURGE.{s.STREAM_USERS}",
    f"$JS.API.STREAM.MSG.DELETE.{s.STREAM_DATASETS}",
    f"$JS.API.STREAM.UPDATE.{s.STREAM_DATASETS}",
    f"$JS.API.STREAM.CREATE.{s.STREAM_GPUS}",
    "$JS.API.STREAM.CREATE.EVIL",
    "_INBOX.digits-gateway.reply",
)


def _refused() -> list[tuple[str, str]]:
    rows = [(svc, subject) for subject, owner in EVENTS.items() for svc in SERVICES if svc != owner]
    rows += [(svc, cmd) for cmd, ok in COMMANDS.items() for svc in SERVICES if svc not in ok]
    rows += [(svc, f"$KV.{s.KV_LEASES}.gpu0") for svc in SERVICES if svc != "gpu-broker"]
    rows += [(svc, f"$KV.{s.KV_QUEUE}.job.x") for svc in SERVICES if svc != "gpu-broker"]
    rows += [(svc, f"$O.{s.BUCKET_MODELS}.M.x") for svc in SERVICES if svc != "trainer"]
    rows += [(svc, f"$O.{s.BUCKET_DATASETS}.C.x") for svc in SERVICES if svc != "datasets"]
    rows += [(svc, s.WORK_TRAIN_MODEL) for svc in SERVICES if svc != "trainer"]
    rows += [(svc, s.TELEMETRY_ALL.replace(">", "n1")) for svc in SERVICES if svc != "gpu-broker"]
    builder = f"{s.STREAM_WORK}.{s.CONSUMER_DATASET_BUILDER}"  # another's work tickets
    for subject in (f"$JS.API.CONSUMER.DELETE.{builder}", f"$JS.ACK.{builder}.1.2.3.4.5.6"):
        rows += [(svc, subject) for svc in SERVICES if svc != "datasets"]
    models_readmodel = f"{s.STREAM_MODELS}.{s.readmodel_consumer(s.STREAM_MODELS)}"
    rows += [  # datasets may read the models stream, not touch the gateway's consumer on it
        (svc, f"$JS.API.CONSUMER.DELETE.{models_readmodel}") for svc in SERVICES if svc != "gateway"
    ]
    rows += [(svc, subject) for subject in EVERYONE_REFUSED for svc in SERVICES]
    return rows


class Watched:
    """A service's connection that records the permission violations the server reports."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    async def on_error(self, e: Exception) -> None:
        self.errors.append(str(e))
        self.changed.set()

    async def refused(self, what: str, subject: str, timeout: float = 5.0) -> bool:
        """Wait for the server to refuse `what` ("publish" or "subscription") on `subject`."""
        needle = f'permissions violation for {what} to "{subject}"'.lower()  # nats-py lowers it
        async with asyncio.timeout(timeout):
            while not any(needle in e.lower() for e in self.errors):
                self.changed.clear()
                await self.changed.wait()
        return True


async def _as(service: str, folder: Path, url: str) -> tuple[Client, Watched]:
    creds = credentials_for(f"digits-{service}", str(folder))
    assert creds is not None
    watched = Watched()
    nc = await nats.connect(
        url,
        user=creds.user,
        password=creds.password,
        inbox_prefix=s.inbox_prefix(creds.user),
        error_cb=watched.on_error,
        allow_reconnect=False,
    )
    return nc, watched


def _plain(url: str) -> str:
    """The server's address without the admin's credentials."""
    return "nats://" + url.rsplit("@", 1)[-1]


async def _count(js: JetStreamContext, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def test_a_client_without_credentials_is_refused(nats_url: str) -> None:
    """The attack of the issue: a raw client on 127.0.0.1 with no credentials."""
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(_plain(nats_url), allow_reconnect=False, max_reconnect_attempts=0)


async def test_a_wrong_password_is_refused(nats_url: str) -> None:
    bad = NatsCredentials(user="digits-trainer", password="guessed")
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            _plain(nats_url), user=bad.user, password=bad.password, allow_reconnect=False
        )


@pytest.mark.timeout(120)
async def test_each_service_is_refused_every_subject_it_does_not_own(
    nats_url: str, nats_creds: Path, js: JetStreamContext
) -> None:
    """Table-driven: for each service, each forbidden subject is refused, and nothing lands."""
    before = {stream: await _count(js, stream) for stream in s.EVENT_STREAMS}
    rows = _refused()
    for service in SERVICES:
        nc, watched = await _as(service, nats_creds, _plain(nats_url))
        try:
            for svc, subject in rows:
                if svc == service:
                    await nc.publish(subject, b'{"type":"forged"}')
            await nc.flush()
            for svc, subject in rows:
                if svc == service:
                    assert await watched.refused("publish", subject), (service, subject)
        finally:
            await nc.close()
    assert {stream: await _count(js, stream) for stream in s.EVENT_STREAMS} == before


async def test_each_service_may_publish_its_own_events(
    nats_url: str, nats_creds: Path, js: JetStreamContext
) -> None:
    """The other side of the table: an owner's event lands in its stream (the test can fail)."""
    for subject, owner in EVENTS.items():
        nc, watched = await _as(owner, nats_creds, _plain(nats_url))
        try:
            ack = await nc.jetstream().publish(subject, b'{"type":"x"}')
            assert ack.seq >= 1 and not watched.errors, (owner, subject, watched.errors)
        finally:
            await nc.close()


@pytest.mark.parametrize(
    ("service", "subject"),
    [
        ("gateway", "_INBOX.>"),
        ("gateway", f"{s.inbox_prefix(s.SERVICE_TRAINER)}.>"),
        ("trainer", s.CMD_DATASETS_CREATE),  # answering (stealing) another's commands
        ("inference", s.CMD_MODELS_CREATE),
        ("datasets", s.TELEMETRY_ALL),
        ("gpu-broker", s.DATASET_EVENTS),
    ],
)
async def test_a_service_cannot_listen_to_what_is_not_its_own(
    nats_url: str, nats_creds: Path, service: str, subject: str
) -> None:
    nc, watched = await _as(service, nats_creds, _plain(nats_url))
    try:
        await nc.subscribe(subject)
        await nc.flush()
        assert await watched.refused("subscription", subject)
    finally:
        await nc.close()


async def test_a_service_restarted_with_another_ones_credentials_cannot_append_its_events(
    nats_url: str, nats_creds: Path, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's process given the gateway's credentials: its model events are refused
    (the server drops the append; the publisher waits in vain for JetStream's ack)."""
    monkeypatch.setenv("DIGITS_NATS_CREDS", str(nats_creds / "digits-gateway.json"))
    nc = await connect(_plain(nats_url), s.SERVICE_GATEWAY)
    try:
        # Read once and dropped: a child of the service never learns where credentials are.
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ.get('DIGITS_NATS_CREDS', ''))"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == ""
        before = await _count(js, s.STREAM_MODELS)
        event = ModelDeleted(model_id="m1")
        store = EventStore(nc.jetstream(timeout=2), s.STREAM_MODELS, codec.model_events)
        with pytest.raises(nats.errors.TimeoutError):
            await store.append(s.model_events("m1"), [event], 0)
        assert await _count(js, s.STREAM_MODELS) == before
    finally:
        await nc.close()


async def test_the_gateway_pings_each_service_and_gets_its_answer(
    nats_url: str, nats_creds: Path
) -> None:
    """$SRV pings and replies under the services' own users (the gpu-broker runs two
    nats.micro services; every answer to one ping must pass)."""
    gateway, gateway_watch = await _as("gateway", nats_creds, _plain(nats_url))
    clients = [gateway]
    try:
        for service in ("datasets", "trainer", "inference", "gpu-broker"):
            nc, watched = await _as(service, nats_creds, _plain(nats_url))
            clients.append(nc)
            name = f"digits-{service}"
            for _ in range(2 if service == "gpu-broker" else 1):
                await add_service(nc, name=name, version="0.1.0", queue_group=s.QUEUE_GROUP)
            await nc.flush()
            inbox = gateway.new_inbox()
            sub = await gateway.subscribe(inbox)
            await gateway.publish(s.micro_ping(name), b"", reply=inbox)
            answers = [
                await sub.next_msg(timeout=5) for _ in range(2 if service == "gpu-broker" else 1)
            ]
            assert all(name.encode() in a.data for a in answers)
            await nc.flush()
            assert not watched.errors, watched.errors
        assert not gateway_watch.errors, gateway_watch.errors
    finally:
        for nc in clients:
            await nc.close()


@pytest.mark.parametrize("service", SERVICES[1:])
async def test_a_service_starts_under_its_own_user_once_the_admin_provisioned_the_streams(
    nats_url: str,
    nats_creds: Path,
    js: JetStreamContext,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    """ServiceHost takes its credentials out of the environment when built (before any child
    starts), connects as itself and finds every stream in place without the right to make one."""
    monkeypatch.setenv("DIGITS_NATS_CREDS", str(nats_creds))
    host = ServiceHost(f"digits-{service}", _plain(nats_url), http_port=-1)
    assert "DIGITS_NATS_CREDS" not in os.environ
    await host.start()
    try:
        assert host.nc.is_connected and host.creds is not None
        assert host.creds.user == f"digits-{service}"
    finally:
        await host.close()


async def test_a_push_consumer_aimed_at_another_services_commands_reaches_no_service(
    nats_url: str, nats_creds: Path, js: JetStreamContext
) -> None:
    """nats-server lets a user with consumer rights name any deliver subject: the gpu-broker's
    credentials aim the leases bucket (holding a forged DeleteModel) at the trainer's command
    subject. A bare nats-py client receives it (the attack is real); a service's connection
    (runtime `connect`) drops it and still takes the genuine command after it."""
    seen: dict[str, list[bytes]] = {"bare": [], "service": []}
    arrived = {"bare": asyncio.Event(), "service": asyncio.Event()}

    def record(who: str):
        async def cb(msg) -> None:
            seen[who].append(msg.data)
            arrived[who].set()

        return cb

    trainer = credentials_for("digits-trainer", str(nats_creds))
    bare = await nats.connect(_plain(nats_url), user=trainer.user, password=trainer.password)
    service = await connect(_plain(nats_url), s.SERVICE_TRAINER, trainer)
    attacker, _ = await _as("gpu-broker", nats_creds, _plain(nats_url))
    try:
        await bare.subscribe(s.CMD_MODELS_DELETE, cb=record("bare"))
        await service.subscribe(s.CMD_MODELS_DELETE, cb=record("service"))
        await bare.flush()
        await service.flush()
        forged = b'{"type":"models.DeleteModel","model_id":"m1"}'
        await attacker.jetstream().publish(f"$KV.{s.KV_LEASES}.forged", forged)
        config = {"deliver_subject": s.CMD_MODELS_DELETE, "ack_policy": "none"}
        stream = f"KV_{s.KV_LEASES}"
        await attacker.request(
            f"$JS.API.CONSUMER.CREATE.{stream}",
            json.dumps({"stream_name": stream, "config": config}).encode(),
        )
        async with asyncio.timeout(10):
            await arrived["bare"].wait()
        assert seen["bare"] == [forged]
        await nc_publish_genuine(js, s.CMD_MODELS_DELETE)
        async with asyncio.timeout(10):
            await arrived["service"].wait()
        assert seen["service"] == [b"genuine"]
    finally:
        for nc in (bare, service, attacker):
            await nc.close()


async def nc_publish_genuine(js: JetStreamContext, subject: str) -> None:
    """The gateway's (here: the admin's) own command, after the forged one."""
    await js._nc.publish(subject, b"genuine")
    await js._nc.flush()


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        (s.CMD_MODELS_DELETE, s.CMD_MODELS_DELETE, True),
        (s.CMD_MODELS_DELETE, f"$KV.{s.KV_LEASES}.forged", False),
        (s.MODEL_EVENTS, s.model_events("m1"), True),
        (s.MODEL_EVENTS, "digits.evt.models", False),
        (s.model_events("*"), s.model_events("m1"), True),
        (s.model_events("*"), s.model_events("m1") + ".x", False),
        (s.model_events("m1"), s.model_events("m2"), False),
    ],
)
def test_subject_matching_follows_nats_wildcards(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches
