"""`digits consumer-creds` against the data directory's real embedded nats-server.

The issued user reads the domain and metrics streams through consumers of its own and nothing
else: every refusal below is the server's (a permission violation it reports), not ours.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from digits_cli import nats as embedded
from digits_cli.__main__ import main
from digits_cli.bus import Bus
from digits_cli.consumers import can_connect
from digits_cli.logfiles import RotatingLog
from digits_cli.settings import get_settings
from digits_proto import subjects as s
from digits_proto.runtime import NatsCredentials, ensure_streams
from tests.conftest import free_port

MODEL = "20260101-000000-abcd"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """The verbs read get_settings() (cached): each test's environment must be seen."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@dataclass(frozen=True)
class Embedded:
    """A data dir's embedded nats-server, started as `digits run` starts it."""

    data: Path
    url: str
    admin: NatsCredentials


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Embedded]:
    """The config `digits run` writes, the server it starts, the streams it provisions."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    port = free_port()
    conf, creds = embedded.write_config(data, port)
    proc = embedded.start(conf, port, tmp_path / "nats-server.log")
    url = f"nats://127.0.0.1:{port}"
    admin = embedded.credentials(creds)[embedded.ADMIN]
    embedded.provision(url, admin)
    asyncio.run(_seed(url, admin))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data))
    monkeypatch.delenv("DIGITS_NATS_URL", raising=False)
    yield Embedded(data, url, admin)
    proc.terminate()
    proc.wait(timeout=10)


async def _seed(url: str, admin: NatsCredentials) -> None:
    nc = await nats.connect(url, user=admin.user, password=admin.password)
    js = nc.jetstream()
    await ensure_streams(js)
    await js.publish(s.model_events(MODEL), b'{"type":"models.ModelCreated"}')
    await js.publish(s.model_metrics(MODEL), b'{"type":"models.MetricsRecorded"}')
    await js.publish(s.user_events("alice"), b'{"type":"users.PasswordChanged"}')
    await nc.close()


def issue_with(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """`digits consumer-creds ARGS --json`, its JSON answer."""
    assert main(["consumer-creds", *args, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def issue(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """Issue consumer NAME on the data dir of DIGITS_DATA_DIR."""
    return issue_with([name], capsys)


class Consumer:
    """A connection as the issued user that records what the server refuses."""

    def __init__(self, nc: Client, errors: list[str]) -> None:
        self.nc, self.errors = nc, errors

    @classmethod
    async def connect(cls, url: str, creds: NatsCredentials) -> Consumer:
        errors: list[str] = []

        async def on_error(e: Exception) -> None:
            errors.append(str(e).lower())

        nc = await nats.connect(
            url,
            user=creds.user,
            password=creds.password,
            inbox_prefix=s.inbox_prefix(creds.user),
            error_cb=on_error,
            allow_reconnect=False,
        )
        return cls(nc, errors)

    async def refused(self, subject: str, whole: bool = True) -> bool:
        """Wait for the server to refuse a publish to `subject` (or to subjects it begins)."""
        end = '"' if whole else ""
        needle = f'permissions violation for publish to "{subject}{end}'.lower()
        async with asyncio.timeout(5):
            while not any(needle in e for e in self.errors):
                await asyncio.sleep(0.05)
        return True


def _creds(info: dict[str, object]) -> NatsCredentials:
    return msgspec.json.decode(Path(str(info["file"])).read_bytes(), type=NatsCredentials)


def test_issued_creds_read_the_domain_streams_and_nothing_else(
    system: Embedded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its own consumers on DIGITS_MODELS/METRICS read; publish, DIGITS_USERS, streams, KV: no."""
    info = issue("reader", capsys)
    assert info["applied"] == "reloaded"
    assert info["user"] == "consumer-reader"
    assert Path(str(info["file"])).stat().st_mode & 0o777 == 0o600
    creds = _creds(info)

    async def check() -> None:
        c = await Consumer.connect(system.url, creds)
        js = c.nc.jetstream(timeout=2)
        first = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        sub = await js.pull_subscribe(s.MODEL_EVENTS, stream=s.STREAM_MODELS, config=first)
        (msg,) = await sub.fetch(1, timeout=5)
        assert msg.subject == s.model_events(MODEL)
        durable = await js.pull_subscribe(
            s.METRIC_EVENTS, durable="reader-metrics", stream=s.STREAM_METRICS
        )
        assert (await durable.fetch(1, timeout=5))[0].subject == s.model_metrics(MODEL)
        direct = await js.get_msg(s.STREAM_MODELS, 1, direct=True)
        assert direct.subject == s.model_events(MODEL)

        await c.nc.publish(s.model_events("x"), b"{}")
        assert await c.refused(s.model_events("x"))
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await js.pull_subscribe(s.USER_EVENTS, stream=s.STREAM_USERS)
        assert await c.refused(f"$JS.API.CONSUMER.CREATE.{s.STREAM_USERS}.", whole=False)
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await js.get_msg(s.STREAM_USERS, 1, direct=True)
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await js.add_stream(name="EVIL", subjects=["evil.>"])
        assert await c.refused("$JS.API.STREAM.CREATE.EVIL")
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await js.key_value(s.KV_LEASES)
        gateway_durable = s.readmodel_consumer(s.STREAM_MODELS)
        await c.nc.publish(f"$JS.API.CONSUMER.DELETE.{s.STREAM_MODELS}.{gateway_durable}", b"")
        assert await c.refused(f"$JS.API.CONSUMER.DELETE.{s.STREAM_MODELS}.{gateway_durable}")
        await c.nc.close()

    asyncio.run(check())


