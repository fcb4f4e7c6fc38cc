"""Stratified train/val/test split with DIGITS's rounding guarantees (pure, seeded)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import msgspec

SPLITS = ("train", "val", "test")
SEED = 20150317  # fixed: the same folder always gives the same split


class SplitPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Which files go where: labels (indices into it) and (path, label) lists per split."""

    labels: list[str]
    splits: dict[str, list[tuple[str, int]]]
    warnings: list[str] = []

    def counts(self) -> dict[str, int]:
        """Image count per split."""
        return {name: len(self.splits.get(name, [])) for name in SPLITS}


def _round(x: float) -> int:
    # DIGITS ran on Python 2, whose round() goes half away from zero (Python 3 rounds to even).
    return math.floor(x + 0.5)


def three_way_split_indices(size: int, pct_b: int, pct_c: int) -> tuple[int, int]:
    """Indices (a, b) cutting `size` items into a (train), b (val) and c (test) parts.

    As DIGITS: percentages are rounded, and every part whose percentage is non-zero gets at
    least one item when the size allows it.
    """
    if not (0 <= pct_b <= 100 and 0 <= pct_c <= 100 and pct_b + pct_c <= 100):
        raise ValueError("percentages must lie in 0..100 and sum to at most 100")
    pct_a = 100 - (pct_b + pct_c)
    if pct_a >= 100:
        return size, size
    if pct_b >= 100:
        return 0, size
    if pct_c >= 100:
        return 0, 0
    a, b = _rounded_sizes(size, pct_a, pct_b, pct_c)
    return a, a + b


def _rounded_sizes(size: int, pct_a: int, pct_b: int, pct_c: int) -> tuple[int, int]:
    # DIGITS's three_way_split_indices, step by step: round, then move one item into any
    # part that has a percentage but came out empty.
    a = max(_round(size * pct_a / 100), 1 if pct_a else 0)
    b = min(_round(size * pct_b / 100), size - a)
    if pct_b and not b:
        if a > 1:
            a, b = a - 1, 1
        elif a != size:
            b = 1
    if pct_c and size - (a + b) == 0:
        if b > 1:
            b -= 1
        elif a > 1:
            a -= 1
    return a, b


def plan_splits(
    classes: Sequence[tuple[str, Sequence[str]]],
    pct_val: int,
    pct_test: int,
    min_per_class: int = 2,
    max_per_class: int | None = None,
    seed: int = SEED,
) -> SplitPlan:
    """Split each class (name, files) independently; small classes are dropped with a warning.

    Labels are the surviving class names, sorted. Each split's list is shuffled (seeded) so
    that classes are interleaved in the packed file.
    """
    pct_train = 100 - pct_val - pct_test
    required = sum(1 for p in (pct_train, pct_val, pct_test) if p > 0)
    rng = random.Random(seed)
    labels: list[str] = []
    warnings: list[str] = []
    splits: dict[str, list[tuple[str, int]]] = {name: [] for name in SPLITS}
    for name, files in sorted(classes, key=lambda c: c[0]):
        chosen = sorted(files)
        if max_per_class is not None and len(chosen) > max_per_class:
            warnings.append(
                f"Category {name!r}: {len(chosen)} images, kept the first {max_per_class}"
            )
            chosen = chosen[:max_per_class]
        if not chosen or len(chosen) < max(required, min_per_class):
            warnings.append(
                f"Category {name!r}: not enough images for this category ({len(chosen)}), skipped"
            )
            continue
        label = len(labels)
        labels.append(name)
        rng.shuffle(chosen)
        a, b = three_way_split_indices(len(chosen), pct_val, pct_test)
        for split, part in zip(SPLITS, (chosen[:a], chosen[a:b], chosen[b:]), strict=True):
            splits[split].extend((path, label) for path in part)
    for items in splits.values():
        rng.shuffle(items)
    return SplitPlan(labels=labels, splits=splits, warnings=warnings)


def add_folder_split(
    plan: SplitPlan,
    split: str,
    classes: Sequence[tuple[str, Sequence[str]]],
    min_per_class: int = 2,
    max_per_class: int | None = None,
    seed: int = SEED,
) -> SplitPlan:
    """`plan` with `split` taken whole from a separate folder, parsed against the train labels.

    As DIGITS: class folders missing from the train labels are skipped, and each class is
    truncated to `max_per_class` and dropped under `min_per_class`, with a warning.
    """
    rng = random.Random(seed + SPLITS.index(split))
    index = {name: i for i, name in enumerate(plan.labels)}
    items: list[tuple[str, int]] = []
    warnings = list(plan.warnings)
    for name, files in sorted(classes, key=lambda c: c[0]):
        if name not in index:
            warnings.append(f"{split} folder: category {name!r} is not a train label, skipped")
            continue
        chosen = sorted(files)
        if max_per_class is not None and len(chosen) > max_per_class:
            warnings.append(
                f"{split} folder: category {name!r}: {len(chosen)} images, "
                f"kept the first {max_per_class}"
            )
            chosen = chosen[:max_per_class]
        if not chosen or len(chosen) < min_per_class:
            warnings.append(
                f"{split} folder: category {name!r}: not enough images for this category "
                f"({len(chosen)}), skipped"
            )
            continue
        items.extend((path, index[name]) for path in chosen)
    rng.shuffle(items)
    return SplitPlan(labels=plan.labels, splits={**plan.splits, split: items}, warnings=warnings)
