"""Classify many: parse a `path [label]` list, classify in batches, summarise against the truth."""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from digits_imaging import ImageLoadError, ImageTooLarge
from digits_inference import tiles
from digits_inference.predictor import pixels, preprocess
from digits_inference.visualize import data_url
from digits_proto.inference import ImageResult, LineError, TopImages

MAX_LINES = 100_000  # a list longer than this is cut (results stay a few MB)


class Entry(NamedTuple):
    """One list line: where its image is (None if refused) and its valid ground truth.

    A NamedTuple: lists have up to 100 000 lines, and a tuple is built several times faster
    than a frozen dataclass.
    """

    line: int
    path: str
    resolved: str | None  # the real path
    label: int | None
    error: str = ""


def parse_list(
    text: str,
    image_folder: str,
    roots: Sequence[str],
    n_labels: int,
    limit: int | None = None,
) -> list[Entry]:
    """Lines → entries; paths outside the data roots are refused per line, labels outside
    0..n_labels-1 are ignored (as DIGITS does), blank lines and `#` comments skipped."""
    # Strings and os.path: this runs once per line of lists of up to 100 000 lines, so what
    # depends only on a folder (its real path, whether it lies inside the roots) is computed
    # once per folder; each file costs one lstat (is it a link?).
    root_paths = [os.path.join(os.path.realpath(r), "") for r in roots]
    cap = min(limit, MAX_LINES) if limit and limit > 0 else MAX_LINES
    prefix = os.path.join(image_folder, "") if image_folder else ""
    entries: list[Entry] = []
    folders: dict[str, tuple[str, bool]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        if len(entries) >= cap:
            break
        label: int | None = None
        path = line
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and _is_label(parts[1]):
            path, value = parts[0], int(parts[1])
            label = value if 0 <= value < n_labels else None
        candidate = prefix + path if prefix and path[0] != "/" else path
        resolved, inside = _resolve(candidate, folders, root_paths)
        error = ""
        if not root_paths:
            error = "Server paths are disabled (no data roots are configured)"
        elif not inside:
            error = "Outside the data roots"
        entries.append(Entry(number, candidate, None if error else resolved, label, error))
    return entries


def _is_label(token: str) -> bool:
    """DIGITS's `(.*\\S)\\s+(\\d+)$` on the line's last whitespace-separated token, a negative
    label accepted (then ignored): `str.isdecimal` is exactly regex `\\d` (Unicode Nd)."""
    return token.isdecimal() or (token[0] == "-" and token[1:].isdecimal())


def _resolve(
    path: str, folders: dict[str, tuple[str, bool]], roots: Sequence[str]
) -> tuple[str, bool]:
    """`os.path.realpath(path)` and whether it lies inside `roots` (symlinks and `..` resolved
    before the check), resolving each folder once: lists name many files per folder.

    realpath(folder/name) is realpath(folder)/name unless `name` is itself a link (or `..`).
    """
    head, name = os.path.split(path)
    if name not in ("", ".", "..") and not os.path.islink(path):
        known = folders.get(head)
        if known is None:
            real = os.path.join(os.path.realpath(head or "."), "")
            known = folders[head] = (real, any(real.startswith(r) for r in roots))
        return known[0] + name, known[1]
    real = os.path.realpath(path)
    return real, any(real.startswith(r) for r in roots)


@dataclass
class Tally:
    """Running results: per-image rows, errors, and per-class top-N heaps (bounded)."""

    labels: tuple[str, ...]
    top_n: int = 0
    results: list[ImageResult] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    hits1: int = 0
    hits5: int = 0
    truths: int = 0
    confusion: np.ndarray | None = None
    # Per class: (score, -order, shown path, file to read), the best `top_n` kept.
    heaps: list[list[tuple[float, int, str, str]]] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)  # lines in `errors`

    def __post_init__(self) -> None:
        n = len(self.labels)
        self.confusion = np.zeros((n, n), dtype=np.int64)
        self.heaps = [[] for _ in range(n)] if self.top_n > 0 else []

    def add_batch(self, entries: Sequence[Entry], probs: np.ndarray) -> None:
        """Record a batch of classified images (one row of `probs` each)."""
        n = len(self.labels)
        orders = np.argsort(-probs[:, :n], axis=1, kind="stable")[:, :5]
        best = percents(np.take_along_axis(probs, orders, axis=1))
        for entry, row, order, pcts in zip(entries, probs, orders.tolist(), best, strict=True):
            self.add(entry, row, order, pcts)

    def add(
        self,
        entry: Entry,
        probs: np.ndarray,
        order: list[int] | None = None,
        pcts: list[float] | None = None,
    ) -> None:
        """Record one classified image (`order`: its best class indexes, if already sorted;
        `pcts`: their percents, if already computed)."""
        n = len(self.labels)
        if order is None:
            order = np.argsort(-probs[:n], kind="stable")[:5].tolist()
        if pcts is None:
            pcts = [round(100.0 * float(probs[i]), 2) for i in order]
        labels = self.labels
        preds = [(labels[i], pct) for i, pct in zip(order, pcts, strict=True)]
        top1 = order[0]
        self.results.append(
            ImageResult(path=entry.path, label=entry.label, predictions=preds, top1=top1)
        )
        if entry.label is not None:
            self.truths += 1
            self.hits1 += int(top1 == entry.label)
            self.hits5 += int(entry.label in order[:5])
            self.confusion[entry.label, top1] += 1
        for c, heap in enumerate(self.heaps):
            item = (float(probs[c]), -len(self.results), entry.path, entry.resolved or "")
            if len(heap) < self.top_n:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)

    def fail(self, entry: Entry, error: str) -> None:
        """Record a line that could not be classified."""
        self.refuse(LineError(line=entry.line, path=entry.path, error=error))

    def fail_unresolved(self, entries: Sequence[Entry]) -> None:
        """Record the lines the list itself refused (outside the roots, ...)."""
        for entry in entries:
            if entry.resolved is None:
                self.fail(entry, entry.error)

    def refuse(self, error: LineError) -> None:
        """Record a refused line once (a job taken over meets its list's refusals again)."""
        if error.line not in self.refused:
            self.refused.add(error.line)
            self.errors.append(error)

    def summary(self) -> dict[str, object]:
        """Accuracy, confusion and per-class accuracy (only when ground truth was given)."""
        if not self.truths:
            return {}
        rows = self.confusion.sum(axis=1)
        per_class = [
            round(100.0 * float(self.confusion[i, i]) / float(r), 2) if r else None
            for i, r in enumerate(rows)
        ]
        return {
            "top1_accuracy": round(100.0 * self.hits1 / self.truths, 2),
            "top5_accuracy": round(100.0 * self.hits5 / self.truths, 2),
            "confusion": self.confusion.tolist(),
            "per_class_accuracy": per_class,
        }


