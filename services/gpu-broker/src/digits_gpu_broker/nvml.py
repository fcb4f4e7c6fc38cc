"""A thin adapter over pynvml behind a Protocol (stdlib + pynvml only: it runs on bare GPU hosts)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class GpuInfo:
    """What NVML says about one GPU at discovery."""

    index: int
    uuid: str
    name: str
    memory_total: int
    compute_capability: str = ""


@dataclass(frozen=True)
class GpuSample:
    """One GPU's state at one instant; a query the GPU does not support is None."""

    index: int
    memory_used: int | None = None
    memory_total: int | None = None
    utilization: float | None = None
    memory_utilization: float | None = None
    temperature: float | None = None
    power_watts: float | None = None
    fan_percent: float | None = None
    processes: list[tuple[int, int]] = field(default_factory=list)


class Nvml(Protocol):
    """The part of NVML the broker uses (FakeNvml implements it in tests)."""

    def devices(self) -> list[GpuInfo]:
        """Every GPU visible to NVML, by index."""
        ...

    def sample(self, index: int) -> GpuSample:
        """Telemetry of one GPU; never raises for an unsupported query."""
        ...

    def close(self) -> None:
        """Release NVML."""
        ...


def _text(value: Any) -> str:
    # Older nvidia-ml-py returned bytes for names and uuids.
    return value.decode() if isinstance(value, bytes) else str(value)


class RealNvml:
    """NVML through pynvml; build it with `open_nvml()`."""

    def __init__(self, pynvml: Any):
        self._nv = pynvml
        self._handles = [
            pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
        ]

    def _try(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except self._nv.NVMLError:
            return None

    def devices(self) -> list[GpuInfo]:
        """Every GPU visible to NVML, by index."""
        nv, out = self._nv, []
        for i, h in enumerate(self._handles):
            mem = self._try(nv.nvmlDeviceGetMemoryInfo, h)
            cc = self._try(nv.nvmlDeviceGetCudaComputeCapability, h)
            out.append(
                GpuInfo(
                    index=i,
                    uuid=_text(self._try(nv.nvmlDeviceGetUUID, h) or ""),
                    name=_text(self._try(nv.nvmlDeviceGetName, h) or ""),
                    memory_total=int(mem.total) if mem is not None else 0,
                    compute_capability=f"{cc[0]}.{cc[1]}" if cc else "",
                )
            )
        return out

    def sample(self, index: int) -> GpuSample:
        """Telemetry of one GPU; each unsupported query is None."""
        nv, h = self._nv, self._handles[index]
        mem = self._try(nv.nvmlDeviceGetMemoryInfo, h)
        util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
        temp = self._try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
        power_mw = self._try(nv.nvmlDeviceGetPowerUsage, h)
        fan = self._try(nv.nvmlDeviceGetFanSpeed, h)
        return GpuSample(
            index=index,
            memory_used=int(mem.used) if mem is not None else None,
            memory_total=int(mem.total) if mem is not None else None,
            utilization=float(util.gpu) if util is not None else None,
            memory_utilization=float(util.memory) if util is not None else None,
            temperature=float(temp) if temp is not None else None,
            power_watts=power_mw / 1000.0 if power_mw is not None else None,
            fan_percent=float(fan) if fan is not None else None,
            processes=self._processes(h),
        )

    def _processes(self, handle: Any) -> list[tuple[int, int]]:
        nv, seen = self._nv, {}
        for fn in (
            nv.nvmlDeviceGetComputeRunningProcesses,
            nv.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            for p in self._try(fn, handle) or []:
                # usedGpuMemory is None when the driver cannot attribute memory (e.g. no permission).
                seen[int(p.pid)] = int(p.usedGpuMemory or 0)
        return sorted(seen.items())

    def close(self) -> None:
        """Release NVML."""
        with contextlib.suppress(self._nv.NVMLError):
            self._nv.nvmlShutdown()


def open_nvml() -> RealNvml | None:
    """NVML if a driver and at least one GPU are there; None means "no GPUs" (CPU slots)."""
    try:
        import pynvml  # optional at import time: a host without it has no GPUs
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable GPU
        return None
    try:
        nvml = RealNvml(pynvml)
    except pynvml.NVMLError:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
        return None
    if not nvml.devices():
        nvml.close()
        return None
    return nvml
