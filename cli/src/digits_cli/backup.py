"""`digits backup DIR` and `digits restore DIR`: every stream of the system, KV and Object Store
buckets included (they are streams), through JetStream's own snapshots.

A snapshot keeps each message's sequence, so the gateway's tracked stream positions and every
`Nats-Expected-Last-Subject-Sequence` stay true after a restore. The folder holds one
`<stream>.tar.s2` per stream (the server's format) and `manifest.json`, written last: a folder
without it is an unfinished backup and is never restored. The read model (DuckDB) is not saved:
it is rebuilt from the streams, and a restore deletes the embedded system's copy so that it is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from digits_cli import snapshots
from digits_cli.progress import Progress, size
from digits_cli.settings import Settings
from digits_cli.target import Target, open_target

FORMAT = "digits-backup/1"
MANIFEST = "manifest.json"
# The gateway's read model in a data directory (its settings.py: <data_dir>/gateway/...).
READ_MODEL = ("gateway/readmodel.duckdb", "gateway/readmodel.duckdb.wal")


class Refused(Exception):
    """Nothing was done, and the message says why (a connection, a non-empty system)."""


def _order(name: str) -> int:
    # Events first, blobs last: an event saved while the system runs names only objects that
    # were stored before it, so they are in the later Object Store snapshots too.
    return 2 if name.startswith("OBJ_") else 1 if name.startswith("KV_") else 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def _connect(target: Target) -> Client:
    try:
        return await nats.connect(
            target.url.split(","),  # DIGITS_NATS_URL may list every node of a cluster
            user=target.admin.user,
            password=target.admin.password,
            allow_reconnect=False,
            connect_timeout=10,
            max_reconnect_attempts=0,
        )
    except Exception as e:  # any connect failure gets the same clear message
        raise Refused(f"cannot connect to {target.where} ({target.url}): {e}") from e


async def _streams(nc: Client) -> dict[str, dict[str, Any]]:
    """Every stream's state by name."""
    infos = await nc.jetstream().streams_info()
    return {
        i.config.name or "": {"messages": i.state.messages, "bytes": i.state.bytes} for i in infos
    }


def backup(settings: Settings, folder: Path) -> int:
    """Save every stream to `folder` (new or empty)."""
    if (folder / MANIFEST).exists():
        raise SystemExit(f"{folder} already holds a backup: choose a new folder")
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty: choose a new or empty folder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # it holds password hashes and every dataset: the owner's alone
    with open_target(settings, create=False) as target:
        print(f"Backing up {target.where} into {folder}")
        try:
            manifest = asyncio.run(_backup(target, folder))
        except Refused as e:
            raise SystemExit(str(e)) from e
        except snapshots.SnapshotError as e:
            raise SystemExit(f"backup failed: {e}. {folder} has no manifest: not usable") from e
    total = sum(s["bytes"] for s in manifest["streams"])
    print(f"Backup done: {len(manifest['streams'])} streams, {size(total)} in {folder}")
    return 0


async def _backup(target: Target, folder: Path) -> dict[str, Any]:
    nc = await _connect(target)
    try:
        streams = await _streams(nc)
        names = sorted(streams, key=lambda n: (_order(n), n))
        bar = Progress(sum(s["bytes"] for s in streams.values()))
        saved, stored = [], 0
        for i, name in enumerate(names, 1):
            bar.start(f"{name} ({i}/{len(names)})")
            file = folder / f"{name}.tar.s2"
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                meta = await snapshots.snapshot(nc, name, out, bar.advance)
                out.flush()
                os.fsync(out.fileno())
            stored += streams[name]["bytes"]
            bar.set_done(stored)
            saved.append(
                {
                    "name": name,
                    "file": file.name,
                    "bytes": file.stat().st_size,
                    "sha256": _sha256(file),
                    "messages": meta.get("state", {}).get("messages", 0),
                    "snapshot": {"config": meta["config"], "state": meta.get("state", {})},
                }
            )
        bar.finish()
        manifest = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "server_version": nc.connected_server_version and str(nc.connected_server_version),
            "streams": saved,
        }
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(folder / MANIFEST)
        return manifest
    finally:
        await nc.close()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup in `folder`, its files checked against their digests before anything is done."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"{folder} holds no {MANIFEST}: not a backup, or one that did not finish"
        ) from None
    except ValueError as e:
        raise SystemExit(f"{folder / MANIFEST} is damaged: {e}") from e
    if manifest.get("format") != FORMAT:
        raise SystemExit(f"{folder}: unknown backup format {manifest.get('format')!r}")
    for entry in manifest["streams"]:
        file = folder / entry["file"]
        if not file.is_file() or _sha256(file) != entry["sha256"]:
            raise SystemExit(f"backup damaged: {file} is missing or differs from the manifest")
    return manifest


def restore(settings: Settings, folder: Path, force: bool) -> int:
    """Load the backup in `folder` into a stopped (or empty) system."""
    manifest = read_manifest(folder)
    with open_target(settings, create=True) as target:
        if target.embedded_running:
            raise SystemExit(
                f"the system in {settings.data_path} is running: stop it (Ctrl-C on `digits run`) "
                "and run the restore again"
            )
        print(f"Restoring {folder} (made {manifest['created_at']}) into {target.where}")
        try:
            asyncio.run(_restore(target, folder, manifest, force))
        except Refused as e:
            raise SystemExit(str(e)) from e
        except snapshots.SnapshotError as e:
            raise SystemExit(
                f"restore failed: {e}. The system may hold part of the backup: "
                "run the restore again with --force"
            ) from e
    if not settings.nats_url:
        for name in READ_MODEL:
            (Path(settings.data_path) / name).unlink(missing_ok=True)
        print("Restore done. Start the system (digits run): the gateway rebuilds its read model.")
    else:
        print(
            "Restore done. Delete each gateway's read model (<data dir>/gateway/readmodel.duckdb) "
            "before starting the services: it is rebuilt from the restored streams."
        )
    return 0


async def _restore(target: Target, folder: Path, manifest: dict[str, Any], force: bool) -> None:
    nc = await _connect(target)
    try:
        js = nc.jetstream()
        existing = await _streams(nc)
        wanted = [e for e in manifest["streams"] if e["name"] in existing]
        holding = [e["name"] for e in wanted if existing[e["name"]]["messages"]]
        if holding and not force:
            raise Refused(
                "the system is not empty; these streams hold messages: "
                + ", ".join(holding)
                + ". Restoring replaces them: run again with --force to do so."
            )
        for entry in wanted:  # empty ones are only what a first start provisioned
            await js.delete_stream(entry["name"])
        bar = Progress(sum(e["bytes"] for e in manifest["streams"]))
        for i, entry in enumerate(manifest["streams"], 1):
            bar.start(f"{entry['name']} ({i}/{len(manifest['streams'])})")
            with open(folder / entry["file"], "rb") as src:
                meta = entry["snapshot"]
                if target.single_node:  # a cluster's R3 streams come back on one server as R1
                    meta = {**meta, "config": {**meta["config"], "num_replicas": 1}}
                await snapshots.restore(nc, entry["name"], meta, src, bar.advance)
        bar.finish()
        restored = await _streams(nc)
        for entry in manifest["streams"]:
            got = restored.get(entry["name"], {}).get("messages")
            if got != entry["messages"]:
                raise snapshots.SnapshotError(
                    f"restore of {entry['name']} ended with {got} messages, the backup has "
                    f"{entry['messages']}"
                )
    finally:
        await nc.close()
