"""Which NATS an operator's verb (backup, restore) talks to, as the admin.

DIGITS_NATS_URL set: that server, with the admin's credentials from DIGITS_NATS_CREDS. Otherwise
the embedded server of the data directory: its port is in `<data>/nats/nats.conf` and the admin's
credentials beside it. When that server is not running (the system is stopped), the verb starts
it on its own for the time it needs, on the same store, and stops it after.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from digits_cli import nats
from digits_cli.settings import Settings
from digits_proto.runtime import CREDS_ENV, NatsCredentials, credentials_for


@dataclass(frozen=True)
class Target:
    """A NATS server reachable now, the admin's credentials for it, and what to call it."""

    url: str
    admin: NatsCredentials
    where: str
    embedded_running: bool = False  # the data dir's own server, started by `digits run`
    single_node: bool = True  # the embedded server (no cluster: every stream has one replica)


def hold_store(data: Path) -> IO[bytes]:
    """Claim the data directory's NATS store for this process while the returned file is open.

    nats-server does not lock its store: a `digits run` started during a restore (or a restore
    during a start) would run two servers on one store. The launcher and these verbs both claim
    it first (an flock, released by the kernel when the process ends, however it ends).
    """
    folder = data / "nats"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    held = open(folder / "store.lock", "ab")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.close()
        raise SystemExit(
            f"{data} is in use by another digits process (a run, backup or restore): "
            "wait for it or stop it first"
        ) from None
    return held


def _listening_port(conf: Path) -> int | None:
    """The port the embedded server's config names, if it is accepting connections now."""
    try:
        listen = json.loads(conf.read_text())["listen"]
        port = int(str(listen).rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return None
    with socket.socket() as s:
        return port if s.connect_ex(("127.0.0.1", port)) == 0 else None


def _external(settings: Settings) -> Target:
    admin = credentials_for(nats.ADMIN)
    if admin is None or admin.user != nats.ADMIN:
        raise SystemExit(
            f"DIGITS_NATS_URL is set: {CREDS_ENV} must name digits-admin's credentials "
            "(the admin's .json file or the credentials folder)"
        )
    return Target(settings.nats_url, admin, f"NATS at {settings.nats_url}", single_node=False)


@contextlib.contextmanager
def open_target(settings: Settings, create: bool) -> Iterator[Target]:
    """The server to work on; for a stopped embedded system, one started for the block.

    `create`: the data directory may be empty or missing (a restore); otherwise it must hold a
    system's NATS store (a backup of a data directory that was never run is a mistake).
    """
    if settings.nats_url:
        yield _external(settings)
        return
    data = Path(settings.data_path)
    folder = data / "nats"
    if port := _listening_port(folder / "nats.conf"):
        admin = nats.credentials(folder / "creds")[nats.ADMIN]
        yield Target(f"nats://127.0.0.1:{port}", admin, f"the running system in {data}", True)
        return
    if not create and not (folder / "jetstream").is_dir():
        raise SystemExit(
            f"no DIGITS system in {data} (no nats/jetstream there): set DIGITS_DATA_DIR to the "
            "system's data directory, or DIGITS_NATS_URL (+ DIGITS_NATS_CREDS) for an external NATS"
        )
    os.umask(0o077)  # as the launcher: the data directory is the owner's alone
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data / "logs").mkdir(exist_ok=True)
    lock = hold_store(data)
    port = settings.nats_port or nats.free_port()
    conf, creds = nats.write_config(data, port)
    try:
        proc = nats.start(conf, port, data / "logs" / "nats-server.log")
    except BaseException:
        lock.close()
        raise
    try:
        admin = nats.credentials(creds)[nats.ADMIN]
        yield Target(f"nats://127.0.0.1:{port}", admin, f"the stopped system in {data}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lock.close()
