"""A started child, confined or not, and how to end its whole process tree.

Confined, its bwrap's `--info-fd` gives the host pid of the sandbox's first process: SIGKILL
to it makes the kernel end every other process of the pid namespace (a `start_new_session`
grandchild too) before bwrap sees it exit. Unconfined (the dangerous opt-out, or a standard
network without a sandbox), the child leads its own process group, which is signalled.

Either way the child dies with the trainer, however the trainer ends (SIGKILL included): it gets
SIGKILL when its parent dies (`die_with_parent`, armed between fork and exec), and bwrap's
`--die-with-parent` passes that on to the sandbox's first process, so the namespace ends too.
An unconfined child's own children are not covered (the parent-death signal is not inherited):
the opt-out's risk, like the rest of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

from digits_proto.children import die_with_parent_hook, signal_group
from digits_trainer.confine import Confiner, Limits


class Confined:
    """A started child, confined or not, and how to end its whole process tree."""

    def __init__(self, process: asyncio.subprocess.Process, info: int | None) -> None:
        self.process = process
        self.confined = info is not None
        self.info = info  # read end of bwrap's --info-fd pipe ({"child-pid": N})
        self.sandbox_pid: int | None = None

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self.process.stdin

    @property
    def stdout(self) -> asyncio.StreamReader | None:
        return self.process.stdout

    @property
    def stderr(self) -> asyncio.StreamReader | None:
        return self.process.stderr

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        return await self.process.wait()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def learn_pid(self) -> None:
        """The host pid of the sandbox's first process, from bwrap's info pipe."""
        if self.info is None:
            return
        fd, self.info = self.info, None
        try:
            data = await asyncio.get_running_loop().run_in_executor(None, _read_all, fd)
        finally:
            os.close(fd)
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            self.sandbox_pid = int(json.loads(data or b"{}").get("child-pid"))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole tree. Confined: SIGKILL the namespace's first process (the kernel
        then kills the rest of its namespace before bwrap sees it exit), and bwrap. Unconfined:
        the child's process group (a grandchild in a session of its own escapes that)."""
        if self.confined:
            if self.process.returncode is not None:
                return  # bwrap saw its namespace end: nothing of it is left
            if self.sandbox_pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(self.sandbox_pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            return
        signal_group(self.process.pid, sig)  # a pgid in use is never a new process's pid

    async def exchange(self, request: bytes, limit: int = 1 << 20) -> bytes:
        """Send `request` on stdin, then read stdout to its end; at most `limit` bytes are
        kept (a child that writes more is ended: its answer cannot be that long)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.process.stdin.write(request)
            await self.process.stdin.drain()
            self.process.stdin.close()
        out = bytearray()
        while chunk := await self.process.stdout.read(1 << 16):
            out += chunk
            if len(out) > limit:
                await self.end()
                return bytes(out[:limit])
        await self.process.wait()
        return bytes(out)

    async def end(self, grace: float = 0.0) -> int:
        """End the tree (SIGTERM first and `grace` seconds when unconfined) and wait for it."""
        await self.learn_pid()
        if self.process.returncode is None and grace > 0 and not self.confined:
            self.kill(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
        self.kill()
        return await self.process.wait()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def spawn(
    confiner: Confiner | None,
    command: list[str],
    folder: Path,
    env: dict[str, str],
    limits: Limits,
    gpus: bool = False,
    **kwargs,
) -> Confined:
    """Start `command` confined (when the confiner is on) or as a plain child in `folder`."""
    if confiner is None or not confiner.on:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=folder,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent_hook(),
            **kwargs,
        )
        return Confined(process, None)
    read, write = os.pipe()
    try:
        argv = confiner.argv(command, folder, env, limits, gpus, info_fd=write)
        process = await asyncio.create_subprocess_exec(
            *argv,
            pass_fds=(write,),
            start_new_session=True,
            preexec_fn=die_with_parent_hook(),
            **kwargs,
        )
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return Confined(process, read)
