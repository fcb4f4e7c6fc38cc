"""Stratified split: DIGITS's rounding guarantees, label order, class filtering, determinism."""

from __future__ import annotations

import math

import pytest

from digits_datasets.splits import plan_splits, three_way_split_indices


def _digits_three_way(size: int, pct_b: int, pct_c: int) -> tuple[int, int]:
    """DIGITS's three_way_split_indices verbatim (digits/tools/parse_folder.py), Python-2 round."""

    def rnd(x: float) -> int:
        return math.floor(x + 0.5)

    pct_a = 100 - (pct_b + pct_c)
    if pct_a >= 100:
        return size, size
    elif pct_b >= 100:
        return 0, size
    elif pct_c >= 100:
        return 0, 0
    a = rnd(float(size) * pct_a / 100)
    if pct_a and not a:
        a = 1
    b = rnd(float(size) * pct_b / 100)
    if a + b > size:
        b = size - a
    if pct_b and not b:
        if a > 1:
            a -= 1
            b = 1
        elif a != size:
            b = 1
    c = size - (a + b)
    if pct_c and not c:
        if b > 1:
            b -= 1
            c = 1
        elif a > 1:
            a -= 1
            c = 1
    return a, a + b


def test_split_matches_digits_for_every_size_and_percentage() -> None:
    """For sizes 0..40 and percentages in steps of 5, the cut points equal DIGITS's."""
    for size in range(41):
        for val in range(0, 101, 5):
            for test in range(0, 101 - val, 5):
                assert three_way_split_indices(size, val, test) == _digits_three_way(
                    size, val, test
                ), (size, val, test)


@pytest.mark.parametrize(("size", "val", "test"), [(3, 1, 1), (3, 10, 10), (5, 25, 25), (2, 50, 0)])
def test_every_split_with_a_percentage_gets_an_image_when_possible(
    size: int, val: int, test: int
) -> None:
    """Small classes still give train, val and test at least one image each."""
    a, b = three_way_split_indices(size, val, test)
    parts = (a, b - a, size - b)
    wanted = (100 - val - test, val, test)
    assert all(n >= 1 for n, pct in zip(parts, wanted, strict=True) if pct > 0)
    assert sum(parts) == size


def test_half_rounds_up_like_digits() -> None:
    """12 images at 25% val: 9 train, 3 val; 10 images at 25%: 7.5 rounds up to 8 train."""
    assert three_way_split_indices(12, 25, 0) == (9, 12)
    assert three_way_split_indices(10, 25, 0) == (8, 10)


def test_impossible_percentages_are_refused() -> None:
    """pct_val + pct_test over 100 raises instead of producing a nonsense split."""
    with pytest.raises(ValueError):
        three_way_split_indices(10, 60, 50)


def _classes(**counts: int) -> list[tuple[str, list[str]]]:
    return [(name, [f"/d/{name}/{i:03}.png" for i in range(n)]) for name, n in counts.items()]


def test_labels_are_sorted_verbatim_and_splits_are_stratified() -> None:
    """Labels keep underscores and come out sorted; each class is split on its own."""
    plan = plan_splits(_classes(zebra=12, a_cat=12, Dog=8), pct_val=25, pct_test=0)
    assert plan.labels == ["Dog", "a_cat", "zebra"]
    assert plan.counts() == {"train": 9 + 9 + 6, "val": 3 + 3 + 2, "test": 0}
    val_labels = sorted(label for _, label in plan.splits["val"])
    assert val_labels == [0, 0, 1, 1, 1, 2, 2, 2]


def test_small_classes_are_dropped_with_a_warning_and_labels_renumbered() -> None:
    """A class under min_per_class is skipped; the remaining labels are 0..n-1."""
    plan = plan_splits(_classes(a=10, b=1, c=10), pct_val=20, pct_test=0, min_per_class=2)
    assert plan.labels == ["a", "c"]
    assert {label for _, label in plan.splits["train"]} == {0, 1}
    assert any("'b'" in w for w in plan.warnings)


def test_class_smaller_than_the_number_of_splits_is_dropped() -> None:
    """Two images cannot fill train, val and test, so that class is skipped (DIGITS rule)."""
    plan = plan_splits(_classes(a=2, b=9, c=9), pct_val=10, pct_test=10, min_per_class=1)
    assert plan.labels == ["b", "c"]


def test_max_per_class_truncates_before_splitting() -> None:
    """With max 4 each class contributes exactly 4 images in all."""
    plan = plan_splits(_classes(a=10, b=10), pct_val=25, pct_test=0, max_per_class=4)
    assert sum(plan.counts().values()) == 8
    assert plan.counts() == {"train": 6, "val": 2, "test": 0}


def test_same_input_gives_the_same_split_and_no_file_twice() -> None:
    """The split is seeded (reproducible) and a partition of the input files."""
    classes = _classes(a=17, b=23, c=5)
    one, two = plan_splits(classes, 20, 10), plan_splits(classes, 20, 10)
    assert one == two
    paths = [p for items in one.splits.values() for p, _ in items]
    assert len(paths) == len(set(paths)) == 45
