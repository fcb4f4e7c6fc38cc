"""Loaded networks in a least-recently-used cache bounded by their parameter bytes (and count)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)


def param_bytes(obj: Any) -> int:
    """An estimate of the memory a loaded network holds: the bytes of its parameters.

    Gluon blocks are sized by `collect_params()`; an object that keeps a block in `.net` and
    NumPy copies in `.params` (the Explainer) counts both. Activations are transient and not
    counted; anything else counts as 0 (bounded by the count limit only).
    """
    total = 0
    net = obj if hasattr(obj, "collect_params") else getattr(obj, "net", None)
    if net is not None and hasattr(net, "collect_params"):
        for param in net.collect_params().values():
            try:
                arrays = param.list_data()  # every device copy (the declared shape may be 0s)
            except (RuntimeError, AttributeError):  # not initialised yet: nothing held
                continue
            total += sum(int(a.size) * np.dtype(a.dtype).itemsize for a in arrays)
    copies = getattr(obj, "params", None)
    if isinstance(copies, dict):
        total += sum(int(v.nbytes) for v in copies.values() if isinstance(v, np.ndarray))
    return total


class NetCache:
    """Loaded networks, least recently used evicted first, bounded by bytes and by count.

    `max_bytes` (0 = no byte bound) caps the sum of `size_of(net)`; the entry just loaded is
    always kept, even alone over the bound (a request must be able to use its network). Only
    the predictor's worker thread touches it, so it needs no lock.
    """

    def __init__(
        self,
        max_items: int,
        on_load: Callable[[], None] | None = None,
        *,
        max_bytes: int = 0,
        size_of: Callable[[Any], int] = param_bytes,
    ):
        self.max_items = max(1, max_items)
        self.max_bytes = max(0, max_bytes)
        self.on_load = on_load
        self.size_of = size_of
        self.loads = 0
        self.evictions = 0
        self.bytes = 0
        self._nets: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The network under `key`, loaded with `load()` on a miss."""
        if key in self._nets:
            self._nets.move_to_end(key)
            return self._nets[key][0]
        net = load()
        self.loads += 1
        if self.on_load is not None:
            self.on_load()
        size = self.size_of(net)
        self._nets[key] = (net, size)
        self.bytes += size
        self._evict()
        return net

    def _evict(self) -> None:
        while len(self._nets) > 1 and (
            len(self._nets) > self.max_items or (self.max_bytes and self.bytes > self.max_bytes)
        ):
            key, (_, size) = self._nets.popitem(last=False)
            self.bytes -= size
            self.evictions += 1
            log.info("net_evicted", key=str(key), bytes=size, cached_bytes=self.bytes)

    def drop(self, which: Callable[[Hashable], bool]) -> None:
        """Forget every entry whose key `which` selects (e.g. the nets on a lost device)."""
        for key in [k for k in self._nets if which(k)]:
            self.bytes -= self._nets.pop(key)[1]

    def clear(self) -> tuple[int, int]:
        """Forget every network; (how many, bytes) were held. On the predictor's thread."""
        held = len(self._nets), self.bytes
        self._nets.clear()
        self.bytes = 0
        return held

    def sizes(self) -> list[tuple[Hashable, int]]:
        """(key, bytes) of every cached network, least recently used first. Safe from another
        thread: the copy is one C-level call under the GIL, which the worker cannot interleave."""
        return [(key, size) for key, (_, size) in list(self._nets.items())]

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        return list(self._nets)

    def __len__(self) -> int:
        return len(self._nets)
