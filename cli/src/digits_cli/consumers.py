"""`digits consumer-creds`: read-only NATS credentials for outside event consumers.

An operator's verb that works on the data directory, as `digits backup` does. Each consumer is a
NATS user `consumer-NAME` whose row (`permissions.consumer_grant`) lets it read the domain and
metrics streams through consumers of its own and publish on no `digits.` subject. Its password
file lives with the services' (`<data>/nats/creds/consumer-NAME.json`, 0600); issuing or revoking
one re-renders the embedded server's config and reloads the running server (SIGHUP), then checks
that the change took effect by connecting as that user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats as nats_py

from digits_cli import nats
from digits_cli.settings import Settings
from digits_proto import subjects
from digits_proto.permissions import CONSUMER_PREFIX, CONSUMER_STREAMS
from digits_proto.runtime import NatsCredentials

# A subject token and a file name: no dots, wildcards, slashes or spaces.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
RELOAD_SECONDS = 15.0


@dataclass(frozen=True)
class Where:
    """The credentials folder and the embedded servers' configs (one, or one per cluster node;
    None: an external NATS)."""

    creds: Path
    confs: list[Path] | None
    url: str | None  # how a consumer on this machine reaches the server, when known


def add_verb(verbs: argparse._SubParsersAction) -> None:
    """`digits consumer-creds NAME | --revoke NAME | --list`."""
    verb = verbs.add_parser(
        "consumer-creds",
        help="issue, revoke or list read-only NATS credentials for outside event consumers",
        description="Issue a NATS user consumer-NAME that may read DIGITS_DATASETS, "
        "DIGITS_MODELS, DIGITS_METRICS, DIGITS_PROGRESS and DIGITS_GPUS through its own "
        "consumers (never DIGITS_USERS, the work queue, KV or Object Store) and publish on no "
        "digits. subject. Its credentials go to <data>/nats/creds/consumer-NAME.json (0600); "
        "the running embedded nats-server is reloaded. With DIGITS_NATS_URL (an external "
        "NATS) the file is written to --creds and you re-render the server's config with "
        "`digits nats-config` and reload it yourself.",
    )
    verb.add_argument("name", nargs="?", help="the consumer's name: a-z, 0-9, '-' or '_'")
    verb.add_argument("--revoke", action="store_true", help="remove NAME's credentials")
    verb.add_argument("--list", action="store_true", help="list the issued consumers")
    verb.add_argument("--creds", help="credentials folder (default: <data dir>/nats/creds)")
    verb.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The verb: 0 done, 2 bad usage, 3 the server did not take the change."""
    where = _where(settings, args.creds)
    if args.list:
        return _list(where, args.json)
    if not args.name or not NAME.fullmatch(args.name):
        sys.stderr.write("consumer-creds: NAME must be 1-32 of a-z, 0-9, '-', '_'\n")
        return 2
    user = CONSUMER_PREFIX + args.name
    if where.confs is not None and not where.confs:
        sys.stderr.write(
            f"consumer-creds: no DIGITS system in {where.creds.parent.parent} (no nats config): "
            "set DIGITS_DATA_DIR to the system's data directory, or DIGITS_NATS_URL and --creds "
            "for an external NATS\n"
        )
        return 2
    if args.revoke:
        return revoke(where, user)
    return issue(where, user, args.json)


def _where(settings: Settings, creds: str | None) -> Where:
    data = Path(settings.data_path)
    folder = Path(creds) if creds else data / "nats" / "creds"
    if settings.nats_url:
        return Where(folder, None, None)
    # The single embedded server's config, or each node's of a `--cluster N` data dir.
    single = data / "nats" / "nats.conf"
    confs = [single] if single.exists() else sorted(data.glob("nats/node*/nats.conf"))
    urls = [f"nats://127.0.0.1:{_port(conf)}" for conf in confs]
    return Where(folder, confs, ",".join(urls) or None)


def _port(conf: Path) -> int:
    return int(str(json.loads(conf.read_text())["listen"]).rsplit(":", 1)[1])


def _rewrite_users(conf: Path, creds_dir: Path) -> int | None:
    """Put every user of `creds_dir` into `conf` (all else kept: listen, store, cluster);
    the pid of the server running it, if one is."""
    config = json.loads(conf.read_text())
    config["authorization"] = nats.authorization(nats.credentials(creds_dir))
    nats.write_private(conf, (json.dumps(config, indent=2) + "\n").encode())
    pid_file = config.get("pid_file")
    return _server_pid(Path(pid_file) if pid_file else None)


