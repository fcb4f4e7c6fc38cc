"""A training child started ahead of its job: the interpreter and MXNet's import (~4 s of a
child's start on 2 cores) are paid while nobody waits, so a job, above all a resumed one, starts
training sooner.

`Spares.start` hands the job to the spare when its environment is the one the lease asks for
(threads, visible GPUs), else starts a fresh child as before. The next spare is started when a
child ends (`Spares.refill`), not beside it: its import would take CPU from the job that trains.
While jobs wait in the device queue (`eager` says so) it is started as soon as a job takes the
spare instead: the next job's lease follows the end of this one at once, and a spare started
only then would make it wait out a whole import (with hundreds of short jobs queued, the
import is most of each job's start).
The node's last lease is remembered on disk (ids, devices, threads; never the environment
itself), so a trainer that starts (a replacement after a crash, say) has a spare ready for the
job it will resume.

A spare is confined like any training child, in a folder of its own (`spares/<id>`, its `/job`
and working folder). Its job's folder is staged as usual; the hand-over moves the staged files
into the spare's folder and renames that to the job's: the sandbox's bind (and the spare's
working folder) follow the folder, not its name, so the spare finds its job where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog

from digits_proto.gpus import LeaseAccepted
from digits_trainer.confine import WORK, Confiner, Limits, remove_tree
from digits_trainer.confined import Confined, spawn
from digits_trainer.joblog import LOG_FILE
from digits_trainer.process import child_environment, child_limits, start_child

log = structlog.get_logger(__name__)


class Handover(msgspec.Struct, frozen=True, kw_only=True):
    """The one line a spare reads on stdin: its job's config file and folder."""

    config: str
    folder: str


class Spares:
    """Keeps one spare child (MXNet imported, waiting on stdin) for the next attempt."""

    def __init__(
        self,
        memory: Path | None = None,
        enabled: bool = True,
        confiner: Confiner | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.memory = memory  # where the node's last lease is kept
        self.enabled = enabled
        # Each spare's folder (renamed to its job's at the hand-over: the same file system).
        self.home = (memory.parent if memory else Path(tempfile.gettempdir())) / "spares"
        self.confiner = confiner
        self.limits = limits or Limits()
        self.spare: tuple[dict[str, str], Spare] | None = None
        self.closed = False
        # Whether jobs wait for devices now (None: never start a spare beside a job).
        self.eager: Callable[[], bool] | None = None

    async def warm(self) -> None:
        """Start a spare for the node's last lease, if one is remembered."""
        if self.memory is None or not self.enabled:
            return
        with contextlib.suppress(OSError, msgspec.DecodeError):
            await self.refill(msgspec.json.decode(self.memory.read_bytes(), type=LeaseAccepted))

    def require(self, user_code: bool) -> None:
        """Raise SandboxUnavailable when a job runs user code and it cannot be confined."""
        if user_code and self.confiner is not None:
            self.confiner.require()

    async def start(self, config: Path, folder: Path, lease: LeaseAccepted) -> Confined:
        """The job's child: the spare if it suits the lease, else a fresh one. The lease is
        remembered, so a replacement trainer warms a spare for it."""
        env = child_environment(lease)
        child = None
        if self.spare is not None:
            spare_env, spare = self.spare
            self.spare = None
            if spare_env == env:
                child = await hand_over(spare, config, folder)
            if child is None:
                await discard(spare)
        if child is None:
            child = await start_child(config, folder, env, self.confiner, self.limits)
        self.remember(lease)
        if self.eager is not None and self.eager():
            await self.refill(lease)  # the next queued job's child, importing meanwhile
        return child

    async def refill(self, lease: LeaseAccepted) -> None:
        """Have a live spare for `lease`'s environment (and remember the lease): kept if the
        one waiting suits it, else replaced."""
        if not self.enabled or self.closed:
            return
        env = child_environment(lease)
        if self.spare is not None:
            spare_env, spare = self.spare
            if spare_env == env and spare.process.returncode is None:
                return
            await discard(spare)
        folder = self.home / uuid.uuid4().hex
        self.spare = (env, await start_spare(env, folder, self.confiner, self.limits))
        self.remember(lease)

    def remember(self, lease: LeaseAccepted) -> None:
        """Keep the node's last lease on disk for `warm`."""
        if self.memory is not None and self.enabled:
            with contextlib.suppress(OSError):
                self.memory.parent.mkdir(parents=True, exist_ok=True)
                self.memory.write_bytes(msgspec.json.encode(lease))

    async def ready(self) -> bool:
        """Wait until the spare has imported MXNet (its `ready` line); False if there is none
        or it died. Its job's reports follow on the same stdout."""
        if self.spare is None or self.spare[1].process.stdout is None:
            return False
        return bool(await self.spare[1].process.stdout.readline())

    async def close(self) -> None:
        """Stop the spare and start no other."""
        self.closed = True
        if self.spare is not None:
            await discard(self.spare[1])
            self.spare = None


class Spare(msgspec.Struct):
    """A waiting child and the folder it was started in."""

    process: Confined
    folder: Path


async def start_spare(
    env: dict[str, str], folder: Path, confiner: Confiner | None, limits: Limits
) -> Spare:
    """`python -m digits_trainer.child --wait` in a fresh folder: imports, then waits for its
    Handover. Its stderr is the folder's log file (emptied at the hand-over)."""
    remove_tree(folder)
    folder.mkdir(parents=True)
    if confiner is not None:
        confiner.prepare(folder)
    else:
        (folder / WORK).mkdir()
    with open(folder / LOG_FILE, "ab") as log_file:
        process = await spawn(
            confiner,
            [sys.executable, "-m", "digits_trainer.child", "--wait"],
            folder,
            env,
            child_limits(limits, env),
            gpus=bool(env.get("CUDA_VISIBLE_DEVICES")),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            limit=1 << 20,
        )
    return Spare(process, folder)


def adopt(spare: Path, folder: Path) -> None:
    """Make the spare's folder the job's: the staged files (log, config, inputs) move into it
    and it takes the job folder's name. The spare's log (its import's noise) is replaced by
    the job's; the spare keeps writing to it (O_APPEND), now after the job's lines."""
    with open(spare / LOG_FILE, "r+b") as spare_log:
        spare_log.truncate(0)
        with contextlib.suppress(FileNotFoundError), open(folder / LOG_FILE, "rb") as job_log:
            while chunk := job_log.read(1 << 20):
                spare_log.write(chunk)
    for entry in os.listdir(folder):
        if entry not in (LOG_FILE, WORK):  # the spare has its own (empty) work folder
            os.rename(folder / entry, spare / entry)
    remove_tree(folder)
    os.rename(spare, folder)


async def hand_over(spare: Spare, config: Path, folder: Path) -> Confined | None:
    """Give the spare its job; None if it is gone (it died, or was killed)."""
    process = spare.process
    if process.returncode is not None or process.stdin is None:
        return None
    adopt(spare.folder, folder)
    line = msgspec.json.encode(Handover(config=config.name, folder=".")) + b"\n"
    try:
        process.stdin.write(line)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        log.warning("spare_child_gone", returncode=process.returncode)
        return None
    return process


async def discard(spare: Spare) -> None:
    """End a spare that will not be used, and remove its folder (unless it became a job's)."""
    await spare.process.end()
    if spare.folder.exists():
        remove_tree(spare.folder)
