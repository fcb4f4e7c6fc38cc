"""The data disk's free-space floor `/ready` holds every process to (`DIGITS_MIN_FREE_DISK`).

Sizes are written the way an operator thinks of them: "1GiB", "500 MB", "2G", or plain bytes.
Binary units (KiB, MiB, GiB, TiB and the bare K, M, G, T) count in 1024s, decimal ones (KB, MB,
GB, TB) in 1000s. A floor of 0 turns the check off.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping

MIN_FREE_DISK_ENV = "DIGITS_MIN_FREE_DISK"
DEFAULT_MIN_FREE_DISK = 1 << 30  # the floor uploads and archive unpacking already keep

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "kb": 1000,
    "m": 1 << 20,
    "mib": 1 << 20,
    "mb": 1000**2,
    "g": 1 << 30,
    "gib": 1 << 30,
    "gb": 1000**3,
    "t": 1 << 40,
    "tib": 1 << 40,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str, name: str = "size") -> int:
    """Bytes in `text` ("1GiB", "500 MB", "1073741824"); a clear `ValueError` naming `name`."""
    match = _SIZE.fullmatch(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"{name}: {text!r} is not a size (e.g. 1GiB, 500MB or 1073741824)")
    return int(float(match.group(1)) * unit)


def min_free_disk(env: Mapping[str, str] | None = None) -> int:
    """The floor from `DIGITS_MIN_FREE_DISK` (default 1 GiB); a bad value stops the process
    with one line naming the variable (SystemExit: no traceback at start)."""
    raw = (os.environ if env is None else env).get(MIN_FREE_DISK_ENV, "").strip()
    if not raw:
        return DEFAULT_MIN_FREE_DISK
    try:
        return parse_size(raw, MIN_FREE_DISK_ENV)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def human_size(n: float) -> str:
    """`1073741824` → "1.0 GiB" (what a reason shows an operator)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def disk_reason(path: str | os.PathLike[str] | None, floor: int) -> str | None:
    """Why the disk under `path` is not fit for work (free space under `floor`), else None.

    One statvfs call: cheap enough for every `/ready`. A folder that cannot be read is a reason
    too (the service could not write its files there either).
    """
    if path is None or floor <= 0:
        return None
    try:
        free = shutil.disk_usage(path).free
    except OSError as e:
        return f"disk: cannot read the free space of {path} ({e.strerror or e})"
    if free < floor:
        return (
            f"disk: {human_size(free)} free on {path}, under the floor of "
            f"{human_size(floor)} ({MIN_FREE_DISK_ENV})"
        )
    return None