def percents(probs: np.ndarray) -> list[list[float]]:
    """`round(100 * p, 2)` of every element, exactly as Python's `round` gives it, vectorized.

    NumPy rounds `rint(x·100)/100`; that agrees with Python's correctly rounded `round` except
    when x·100 lies within a rounding error of a half (…5 in the third decimal): those few
    elements are recomputed with `round` itself.
    """
    scaled = 100.0 * probs
    rows = np.round(scaled, 2).tolist()
    cents = scaled * 100.0
    for r, c in zip(*np.nonzero(np.abs(cents - np.floor(cents) - 0.5) < 1e-6), strict=True):
        rows[r][c] = round(float(scaled[r, c]), 2)
    return rows


def read_image(entry: Entry, max_bytes: int) -> bytes:
    """The file's bytes, refused (ValueError) when missing, not a file or too large.

    One open and one fstat per image (non-blocking, so a FIFO cannot hang the reader).
    """
    path = entry.resolved
    if path is None:
        raise ValueError(entry.error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
        raise ValueError("File not found") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("File not found")
        size = info.st_size
        if size > max_bytes:
            raise ValueError(f"File too large: {size} bytes (the limit is {max_bytes})")
        # Raw reads (no buffered file object): the whole file in one call, then the EOF; a
        # file growing meanwhile is still cut at the limit.
        parts = []
        while chunk := os.read(fd, size + 1 if not parts else 1 << 20):
            parts.append(chunk)
            size = sum(map(len, parts))
            if size > max_bytes:
                raise ValueError(f"File too large: {size} bytes (the limit is {max_bytes})")
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


@dataclass
class Loaded:
    """One batch read and preprocessed: the entries that decoded, their pixels (uint8
    N×C×H×W), the failures."""

    entries: list[Entry]
    batch: np.ndarray | None
    failures: list[tuple[Entry, str]]


def load_batch(entries: Sequence[Entry], how: dict[str, object], max_bytes: int) -> Loaded:
    """Read and preprocess `entries` (pure: safe on a decode thread while a forward pass runs)."""
    ok: list[Entry] = []
    arrays: list[np.ndarray] = []
    failures: list[tuple[Entry, str]] = []
    for entry in entries:
        try:
            arrays.append(pixels(read_image(entry, max_bytes), **how))  # type: ignore[arg-type]
            ok.append(entry)
        except (ValueError, OSError, ImageLoadError) as e:
            failures.append((entry, _reason(e)))
    # Kept as uint8 (a quarter of float32's bytes while batches wait in the pipeline); the
    # network's input array converts it in one go (exact: every uint8 is a float32).
    return Loaded(ok, np.stack(arrays) if arrays else None, failures)


def _reason(e: Exception) -> str:
    if isinstance(e, ImageLoadError) and not isinstance(e, ImageTooLarge):
        return f"Not an image: {e}"
    return str(e)


def top_n_mosaics(tally: Tally, how: dict[str, object], max_bytes: int) -> list[TopImages]:
    """For each class, its best-scoring images as one tiled picture (best first)."""
    out = []
    for c, heap in enumerate(tally.heaps):
        ranked = sorted(heap, reverse=True)
        pictures = []
        for _, _, path, resolved in ranked:
            entry = Entry(0, path, resolved, None)
            try:
                pictures.append(preprocess(read_image(entry, max_bytes), **how)[0])  # type: ignore[arg-type]
            except (ValueError, OSError, ImageLoadError):
                continue
        mosaic = data_url(tiles.image_grid_png(pictures)) if pictures else ""
        out.append(
            TopImages(
                label=tally.labels[c],
                paths=[p for _, _, p, _ in ranked],
                scores=[round(100.0 * s, 2) for s, _, _, _ in ranked],
                mosaic=mosaic,
            )
        )
    return out
