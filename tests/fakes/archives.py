"""Archives built in tests from `members` (name → bytes), as a client or a download makes them."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path


def tgz_bytes(members: dict[str, bytes]) -> bytes:
    """A tar.gz holding `members`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip holding `members` (stored, not compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def write_tgz(path: Path, members: dict[str, bytes]) -> Path:
    """`path` written as a tar.gz holding `members`."""
    path.write_bytes(tgz_bytes(members))
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """`path` written as a zip holding `members`."""
    path.write_bytes(zip_bytes(members))
    return path
