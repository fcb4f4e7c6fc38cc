"""A decision is pure: the same command on the same state, with the same clock and ids, gives
equal events every run; only the stamps a handler passes make two runs differ."""

from __future__ import annotations

from digits_datasets import domain
from digits_proto.datasets import (
    AbortDataset,
    CreateDataset,
    DatasetSpec,
    DeleteDataset,
    EditDataset,
)
from digits_proto.stamps import fixed, live
from tests.fakes.principals import ALICE

ID = "20250101-000000-abcd"


def every_decision(at_each) -> list:
    """Create, start, edit, abort and delete one dataset; each decision with `at_each()`."""
    create = CreateDataset(name="mnist", spec=DatasetSpec(folder_train="/data/x"), principal=ALICE)
    created = domain.decide_create(ID, create, at_each())
    state = domain.fold(created)
    started = domain.decide_start(state, "w", at_each())
    running = domain.fold([*created, *started])
    return [
        *created,
        *started,
        *domain.decide_edit(
            running, EditDataset(dataset_id=ID, name="x", principal=ALICE), at_each()
        ),
        *domain.decide_abort(running, AbortDataset(dataset_id=ID, principal=ALICE), at_each()),
        *domain.decide_delete(
            running, DeleteDataset(dataset_id=ID, principal=ALICE), [], at_each()
        ),
    ]


def test_decisions_with_a_fixed_clock_are_equal_every_run() -> None:
    first, second = every_decision(fixed), every_decision(fixed)
    assert len(first) == 5 and first == second
    assert {e.occurred_at for e in first} == {fixed().now}


def test_the_live_stamps_are_what_makes_two_runs_differ() -> None:
    first, second = every_decision(live), every_decision(live)
    assert [e.event_id for e in first] != [e.event_id for e in second]
