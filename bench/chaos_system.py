"""The systems `chaos.py` breaks: launched through `digits run` (embedded, or `--cluster 3`) in a
temporary folder, with the trainer's folder (`<data>/trainer`: its jobs and its spare child's
folder, which a job's files are renamed into, so one file system) on a small tmpfs of its own so
that a disk can be filled or made read-only under a running job without touching the NATS store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from system import free_port, launcher_env, processes

JOBS_MB = 256  # the trainer's folder (snapshots, resume points of LeNet: a few MB a job)


class Down(Exception):
    """The system under test stopped answering (its launcher exited)."""


@dataclass
class Chaos:
    """A running DIGITS under test: its URL, folders, launcher and the tmpfs under its jobs."""

    url: str
    base: Path
    root: Path
    launcher: subprocess.Popen[bytes]
    cluster: int
    jobs_mount: Path | None
    notes: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.base / "launcher.log"

    def alive(self) -> bool:
        return self.launcher.poll() is None

    def pids(self) -> dict[str, int]:
        """Each service's pid; nats-server's under `nats-server` (embedded) or `nats-<name>`
        (each cluster node, named by its config's server_name)."""
        found = processes(self.launcher.pid)
        found.pop("nats-server", None)
        for pid, name in nats_servers(self.launcher.pid).items():
            found["nats-server" if not self.cluster else f"nats-{name}"] = pid
        return found

    def kill(self, name: str) -> int:
        """kill -9 of one service or nats-server; its pid."""
        pid = self.pids().get(name)
        if pid is None:
            raise Down(f"no running process named {name} (have {sorted(self.pids())})")
        os.kill(pid, signal.SIGKILL)
        return pid

    def admin(self) -> dict[str, str]:
        """The NATS admin's credentials file (written by the launcher)."""
        file = self.base / "data" / "nats" / "creds" / "digits-admin.json"
        return json.loads(file.read_text())

    def nats_urls(self) -> list[str]:
        """Every nats-server URL the launcher printed ("on nats://…", one or several)."""
        text = self.log.read_text()
        urls = [w.rstrip(",;)") for w in text.split() if w.startswith("nats://")]
        return list(dict.fromkeys(u for part in urls for u in part.split(",")))

    def stream_leader(self, stream: str) -> str:
        """The server_name of the node that leads `stream` (its stream info's cluster.leader)."""
        import nats

        async def ask() -> str:
            creds = self.admin()
            nc = await nats.connect(
                self.nats_urls(), user=creds["user"], password=creds["password"], connect_timeout=5
            )
            try:
                info = await nc.jetstream().stream_info(stream)
                return (info.cluster.leader if info.cluster else None) or ""
            finally:
                await nc.close()

        return asyncio.run(ask())


def nats_servers(launcher: int) -> dict[int, str]:
    """pid → server_name (from its `-c` config; "" without one) of the launcher's nats-servers."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            args = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) != launcher or not args:
            continue
        if not Path(args[0]).name.startswith("nats-server"):
            continue
        name = ""
        if "-c" in args:  # the launcher writes JSON, which nats-server reads as its config
            with contextlib.suppress(OSError, ValueError, IndexError):
                conf = json.loads(Path(args[args.index("-c") + 1]).read_text())
                name = str(conf.get("server_name", ""))
        found[int(entry.name)] = name
    return found


def root_tmpfs() -> str:
    """Why a size-limited folder cannot be mounted here ("" when it can: we are root)."""
    if os.geteuid() != 0:
        return "not root: no tmpfs mount (run as root for the disk-full and read-only rows)"
    return ""


def mount_tmpfs(folder: Path, mb: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mb}m,mode=0755", "tmpfs", str(folder)], check=True
    )


def writers(folder: Path) -> set[int]:
    """Processes with a file under `folder` open (what makes a read-only remount EBUSY)."""
    found = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd).startswith(f"{folder}/"):
                        found.add(int(fd_dir.parent.name))
                        break
    return found


def remount(folder: Path, mode: str) -> None:
    """`ro` or `rw`: the filesystem itself (every bind of it, a sandbox's included)."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True, capture_output=True)


@contextlib.contextmanager
def launched(cluster: int = 0, keep: bool = False, **settings: str) -> Iterator[Chaos]:
    """`digits run [--cluster N]` in a temporary folder with its own port and data root; stopped
    with SIGTERM afterwards, the tmpfs unmounted and the folder deleted (kept with `keep`)."""
    base = Path(tempfile.mkdtemp(prefix="digits-chaos-"))
    root = base / "images"
    root.mkdir()
    jobs = base / "data" / "trainer"
    mounted = None
    if not root_tmpfs():
        mount_tmpfs(jobs, JOBS_MB)
        mounted = jobs
    port = free_port()
    env = launcher_env(base, port, **settings)
    args = [sys.executable, "-m", "digits_cli", "run"]
    if cluster:
        args += ["--cluster", str(cluster)]
    with open(base / "launcher.log", "wb") as log:
        launcher = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    system = Chaos(f"http://127.0.0.1:{port}", base, root, launcher, cluster, mounted)
    try:
        deadline = time.monotonic() + 300
        while not healthy(system):
            if not system.alive():
                raise Down(f"launcher exited: {system.log.read_text()[-1500:]}")
            if time.monotonic() > deadline:
                raise Down(f"not healthy after 300 s: see {system.log}")
            time.sleep(0.5)
        yield system
    finally:
        stop(system)
        if mounted is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                remount(mounted, "rw")
            subprocess.run(["umount", "-l", str(mounted)], check=False)
        if keep:
            print(f"data kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def healthy(system: Chaos) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{system.url}/health", timeout=2).status_code == 200
    return False


def stop(system: Chaos) -> None:
    if system.launcher.poll() is None:
        system.launcher.send_signal(signal.SIGTERM)
        try:
            system.launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            system.launcher.kill()
            system.launcher.wait()
