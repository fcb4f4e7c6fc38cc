"""Processes as /proc shows them (no psutil here): what a process started, and whether it still
runs — each pid with its start time, so a reused pid is never taken for the one we saw."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

GONE_WITHIN = 10.0  # seconds: the kernel's parent-death signal is immediate; init reaps later


def stat_of(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process; None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every process below `root` (children, grandchildren…), pid → start time."""
    table = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        if (stat := stat_of(int(entry))) is not None:
            table[int(entry)] = stat
    found: dict[int, int] = {}
    parents = [root]
    while parents:
        parent = parents.pop()
        for pid, (ppid, _, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                parents.append(pid)
    return found


def still_running(processes: dict[int, int]) -> list[str]:
    """Those of `processes` still running (a zombie has ended: only init's reaping is left)."""
    left = []
    for pid, started in processes.items():
        stat = stat_of(pid)
        if stat is not None and stat[2] == started and stat[1] not in ("Z", "X"):
            left.append(f"{pid} {command_of(pid)}")
    return left


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    except OSError:
        return "?"


def assert_all_end(processes: dict[int, int]) -> None:
    """Poll until none of `processes` runs; fail naming the ones left (and kill them)."""
    deadline = time.monotonic() + GONE_WITHIN
    while (left := still_running(processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in processes if left else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # not left running for the next tests
    assert not left, f"outlived their service by {GONE_WITHIN:g} s: {left}"
