"""A training child started ahead of its job: the interpreter and MXNet's import (~4 s of a
child's start on 2 cores) are paid while nobody waits, so a job, above all a resumed one, starts
training sooner.

`Spares.start` hands the job to the spare when its environment is the one the lease asks for
(threads, visible GPUs), else starts a fresh child as before. The next spare is started when a
child ends (`Spares.refill`), not beside it: its import would take CPU from the job that trains.
The node's last lease is remembered on disk (ids, devices, threads; never the environment
itself), so a trainer that starts (a replacement after a crash, say) has a spare ready for the
job it will resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import msgspec
import structlog

from digits_proto.gpus import LeaseAccepted
from digits_trainer.process import child_environment, start_child

log = structlog.get_logger(__name__)


class Handover(msgspec.Struct, frozen=True, kw_only=True):
    """The one line a spare reads on stdin: its job's config file and folder."""

    config: str
    folder: str


class Spares:
    """Keeps one spare child (MXNet imported, waiting on stdin) for the next attempt."""

    def __init__(self, memory: Path | None = None, enabled: bool = True) -> None:
        self.memory = memory  # where the node's last lease is kept
        self.enabled = enabled
        self.spare: tuple[dict[str, str], asyncio.subprocess.Process] | None = None
        self.closed = False

    async def warm(self) -> None:
        """Start a spare for the node's last lease, if one is remembered."""
        if self.memory is None or not self.enabled:
            return
        with contextlib.suppress(OSError, msgspec.DecodeError):
            await self.refill(msgspec.json.decode(self.memory.read_bytes(), type=LeaseAccepted))

    async def start(
        self, config: Path, folder: Path, lease: LeaseAccepted
    ) -> asyncio.subprocess.Process:
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
            child = await start_child(config, folder, env)
        self.remember(lease)
        return child

    async def refill(self, lease: LeaseAccepted) -> None:
        """Have a live spare for `lease`'s environment (and remember the lease): kept if the
        one waiting suits it, else replaced."""
        if not self.enabled or self.closed:
            return
        env = child_environment(lease)
        if self.spare is not None:
            spare_env, spare = self.spare
            if spare_env == env and spare.returncode is None:
                return
            await discard(spare)
        self.spare = (env, await start_spare(env))
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
        if self.spare is None or self.spare[1].stdout is None:
            return False
        return bool(await self.spare[1].stdout.readline())

    async def close(self) -> None:
        """Stop the spare and start no other."""
        self.closed = True
        if self.spare is not None:
            await discard(self.spare[1])
            self.spare = None


async def start_spare(env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m digits_trainer.child --wait`: imports, then waits for its Handover."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "digits_trainer.child",
        "--wait",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # until its job's log is its stderr
        limit=1 << 20,
    )


async def hand_over(
    spare: asyncio.subprocess.Process, config: Path, folder: Path
) -> asyncio.subprocess.Process | None:
    """Give the spare its job; None if it is gone (it died, or was killed)."""
    if spare.returncode is not None or spare.stdin is None:
        return None
    line = msgspec.json.encode(Handover(config=str(config), folder=str(folder))) + b"\n"
    try:
        spare.stdin.write(line)
        await spare.stdin.drain()
        spare.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        log.warning("spare_child_gone", returncode=spare.returncode)
        return None
    return spare


async def discard(spare: asyncio.subprocess.Process) -> None:
    """End a spare that will not be used."""
    with contextlib.suppress(ProcessLookupError):
        spare.kill()
    await spare.wait()
