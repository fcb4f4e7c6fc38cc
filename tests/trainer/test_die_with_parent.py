"""A child started through `confined.spawn` dies with the process that started it, even one
killed with SIGKILL: a real parent process spawns a child that would sleep for two minutes
(confined by bubblewrap, or not), and is `kill -9`ed."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import assert_all_end, command_of, descendants

# The parent: spawn the sleeper as the trainer spawns its children, say so, then wait.
PARENT = """
import asyncio, sys
from pathlib import Path
from digits_trainer.confine import Confiner, Limits
from digits_trainer.confined import spawn

async def main(mode: str, folder: str) -> None:
    confiner = None
    if mode == "bwrap":
        confiner = Confiner("bwrap", "bwrap", Path(folder))
        confiner.prepare(Path(folder))
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    child = await spawn(
        confiner, sleeper, Path(folder), {}, Limits(), stdin=asyncio.subprocess.DEVNULL
    )
    await child.learn_pid()
    print(child.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("mode", ["bwrap", "off"])
def test_a_child_ends_when_its_parent_is_killed(tmp_path: Path, mode: str) -> None:
    if mode == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = parent.stdout.readline() if parent.stdout else b""
        assert line.strip(), parent.stderr.read().decode() if parent.stderr else ""
        deadline = time.monotonic() + 30  # a sandbox sets up its mounts before the exec
        while True:
            started = descendants(parent.pid)
            commands = [command_of(pid) for pid in started]
            if any("time.sleep(120)" in c for c in commands):
                break
            assert time.monotonic() < deadline, commands
            time.sleep(0.05)
        assert any("bwrap" in c for c in commands) == (mode == "bwrap"), commands
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert_all_end(started)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
