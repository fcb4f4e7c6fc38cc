"""Read a pretrained-model archive (zip or tar, as `/models/<id>/download` writes them) safely,
and its `info.json`.

Refused, naming the member: absolute paths, `..`, links, devices and FIFOs, more than
`max_members` members, more than `max_bytes` once expanded (counted while writing, so a header
that lies about its size is caught too). Nothing is written outside `dest`.
"""

from __future__ import annotations

import json
import stat
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from digits_trainer.errors import InvalidField

FIELD = "archive"
BLOCK = 1024 * 1024
MAX_INFO_BYTES = 1024 * 1024
RESIZE_MODES = ("crop", "squash", "fill", "half_crop")


def refuse(message: str) -> InvalidField:
    """A 400 on the upload field."""
    return InvalidField(FIELD, message)


def safe_name(name: str) -> PurePosixPath:
    """The member's relative path, or a refusal if it could leave the destination."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise refuse(f"Archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise refuse(f"Archive member {name!r} points outside the archive (..)")
    return path


class Budget:
    """Members and bytes an archive may still use."""

    def __init__(self, max_bytes: int, max_members: int):
        self.left, self.members = max_bytes, max_members

    def member(self, name: str) -> None:
        self.members -= 1
        if self.members < 0:
            raise refuse(f"Archive has too many members (at {name!r})")

    def spend(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise refuse(f"Archive expands past the size limit (at {name!r})")


def _write(src: IO[bytes], target: Path, name: str, budget: Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": never follow or overwrite an existing entry
        while block := src.read(BLOCK):
            budget.spend(len(block), name)
            out.write(block)


def _extract_zip(path: Path, dest: Path, budget: Budget) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            budget.member(info.filename)
            rel = safe_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type stored
            if kind == stat.S_IFLNK:
                raise refuse(f"Archive member {info.filename!r} is a link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise refuse(f"Archive member {info.filename!r} is a special file")
            if info.is_dir() or not rel.parts:
                continue
            with zf.open(info) as src:
                _write(src, dest.joinpath(*rel.parts), info.filename, budget)


def _extract_tar(path: Path, dest: Path, budget: Budget) -> None:
    with tarfile.open(path, "r:*") as tf:
        for member in tf:  # streamed: members are read one after another
            budget.member(member.name)
            rel = safe_name(member.name)
            if member.issym() or member.islnk():
                raise refuse(f"Archive member {member.name!r} is a link")
            if member.isdir() or not rel.parts:
                continue
            if not member.isfile():
                raise refuse(f"Archive member {member.name!r} is a special file")
            src = tf.extractfile(member)
            if src is not None:
                _write(src, dest.joinpath(*rel.parts), member.name, budget)


def extract(path: Path, dest: Path, max_bytes: int, max_members: int = 256) -> Path:
    """Unpack `path` into `dest`; returns the folder holding `info.json` (the top, or the one
    folder the archive wrapped everything in)."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = Budget(max_bytes, max_members)
    try:
        if zipfile.is_zipfile(path):
            _extract_zip(path, dest, budget)
        elif tarfile.is_tarfile(path):
            _extract_tar(path, dest, budget)
        else:
            raise refuse("Incorrect Archive Type: upload a .tar, .tar.gz, .tgz, .tar.bz2 or .zip")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        if isinstance(e, InvalidField):
            raise
        raise refuse(f"The archive cannot be read: {e}") from e
    if (dest / "info.json").is_file():
        return dest
    found = sorted(dest.glob("*/info.json"))
    if len(found) == 1:
        return found[0].parent
    raise refuse("Missing info.json in the archive")


def read_info(root: Path) -> dict[str, Any]:
    """info.json as a JSON object, or a refusal."""
    path = root / "info.json"
    if path.stat().st_size > MAX_INFO_BYTES:
        raise refuse("info.json is too large")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise refuse(f"info.json is not valid JSON: {e}") from e
    if not isinstance(info, dict):
        raise refuse("info.json must hold a JSON object")
    return info


def required(info: Mapping[str, Any], *keys: str) -> str:
    """The first of `keys` present (DIGITS accepts `model file` or `network file`), as text."""
    for key in keys:
        value = info.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise refuse(f"Missing Key '{keys[0]}' in info.json")


def member(root: Path, name: str, key: str) -> Path:
    """A file info.json names, which must be inside the archive."""
    rel = safe_name(name)
    path = root.joinpath(*rel.parts)
    if not rel.parts or not path.is_file():
        raise refuse(f"info.json's '{key}' names {name!r}, which is not in the archive")
    return path


def optional(root: Path, name: object) -> Path | None:
    """A file info.json may name (a mean image): None when absent; `..` still refused."""
    if not isinstance(name, str) or not name.strip():
        return None
    rel = safe_name(name)
    path = root.joinpath(*rel.parts)
    return path if rel.parts and path.is_file() else None


def preprocessing(info: Mapping[str, Any]) -> dict[str, Any]:
    """Resize and input from info.json: `image dimensions` [H, W, C] (DIGITS's archive
    default: 224×224×3), `image resize mode`, `input shape` [C, H, W], `crop size`."""
    dims = info.get("image dimensions") or [224, 224, 3]
    if not _ints(dims, 3) or dims[2] not in (1, 3):
        raise refuse("info.json's 'image dimensions' must be [height, width, 1 or 3]")
    height, width, channels = dims
    mode = str(info.get("image resize mode") or "squash").lower()
    if mode not in RESIZE_MODES:
        raise refuse(f"info.json's 'image resize mode' {mode!r} is not one of {RESIZE_MODES}")
    crop = info.get("crop size")
    if crop is not None and not _ints([crop], 1):
        raise refuse("info.json's 'crop size' must be a positive integer")
    shape = info.get("input shape") or [channels, crop or height, crop or width]
    if not _ints(shape, 3) or shape[0] != channels or shape[1] > height or shape[2] > width:
        raise refuse("info.json's 'input shape' must be [channels, height, width] within the image")
    mean = str(info.get("mean subtraction") or "image")
    return {
        "width": width,
        "height": height,
        "channels": channels,
        "resize_mode": mode,
        "crop_size": crop,
        "input_shape": list(shape),
        "use_mean": mean if mean in ("none", "image", "pixel") else "image",
    }


def _ints(values: Any, n: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == n
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192 for v in values)
    )


def read_labels(path: Path | None, max_bytes: int = 4 * 1024 * 1024) -> list[str]:
    """labels.txt: one label a line, blank lines dropped (DIGITS's rule)."""
    if path is None:
        return []
    if path.stat().st_size > max_bytes:
        raise InvalidField("labels_file", "The labels file is too large")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidField("labels_file", "The labels file is not UTF-8 text") from e
    return [line.strip() for line in text.splitlines() if line.strip()]
