"""Check the gpu-broker's NVML adapter on a real GPU host: python3 tests/device/nvml_check.py.

Standalone: needs only Python (3.11+) and nvidia-ml-py, none of the project's packages. It lists the
GPUs as the broker would offer them, optionally starts a PyTorch process holding GPU memory (when
torch is importable) and shows it in the telemetry, and prints one telemetry sample per GPU.
Exit 0 on success or on a host without GPUs ("no GPU"), 1 when a check fails.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "services" / "gpu-broker" / "src"))

from digits_gpu_broker import nvml as adapter  # noqa: E402 - after the sys.path line above

HOLD_MIB = 1024
CHILD = f"""
import sys, torch
x = torch.ones({HOLD_MIB} * 2**20 // 4, device="cuda:0")
float(x.sum())  # touch it: the kernel runs and the allocation is real
print("ready", flush=True)
sys.stdin.read()
"""


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def show(sample: adapter.GpuSample) -> None:
    for key, value in dataclasses.asdict(sample).items():
        print(f"    {key:<20} {value}")


def start_torch_child() -> subprocess.Popen[str] | None:
    try:
        import torch  # optional: only to put a real process on the GPU
    except ImportError:
        print("torch: not importable, no GPU process started")
        return None
    if not torch.cuda.is_available():
        print("torch: CUDA not available, no GPU process started")
        return None
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != "ready":
        print(f"torch child failed to start (said {line!r})")
        child.kill()
        return None
    print(f"torch child pid {child.pid} holds ~{HOLD_MIB} MiB on cuda:0")
    return child


def check_identity(gpus: list[adapter.GpuInfo]) -> list[str]:
    share = max(1, cpus() // len(gpus))
    print(f"{len(gpus)} GPU(s), {cpus()} usable CPUs, {share} threads per leased GPU")
    failures = []
    for g in gpus:
        print(
            f"  gpu{g.index}: {g.name} uuid={g.uuid} memory={g.memory_total / 2**30:.1f} GiB "
            f"cc={g.compute_capability}"
        )
        if not (g.uuid and g.name and g.memory_total > 0 and g.compute_capability):
            failures.append(f"gpu{g.index}: incomplete identity {g}")
    return failures


def check_process(nv: adapter.RealNvml, before: adapter.GpuSample, pid: int) -> list[str]:
    time.sleep(1.5)  # let NVML's process accounting catch up
    after = nv.sample(0)
    grew = (after.memory_used or 0) - (before.memory_used or 0)
    print(f"gpu0 memory used grew by {grew / 2**20:.0f} MiB with the torch child alive")
    failures = []
    if grew < HOLD_MIB * 2**20 * 0.9:
        failures.append(f"memory_used grew only {grew} bytes")
    pids = dict(after.processes)
    if pid in pids:
        print(f"child pid {pid} listed, {pids[pid] / 2**20:.0f} MiB")
    else:
        # In a PID namespace NVML reports host pids: then only their presence can be checked.
        print(f"child pid {pid} not among NVML pids {sorted(pids)}")
        if not pids:
            failures.append("no GPU process listed while the torch child runs")
    return failures


def check_samples(nv: adapter.RealNvml, gpus: list[adapter.GpuInfo]) -> list[str]:
    started = time.perf_counter()
    samples = [nv.sample(g.index) for g in gpus]
    took = (time.perf_counter() - started) * 1000
    print(f"telemetry sample of {len(gpus)} GPU(s) took {took:.1f} ms:")
    failures = []
    for s in samples:
        print(f"  gpu{s.index}")
        show(s)
        if s.memory_total is None or s.memory_used is None:
            failures.append(f"gpu{s.index}: no memory info")
    return failures


def main() -> int:
    nv = adapter.open_nvml()
    if nv is None:
        print("no GPU: NVML unavailable or no devices; the broker would offer CPU slots")
        return 0
    gpus = nv.devices()
    failures = check_identity(gpus)
    before = nv.sample(0)
    child = start_torch_child()
    try:
        if child is not None:
            failures += check_process(nv, before, child.pid)
        failures += check_samples(nv, gpus)
    finally:
        if child is not None:
            child.kill()
            child.wait()
        nv.close()
    for f in failures:
        print(f"FAIL: {f}")
    print("nvml_check: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
