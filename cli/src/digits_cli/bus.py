"""The launcher's bus: one embedded nats-server, or a JetStream cluster on loopback, supervised.

`digits run` starts one server (`<data>/nats/nats.conf`, store `<data>/nats/jetstream`);
`digits run --cluster N` starts N clustered ones, node i in `<data>/nats/node<i>/` (its config,
its own store, its pid file), the route secret and ports kept in `<data>/nats/cluster.json`
(0600) so that the next start rejoins the same cluster. A node that dies is started again on the
same config, store and port, with the services' backoff; clients reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import nats as nats_client

from digits_cli import logfiles, nats
from digits_proto.runtime import NatsCredentials

MAX_BACKOFF = 30.0
CLUSTER_FILE = "cluster.json"
# A new cluster elects its JetStream meta leader within seconds; a loaded machine is slower.
ELECTION_TIMEOUT = 60.0


def backoff(restarts: int, started_at: float, now: float) -> float:
    """Seconds before the next start, like compose's restart policy: 1 s after a process that
    ran a minute, doubling (to 30 s) while it keeps dying at start."""
    return 1.0 if now - started_at > 60 else min(MAX_BACKOFF, 2.0**restarts)


class Restartable(Protocol):
    """A supervised process (a service, a nats-server) and its restart bookkeeping."""

    restarts: int
    next_start: float
    started_at: float


def restart_due(entry: Restartable, announce: Callable[[float], None]) -> bool:
    """Whether a dead process may start again now. The first call after its death schedules
    the start after its backoff and calls `announce(seconds)`; True once that time has come."""
    now = time.monotonic()
    if entry.next_start == 0.0:
        wait = backoff(entry.restarts, entry.started_at, now)
        entry.next_start = now + wait
        announce(wait)
    if now < entry.next_start:
        return False
    entry.restarts += 1
    entry.next_start = 0.0
    return True


@dataclass
class Node:
    """One supervised nats-server: what it runs on and how often it was restarted."""

    name: str  # its log's name: nats-server (the single one) or nats-<i>
    conf: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


class Bus:
    """`size` nats-servers on loopback (1: the embedded server; 3 or more: a cluster, as
    `Settings.replicas` checks)."""

    def __init__(
        self,
        data_dir: Path,
        size: int,
        port: int,
        log: Callable[[str], logfiles.RotatingLog],
        echo: Callable[..., None] = print,
    ):
        self.data_dir, self.size, self.log, self.echo = data_dir, size, log, echo
        self.folder = data_dir / "nats"
        self.creds_dir = self.folder / "creds"
        self.nodes = self._single(port) if size == 1 else self._cluster(port)
        other = self.folder / ("node1" if size == 1 else "jetstream")
        if other.is_dir():  # the streams of one mode are not those of the other
            self.echo(
                f"note: {other} holds the store of a {'cluster' if size == 1 else 'single server'}"
                f" run; this {'single server' if size == 1 else 'cluster'} does not use it (move "
                "the streams with `digits backup` and `digits restore`)"
            )

    @property
    def url(self) -> str:
        """Every node's address, comma-separated: what services and clients are given."""
        return ",".join(node.url for node in self.nodes)

    @property
    def admin(self) -> NatsCredentials:
        return nats.credentials(self.creds_dir)[nats.ADMIN]

    def _single(self, port: int) -> list[Node]:
        conf, _ = nats.write_config(self.data_dir, port or nats.free_port())
        return [Node("nats-server", conf, _port(conf))]

    def _cluster(self, port: int) -> list[Node]:
        """Node configs from the kept route secret and ports (new ones on a first start)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        kept = _read_cluster(self.folder / CLUSTER_FILE)
        if kept and kept["size"] != self.size:
            raise SystemExit(
                f"{self.data_dir} holds a {kept['size']}-node cluster: run with --cluster "
                f"{kept['size']}, or use another DIGITS_DATA_DIR"
            )
        # DIGITS_NATS_PORT fixes the client ports (a busy one fails the start, said clearly);
        # otherwise the last run's ports again where they are still free.
        taken: set[int] = set()
        if port:
            clients = [port + i for i in range(self.size)]
            taken.update(clients)
        else:
            clients = _ports(kept.get("client_ports", []), self.size, taken)
        routes = _ports(kept.get("route_ports", []), self.size, taken)
        peers = nats.cluster_peers(self.size, routes, password=kept.get("password"))
        state = {
            "size": self.size,
            "password": peers[0].password,
            "client_ports": clients,
            "route_ports": routes,
        }
        nats.write_private(self.folder / CLUSTER_FILE, (json.dumps(state) + "\n").encode())
        authz = nats.authorization(nats.credentials(self.creds_dir))
        nodes = []
        for i, peer in enumerate(peers):
            folder = self.folder / f"node{i + 1}"
            folder.mkdir(mode=0o700, exist_ok=True)
            conf = folder / "nats.conf"
            text = nats.config_text(
                authz,
                f"127.0.0.1:{clients[i]}",
                (folder / "jetstream").as_posix(),
                (folder / nats.PID_FILE).as_posix(),
                cluster=peer,
            )
            nats.write_private(conf, text.encode())
            nodes.append(Node(f"nats-{i + 1}", conf, clients[i]))
        return nodes

    def start(self, replicas: int) -> None:
        """Start every node, wait for JetStream (a cluster elects its leader first), then create
        or update every stream and bucket with `replicas` as the admin."""
        for node in self.nodes:
            self._start(node)
        if self.size > 1:
            asyncio.run(until_jetstream(self.url, self.admin))
        nats.provision(self.url, self.admin, replicas)

    def _start(self, node: Node) -> None:
        node.started_at = time.monotonic()
        node.proc = nats.start(node.conf, node.port, self.log(node.name))

    def restart_if_dead(self) -> None:
        """Start a dead node again (same config, store and port) once its backoff has passed;
        a start that fails is retried the same way."""
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is None:
                continue
            code, log = node.proc.returncode, self.log(node.name).path
            if restart_due(
                node,
                lambda wait, node=node, code=code, log=log: self.echo(
                    f"{node.name} exited with {code}; restarting it on port {node.port} in "
                    f"{wait:.0f} s (log: {log})"
                ),
            ):
                try:
                    self._start(node)
                    self.echo(f"{node.name} is back on {node.url}")
                except SystemExit as e:  # port taken, store unreadable: said, and tried again
                    self.echo(f"{node.name} did not start: {e}")

    def stop(self) -> None:
        """SIGTERM every node (JetStream flushes its store), kill those that hang."""
        running = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for proc in running:
            proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for node in self.nodes:
            node.proc = None

    def describe(self) -> dict[str, str]:
        """What services.json says about the bus: each node's name and address."""
        return {node.name: node.url for node in self.nodes}


