"""FakeNvml: the broker's NVML Protocol with made-up GPUs and processes (no driver needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from digits_gpu_broker.nvml import GpuInfo, GpuSample

GIB = 1 << 30


@dataclass
class FakeGpu:
    """One fake GPU: its identity and the state the next sample reports."""

    name: str = "Fake GPU"
    memory_total: int = 16 * GIB
    memory_used: int = GIB
    utilization: float | None = 37.0
    temperature: float | None = 55.0
    power_watts: float | None = 120.5
    processes: list[tuple[int, int]] = field(default_factory=list)


class FakeNvml:
    """Implements digits_gpu_broker.nvml.Nvml over a list of FakeGpu."""

    def __init__(self, gpus: list[FakeGpu] | None = None, count: int = 2):
        self.gpus = (
            gpus if gpus is not None else [FakeGpu(name=f"Fake GPU {i}") for i in range(count)]
        )
        self.closed = False
        self.samples_taken = 0

    def devices(self) -> list[GpuInfo]:
        """Every fake GPU, by index."""
        return [
            GpuInfo(
                index=i,
                uuid=f"GPU-fake-{i:04d}",
                name=g.name,
                memory_total=g.memory_total,
                compute_capability="9.0",
            )
            for i, g in enumerate(self.gpus)
        ]

    def sample(self, index: int) -> GpuSample:
        """What the fake GPU reports now (fan is unsupported: None, like many datacenter GPUs)."""
        g = self.gpus[index]
        self.samples_taken += 1
        return GpuSample(
            index=index,
            memory_used=g.memory_used,
            memory_total=g.memory_total,
            utilization=g.utilization,
            temperature=g.temperature,
            power_watts=g.power_watts,
            fan_percent=None,
            processes=list(g.processes),
        )

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True
