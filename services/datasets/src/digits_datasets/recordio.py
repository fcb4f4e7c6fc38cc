"""RecordIO through MXNet's own writer, imported on first use (it costs seconds of CPU at start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_writer(idx: Path, rec: Path) -> Any:
    """An `mx.recordio.MXIndexedRecordIO` open for writing (call it off the event loop)."""
    import mxnet as mx  # lazy: the service answers commands long before its first build

    return mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")


def write(writer: Any, index: int, label: int, data: bytes) -> None:
    """Append one record: IRHeader(flag 0, label, id = index) followed by the image bytes."""
    import mxnet as mx

    writer.write_idx(index, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), index, 0), data))