def _port(conf: Path) -> int:
    return int(str(json.loads(conf.read_text())["listen"]).rsplit(":", 1)[1])


def _ports(wanted: list[int], count: int, taken: set[int]) -> list[int]:
    """`count` distinct loopback ports: the `wanted` ones still free, new ones for the rest."""
    ports: list[int] = []
    for want in [*wanted[:count], *[0] * max(0, count - len(wanted))]:
        port = want if want and want not in taken and _free(want) else 0
        while not port or port in taken:
            port = nats.free_port()
        taken.add(port)
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _read_cluster(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise SystemExit(
            f"{file} is not valid JSON ({e}): restore it or remove the cluster"
        ) from None


async def until_jetstream(url: str, admin: NatsCredentials) -> None:
    """Until JetStream answers (a cluster has elected its meta leader): a stream created
    before that gets no answer."""
    deadline = time.monotonic() + ELECTION_TIMEOUT
    client = await nats_client.connect(
        url.split(","), user=admin.user, password=admin.password, max_reconnect_attempts=-1
    )
    try:
        while True:
            try:
                await client.jetstream().account_info()
                return
            except (nats_client.errors.Error, TimeoutError) as e:  # not elected yet: no
                # responders, a timeout or 503 (every JetStream error derives from nats' Error)
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the NATS cluster elected no JetStream leader in {ELECTION_TIMEOUT:.0f} s "
                        f"({e!r}); see the nats-<i>.log files"
                    ) from None
                await asyncio.sleep(0.2)
    finally:
        await client.close()
