"""Method `textfile` (DIGITS §1.3): "path label" lists and a labels file, into a split plan.

DIGITS's line rule (`create_db.py:_parse_line`): `(.+)\\s+(\\d+)\\s*$`, spaces allowed in the
path; lines without a numeric label are skipped. Unlike DIGITS, URLs are never fetched (SSRF,
§10.1) and every path must lie inside the data roots; skipped lines are counted in warnings.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Sequence

from digits_datasets.errors import BuildError
from digits_datasets.folders import inside_roots
from digits_datasets.splits import SEED, SPLITS, SplitPlan

LINE = re.compile(r"(.+)\s+(\d+)\s*$")
MAX_LINE_EXAMPLES = 5


def read_labels(path: str) -> list[str]:
    """Line i of the labels file names label i-1 (blank lines ignored)."""
    labels = [line.strip() for line in _lines(path, "labels file") if line.strip()]
    if not labels:
        raise BuildError("The labels file is empty")
    return labels


def _lines(path: str, what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as e:
        raise BuildError(f"Cannot read the {what}: {e.strerror or e}") from e


def parse_list(
    path: str, split: str, labels: Sequence[str], folder: str, roots: Sequence[str]
) -> tuple[list[tuple[str, int]], list[str]]:
    """The (image path, label) items of one list, and warnings about the lines skipped."""
    items: list[tuple[str, int]] = []
    skipped: Counter[str] = Counter()
    examples: list[str] = []
    for number, raw in enumerate(_lines(path, f"{split} list"), 1):
        line = raw.strip()
        if not line:
            continue
        reason, item = _parse_line(line, labels, folder, roots)
        if item is None:
            skipped[reason] += 1
            if len(examples) < MAX_LINE_EXAMPLES:
                examples.append(f"{split} list line {number}: {reason}: {line[:200]}")
            continue
        items.append(item)
    warnings = [f"{split} list: {n} line(s) skipped: {why}" for why, n in sorted(skipped.items())]
    if not items:
        raise BuildError(f'The {split} list has no valid line ("<path> <label>")')
    return items, [*warnings, *examples]


def _parse_line(
    line: str, labels: Sequence[str], folder: str, roots: Sequence[str]
) -> tuple[str, tuple[str, int] | None]:
    match = LINE.match(line)
    if match is None:
        return "no numeric label", None
    path, label = match.group(1).strip(), int(match.group(2))
    if label >= len(labels):
        return f"label outside the labels file (0..{len(labels) - 1})", None
    if "://" in path:
        return "URLs are not fetched", None
    if not os.path.isabs(path):
        if not folder:
            return "relative path and no folder given", None
        path = os.path.join(folder, path)
    if not inside_roots(path, roots):
        return "outside the allowed data folders", None
    return "", (path, label)


def plan_textfiles(
    labels: list[str], lists: dict[str, tuple[str, str]], roots: Sequence[str], shuffle: bool
) -> tuple[SplitPlan, list[str]]:
    """A plan from `lists` (split -> (list file, folder prefix)); shuffled when asked."""
    rng = random.Random(SEED)
    splits: dict[str, list[tuple[str, int]]] = {name: [] for name in SPLITS}
    warnings: list[str] = []
    for split in SPLITS:
        if split not in lists:
            continue
        path, folder = lists[split]
        items, more = parse_list(path, split, labels, folder, roots)
        if shuffle:
            rng.shuffle(items)
        splits[split] = items
        warnings += more
    return SplitPlan(labels=labels, splits=splits, warnings=warnings), warnings
