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
    The order is os.walk's (top-down, names sorted). The roots are checked once per folder:
    a file that is not a link lies where its folder lies, so only links cost a realpath
    (100,000 files scan in a fraction of the time).
    """
    files: list[str] = []
    warnings: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [class_folder]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:  # a symlink back up the tree: not again
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # unreadable folder: skipped, as os.walk does
            continue
        inside = inside_roots(folder, roots)
        subfolders: list[str] = []
        for entry in entries:
            if _is_dir(entry):
                subfolders.append(entry.path)
            elif is_image_name(entry.name):
                problem = _file_problem(entry, inside, roots)
                if problem:
                    warnings.append(f"{entry.path}: {problem}, skipped")
                else:
                    files.append(entry.path)
        stack.extend(reversed(subfolders))
    return files, warnings


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows links, like os.walk(followlinks=True)
    except OSError:
        return False


def _file_problem(entry: os.DirEntry[str], folder_inside: bool, roots: Sequence[str]) -> str:
    """Why an image file is skipped ("" if it is kept)."""
    if entry.is_symlink():
        if not inside_roots(entry.path, roots):
            return "links outside the data folders"
        return "not a regular file" if _special(entry.path) else ""
    if not folder_inside:
        return "links outside the data folders"
    try:
        regular = entry.is_file(follow_symlinks=False)
    except OSError:
        return ""  # vanished meanwhile: the build reports it as unreadable
    return "" if regular else "not a regular file"


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