def test_revoked_creds_cannot_connect_and_an_open_connection_is_closed(
    system: Embedded, capsys: pytest.CaptureFixture[str]
) -> None:
    """After --revoke the server refuses the user; the reload also closes its open connection."""
    creds = _creds(issue("gone", capsys))
    assert main(["consumer-creds", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["consumer-gone"]

    async def open_connection() -> Consumer:
        return await Consumer.connect(system.url, creds)

    loop = asyncio.new_event_loop()
    try:
        c = loop.run_until_complete(open_connection())
        # The verb runs its own event loop (asyncio.run): call it from another thread.
        revoked = loop.run_until_complete(
            asyncio.to_thread(main, ["consumer-creds", "--revoke", "gone"])
        )
        assert revoked == 0
        assert "consumer-gone revoked (reloaded)" in capsys.readouterr().out

        async def closed() -> None:
            async with asyncio.timeout(10):
                while not c.nc.is_closed:
                    await asyncio.sleep(0.05)

        loop.run_until_complete(closed())
    finally:
        loop.close()
    assert not asyncio.run(can_connect(system.url, creds))
    assert main(["consumer-creds", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_stopped_system_takes_the_consumer_at_its_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issued while stopped: the file is written, and the next config render holds the user."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    embedded.write_config(data, free_port())
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data))
    monkeypatch.delenv("DIGITS_NATS_URL", raising=False)
    info = issue("later", capsys)
    assert info["applied"] == "stopped"
    conf, _ = embedded.write_config(data, free_port())
    users = json.loads(conf.read_text())["authorization"]["users"]
    row = next(u for u in users if u["user"] == "consumer-later")
    assert "digits.evt.models.>" not in row["permissions"]["publish"]["allow"]
    assert row["permissions"]["subscribe"]["allow"] == ["_INBOX.consumer-later.>"]


def test_a_data_dir_without_a_system_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped DIGITS_DATA_DIR gets a usage error, and nothing is written there."""
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "typo"))
    monkeypatch.delenv("DIGITS_NATS_URL", raising=False)
    assert main(["consumer-creds", "x"]) == 2
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("name", ["", "Bad", "a.b", "a>", "x" * 33])
def test_a_bad_name_is_a_usage_error(system: Embedded, name: str) -> None:
    """NAME becomes a subject token and a file name: dots, wildcards and capitals are refused."""
    assert main(["consumer-creds", name]) == 2


def test_an_external_nats_gets_the_file_and_nats_config_renders_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With DIGITS_NATS_URL the verb only writes the file; `digits nats-config` renders it."""
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIGITS_NATS_URL", "nats://nats.example:4222")
    folder = tmp_path / "creds"
    assert issue_with(["ext", "--creds", str(folder)], capsys)["applied"] == "external"
    assert main(["nats-config", "--creds", str(folder)]) == 0
    users = json.loads(capsys.readouterr().out)["authorization"]["users"]
    assert "consumer-ext" in {u["user"] for u in users}


def test_a_cluster_data_dir_gets_the_consumer_on_every_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`digits run --cluster 3` keeps one config per node: each is rewritten and reloaded, and
    the issued user connects to every node (a consumer may be handed any of them)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    cluster = Bus(data, 3, 0, lambda name: RotatingLog(tmp_path / f"{name}.log", 0, 0))
    cluster.start(replicas=3)
    capsys.readouterr()  # provisioning's log lines
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data))
    monkeypatch.delenv("DIGITS_NATS_URL", raising=False)
    try:
        info = issue("everywhere", capsys)
        assert info["applied"] == "reloaded"
        creds = _creds(info)
        for node in cluster.nodes:
            assert asyncio.run(can_connect(node.url, creds)), node.name
        assert main(["consumer-creds", "--revoke", "everywhere"]) == 0
        assert "revoked (reloaded)" in capsys.readouterr().out
        for node in cluster.nodes:
            assert not asyncio.run(can_connect(node.url, creds)), node.name
    finally:
        cluster.stop()
