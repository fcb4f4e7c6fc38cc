"""Folders of class sub-folders: check one at create time, list its images at build time."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from digits_datasets.errors import InvalidField

# DIGITS's SUPPORTED_EXTENSIONS (digits/utils/image.py), matched case-insensitively.
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm")


def is_image_name(name: str) -> bool:
    """True for a file name with a supported image extension."""
    return name.lower().endswith(EXTENSIONS)


def inside_roots(path: str, roots: Sequence[str]) -> bool:
    """True if the real path (symlinks resolved) of `path` lies inside one of `roots`."""
    real = os.path.realpath(path)
    for root in roots:
        root = os.path.realpath(root)
        if os.path.commonpath([real, root]) == root:
            return True
    return False


def class_dirs(folder: str) -> list[str]:
    """Names of the immediate sub-folders (hidden ones skipped), sorted."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    return sorted(names)


def check_folder(
    folder: str, roots: Sequence[str], field: str = "folder_train", min_classes: int = 2
) -> str:
    """Refuse a folder that is missing, outside the data roots or has under `min_classes` classes.

    Returns its real path (what the build will read).
    """
    if not folder.strip():
        raise InvalidField(field, f"{field} is required")
    if not os.path.isabs(folder):
        raise InvalidField(field, f"{field} must be an absolute path: {folder}")
    if not inside_roots(folder, roots):
        raise InvalidField(
            field, f"{folder} is outside the allowed data folders ({os.pathsep.join(roots)})"
        )
    if not os.path.isdir(folder):
        raise InvalidField(field, f"{folder} does not exist or is not a directory")
    try:
        subdirs = class_dirs(folder)
    except OSError as e:
        raise InvalidField(field, f"cannot read {folder}: {e.strerror}") from e
    if len(subdirs) < min_classes:
        raise InvalidField(field, "folder must contain at least two subdirectories")
    return os.path.realpath(folder)


def check_path(path: str, roots: Sequence[str], field: str, directory: bool = False) -> str:
    """Refuse a server file (or folder) that is not absolute, outside the roots or missing."""
    kind = "directory" if directory else "file"
    if not os.path.isabs(path):
        raise InvalidField(field, f"{field} must be an absolute path: {path}")
    if not inside_roots(path, roots):
        raise InvalidField(
            field, f"{path} is outside the allowed data folders ({os.pathsep.join(roots)})"
        )
    if not (os.path.isdir(path) if directory else os.path.isfile(path)):
        raise InvalidField(field, f"{path} does not exist or is not a {kind}")
    return os.path.realpath(path)


def list_images(class_folder: str, roots: Sequence[str]) -> tuple[list[str], list[str]]:
    """Image files under `class_folder`, recursively, following links but never in a loop.

    Files whose real path leaves the data roots are skipped. Returns (files, warnings).
    """
    files: list[str] = []
    warnings: list[str] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(class_folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a symlink back up the tree: do not walk it again
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            if not is_image_name(name):
                continue
            path = os.path.join(dirpath, name)
            if not inside_roots(path, roots):
                warnings.append(f"{path}: links outside the data folders, skipped")
                continue
            if _special(path):
                warnings.append(f"{path}: not a regular file, skipped")
                continue
            files.append(path)
    return files, warnings


def _special(path: str) -> bool:
    # A FIFO or device named like an image would block or never end when read; a dangling
    # link is kept (the build reports it as a file that cannot be read).
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def scan_folder(folder: str, roots: Sequence[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Every class (sub-folder name, its image files) of a dataset folder, plus warnings."""
    classes: list[tuple[str, list[str]]] = []
    warnings: list[str] = []
    for name in class_dirs(folder):
        files, more = list_images(os.path.join(folder, name), roots)
        classes.append((name, files))
        warnings.extend(more)
    return classes, warnings
