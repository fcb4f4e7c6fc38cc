"""The training child as a process: its environment, its start in a fresh interpreter (confined
by confine.py unless the sandbox is off or unavailable for a standard network), its end."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import msgspec

from digits_proto.gpus import LeaseAccepted
from digits_trainer.confine import Confiner, Limits
from digits_trainer.confined import Confined, spawn
from digits_trainer.joblog import LOG_FILE
from digits_trainer.settings import inherited_environment


def child_devices(lease: LeaseAccepted) -> list[str]:
    """The child's devices: GPUs renumbered from 0 (it sees only its own), else the CPU."""
    gpus = [d for d in lease.devices if d.kind == "gpu"]
    return [f"gpu:{i}" for i in range(len(gpus))] or ["cpu"]


def cuda_library_dirs() -> list[str]:
    """The CUDA 11 runtime libraries PyPI's `nvidia-*-cu11` wheels install (`nvidia/<lib>/lib`
    in site-packages), which `mxnet-cu117` needs on its library path; none without them."""
    found = []
    for entry in sys.path:
        found += sorted(str(p) for p in Path(entry).glob("nvidia/*/lib") if p.is_dir())
    return found


def child_environment(lease: LeaseAccepted) -> dict[str, str]:
    """A clean environment: no bus settings, OMP threads and visible GPUs from the lease; with
    GPUs, the pip-installed CUDA libraries on LD_LIBRARY_PATH."""
    gpus = [str(d.index) for d in lease.devices if d.kind == "gpu"]
    env = inherited_environment()
    libraries = cuda_library_dirs() if gpus else []
    if libraries:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [*libraries, *filter(None, [env.get("LD_LIBRARY_PATH", "")])]
        )
    return {
        # Host copies of >= 200,000 elements (a batch of 256 MNIST digits) otherwise run as an
        # OpenMP loop on the main thread: a second thread team, after which libgomp spins
        # less and every step waits on sleeping workers (LeNet: -30%, bench/train_throughput).
        "MXNET_CPU_PARALLEL_SIZE": str(2**31 - 1),
        **env,
        "OMP_NUM_THREADS": str(max(1, lease.threads)),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # NVML's numbering, which the broker uses
        "CUDA_VISIBLE_DEVICES": ",".join(gpus),
        "PYTHONUNBUFFERED": "1",
    }


def child_limits(limits: Limits, env: dict[str, str]) -> Limits:
    """A training child's limits: no address-space limit with GPUs (CUDA maps their memory)."""
    if env.get("CUDA_VISIBLE_DEVICES"):
        return msgspec.structs.replace(limits, memory_mb=0)
    return limits


async def start_child(
    config: Path,
    folder: Path,
    env: dict[str, str],
    confiner: Confiner | None = None,
    limits: Limits | None = None,
) -> Confined:
    """A fresh interpreter (never a fork of this one: MXNet's threads do not survive fork), in
    the job's folder; its stderr is the job's log, opened here (the child cannot open it)."""
    with open(folder / LOG_FILE, "ab") as log_file:
        return await spawn(
            confiner,
            [sys.executable, "-m", "digits_trainer.child", str(config.relative_to(folder))],
            folder,
            env,
            child_limits(limits or Limits(), env),
            gpus=bool(env.get("CUDA_VISIBLE_DEVICES")),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            limit=1 << 20,
        )


async def terminate(child: Confined, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (DIGITS's abort); the whole tree."""
    await child.end(grace)
