"""Read a pretrained-model archive (zip or tar, as `/models/<id>/download` writes them) safely,
and its `info.json`.

Unpacking follows the shared rules of digits_proto.runtime.extract_archive (refused, naming
the member: absolute paths, `..`, links, devices, too many members, too many bytes expanded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from digits_proto.runtime import ArchiveRefused, extract_archive, safe_member_path
from digits_trainer.errors import InvalidField

FIELD = "archive"
MAX_INFO_BYTES = 1024 * 1024
RESIZE_MODES = ("crop", "squash", "fill", "half_crop")


def refuse(message: str) -> InvalidField:
    """A 400 on the upload field."""
    return InvalidField(FIELD, message)


def safe_name(name: str) -> PurePosixPath:
    """A path named in info.json, relative and inside the archive, or a refusal."""
    try:
        return safe_member_path(name)
    except ArchiveRefused as e:
        raise refuse(str(e)) from e


def extract(path: Path, dest: Path, max_bytes: int, max_members: int = 256) -> Path:
    """Unpack `path` into `dest`; returns the folder holding `info.json` (the top, or the one
    folder the archive wrapped everything in)."""
    not_an_archive = "Incorrect Archive Type: upload a .tar, .tar.gz, .tgz, .tar.bz2 or .zip"
    try:
        extract_archive(path, dest, max_bytes, max_members, not_an_archive)
    except ArchiveRefused as e:
        raise refuse(str(e)) from e
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