def issue(where: Where, user: str, as_json: bool) -> int:
    """Make (or show again) `user`'s credentials and apply them to the server."""
    file = where.creds / f"{user}.json"
    if file.exists():
        creds = msgspec.json.decode(file.read_bytes(), type=NatsCredentials)
    else:
        nats.credentials(where.creds)  # the folder, 0700, as the services' credentials
        creds = NatsCredentials(user=user, password=secrets.token_urlsafe(32))
        nats.write_private(file, msgspec.json.encode(creds))
    applied = _apply(where, creds, present=True)
    info = {
        "user": user,
        "file": str(file),
        "url": where.url,
        "inbox_prefix": subjects.inbox_prefix(user),
        "streams": list(CONSUMER_STREAMS),
        "applied": applied,
    }
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        sys.stdout.write(_how_to_connect(info))
    return 0 if applied != "failed" else 3


def revoke(where: Where, user: str) -> int:
    """Remove `user`'s credentials and apply that to the server."""
    file = where.creds / f"{user}.json"
    if not file.exists():
        sys.stderr.write(f"consumer-creds: no consumer {user} in {where.creds}\n")
        return 2
    creds = msgspec.json.decode(file.read_bytes(), type=NatsCredentials)
    file.unlink()
    applied = _apply(where, creds, present=False)
    sys.stdout.write(f"{user} revoked ({applied})\n")
    return 0 if applied != "failed" else 3


def _list(where: Where, as_json: bool) -> int:
    users = sorted(p.stem for p in where.creds.glob(f"{CONSUMER_PREFIX}*.json"))
    if as_json:
        sys.stdout.write(json.dumps(users) + "\n")
    else:
        sys.stdout.write("".join(f"{u}\n" for u in users) or "no consumers issued\n")
    return 0


def _apply(where: Where, creds: NatsCredentials, present: bool) -> str:
    """Re-render the embedded server's config and reload it; what happened, in a word or two.

    `reloaded`: the server took it (checked by connecting as the user); `stopped`: the system
    is not running, the next `digits run` renders it; `restart`: a server started before
    config reloads existed (no pid file) runs, restart the system; `external`: the operator
    renders and reloads; `failed`: the server still answers as before.
    """
    if where.confs is None:
        return "external"
    # Every node of a cluster gets the same users: a consumer may connect to any of them.
    running = {conf: _rewrite_users(conf, where.creds) for conf in where.confs}
    if not any(running.values()):
        listening = any(asyncio.run(_listening(_url(conf))) for conf in where.confs)
        return "restart" if listening else "stopped"
    for pid in filter(None, running.values()):
        os.kill(pid, signal.SIGHUP)  # nats-server reloads its config on SIGHUP
    urls = [_url(conf) for conf, pid in running.items() if pid]
    deadline = time.monotonic() + RELOAD_SECONDS
    while time.monotonic() < deadline:
        if all(asyncio.run(can_connect(url, creds)) == present for url in urls):
            return "reloaded"
        time.sleep(0.2)
    return "failed"


def _url(conf: Path) -> str:
    return f"nats://127.0.0.1:{_port(conf)}"


def _server_pid(pid_file: Path | None) -> int | None:
    """The running embedded server's pid, if its pid file names a live nats-server."""
    try:
        pid = int(pid_file.read_text().strip()) if pid_file else 0
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        if pid <= 0 or (cmdline.parent.exists() and b"nats-server" not in cmdline.read_bytes()):
            return None
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


async def _listening(url: str) -> bool:
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    return True


async def can_connect(url: str, creds: NatsCredentials) -> bool:
    """Whether the server accepts `creds` now."""
    try:
        nc = await nats_py.connect(
            url,
            user=creds.user,
            password=creds.password,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )
    except (nats_py.errors.Error, OSError, TimeoutError):
        return False
    await nc.close()
    return True


def _how_to_connect(info: dict[str, object]) -> str:
    state = {
        "reloaded": "the running server accepts it now",
        "stopped": "the system is stopped: the next `digits run` accepts it",
        "restart": "the running server has no pid file to reload: restart the system",
        "external": "render the server's config with `digits nats-config` and reload it",
        "failed": "the running server did not take it: see its log",
    }[str(info["applied"])]
    return (
        f"{info['user']}: {state}\n"
        f"credentials: {info['file']} (user and password; keep it owner-only)\n"
        f"server: {info['url'] or 'your NATS URL'}\n"
        f"connect with inbox_prefix={info['inbox_prefix']!s} (replies arrive only there)\n"
        f"readable streams: {', '.join(CONSUMER_STREAMS)}\n"
        "see proto/README.md, section Consumers, and examples/\n"
    )
