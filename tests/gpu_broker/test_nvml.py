"""The NVML adapter over a stand-in pynvml module: discovery, degraded queries, "no GPU"."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digits_gpu_broker import nvml as adapter

SRC = Path(adapter.__file__).resolve().parents[1]


class NVMLError(Exception):
    """pynvml's error base."""


class NVMLError_LibraryNotFound(NVMLError):  # pynvml spells it so
    """What nvmlInit raises on a host without the driver library."""


def unsupported(*_: Any) -> Any:
    raise NVMLError("Not Supported")


def stub_pynvml(count: int = 2, init: Callable[[], None] = lambda: None) -> types.ModuleType:
    """A pynvml look-alike: GPU 0 supports everything, GPU 1 lacks power, fan and utilization."""
    ns = types.SimpleNamespace
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError  # type: ignore[attr-defined]
    m.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    m.shutdowns = 0  # type: ignore[attr-defined]

    def shutdown() -> None:
        m.shutdowns += 1  # type: ignore[attr-defined]

    procs = {0: [ns(pid=11, usedGpuMemory=5 << 20)], 1: [ns(pid=12, usedGpuMemory=None)]}
    funcs: dict[str, Callable[..., Any]] = {
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetCount": lambda: count,
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h}".encode(),  # old pynvml: bytes
        "nvmlDeviceGetName": lambda h: "H100" if h == 0 else b"A100",
        "nvmlDeviceGetMemoryInfo": lambda h: ns(total=80 << 30, used=(h + 1) << 30),
        "nvmlDeviceGetCudaComputeCapability": lambda h: (9, 0) if h == 0 else (8, 0),
        "nvmlDeviceGetUtilizationRates": lambda h: (
            ns(gpu=42, memory=7) if h == 0 else unsupported()
        ),
        "nvmlDeviceGetTemperature": lambda h, _sensor: 50 + h,
        "nvmlDeviceGetPowerUsage": lambda h: 150_000 if h == 0 else unsupported(),
        "nvmlDeviceGetFanSpeed": unsupported,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: procs[h],
        "nvmlDeviceGetGraphicsRunningProcesses": lambda h: (
            [ns(pid=11, usedGpuMemory=6 << 20)] if h == 0 else unsupported()
        ),
    }
    for name, fn in funcs.items():
        setattr(m, name, fn)
    return m


def test_discovery_reads_identity_and_decodes_bytes() -> None:
    """Each GPU has index, uuid, name, total memory and compute capability."""
    gpus = adapter.RealNvml(stub_pynvml()).devices()
    assert gpus[0] == adapter.GpuInfo(
        index=0, uuid="GPU-0", name="H100", memory_total=80 << 30, compute_capability="9.0"
    )
    assert gpus[1].name == "A100" and gpus[1].compute_capability == "8.0"


def test_unsupported_queries_degrade_to_none() -> None:
    """A GPU without power, fan or utilization queries samples None there, not an exception."""
    nv = adapter.RealNvml(stub_pynvml())
    full, poor = nv.sample(0), nv.sample(1)
    assert full.utilization == 42.0 and full.power_watts == 150.0 and full.fan_percent is None
    assert full.memory_used == 1 << 30 and full.temperature == 50.0
    assert poor.utilization is None and poor.power_watts is None and poor.temperature == 51.0
    # One pid seen by both compute and graphics lists counts once; unknown memory is 0.
    assert full.processes == [(11, 6 << 20)]
    assert poor.processes == [(12, 0)]


def test_open_nvml_means_no_gpu_when_the_library_or_driver_fails(monkeypatch) -> None:
    """nvmlInit failing (library not found, driver error) or zero GPUs all mean "no GPUs"."""

    def missing() -> None:
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def driver() -> None:
        raise NVMLError("Driver Not Loaded")

    for module in (stub_pynvml(init=missing), stub_pynvml(init=driver), stub_pynvml(count=0)):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        assert adapter.open_nvml() is None
    found = stub_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", found)
    nv = adapter.open_nvml()
    assert nv is not None and len(nv.devices()) == 2
    nv.close()
    assert found.shutdowns == 1  # type: ignore[attr-defined]


def test_open_nvml_without_pynvml_installed_means_no_gpu(monkeypatch) -> None:
    """A host without nvidia-ml-py at all runs CPU slots."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert adapter.open_nvml() is None


@pytest.mark.skipif(adapter.open_nvml() is not None, reason="this host has a GPU")
def test_this_machine_has_no_gpu() -> None:
    """On the CPU-only project machine the real pynvml reports no GPUs (library not found)."""
    assert adapter.open_nvml() is None


def test_adapter_imports_nothing_of_the_project() -> None:
    """`digits_gpu_broker.nvml` loads with the stdlib alone (bare GPU hosts run nvml_check.py)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import digits_gpu_broker.nvml; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('digits_proto', 'msgspec', 'nats', 'structlog', 'pynvml')]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SRC)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
