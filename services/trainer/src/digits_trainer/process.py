"""The training child as a process: its environment, its start in a fresh interpreter, its end."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from digits_proto.gpus import LeaseAccepted
from digits_trainer.settings import inherited_environment


def child_devices(lease: LeaseAccepted) -> list[str]:
    """The child's devices: GPUs renumbered from 0 (it sees only its own), else the CPU."""
    gpus = [d for d in lease.devices if d.kind == "gpu"]
    return [f"gpu:{i}" for i in range(len(gpus))] or ["cpu"]


def child_environment(lease: LeaseAccepted) -> dict[str, str]:
    """A clean environment: no bus settings, OMP threads and visible GPUs from the lease."""
    gpus = [str(d.index) for d in lease.devices if d.kind == "gpu"]
    return {
        **inherited_environment(),
        "OMP_NUM_THREADS": str(max(1, lease.threads)),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # NVML's numbering, which the broker uses
        "CUDA_VISIBLE_DEVICES": ",".join(gpus),
        "PYTHONUNBUFFERED": "1",
    }


async def start_child(
    config: Path, folder: Path, env: dict[str, str]
) -> asyncio.subprocess.Process:
    """A fresh interpreter (never a fork of this one: MXNet's threads do not survive fork)."""
    with open(folder / "train.log", "ab") as log_file:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "digits_trainer.child",
            str(config),
            cwd=folder,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            limit=1 << 20,
        )


async def terminate(child: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (DIGITS's abort)."""
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        await asyncio.wait_for(child.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
