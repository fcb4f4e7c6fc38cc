"""Rename and notes of a dataset (DIGITS's `PUT /jobs/<id>`): EditDataset → DatasetEdited."""

from __future__ import annotations

from pathlib import Path

from digits_datasets import domain
from digits_datasets.errors import DatasetNotFound, InvalidField, NotOwner
from digits_datasets.settings import Settings
from digits_proto import JobStatus, codec, subjects
from digits_proto.datasets import (
    CreateDataset,
    DatasetBuilt,
    DatasetCreated,
    DatasetEdited,
    DatasetSpec,
    EditDataset,
)
from digits_proto.runtime import request
from digits_proto.stamps import fixed
from tests.fakes.principals import ALICE, BOB

from .conftest import make_folder
from .test_service import history, wait_terminal


def _created(username: str = "alice") -> domain.DatasetState:
    return domain.fold(
        [
            DatasetCreated(
                dataset_id="d1", name="old", username=username, spec=DatasetSpec(folder_train="/x")
            )
        ]
    )


def test_edit_renames_and_sets_notes_stripped() -> None:
    """A new name and notes are recorded stripped; folding them shows both."""
    state = _created()
    events = domain.decide_edit(
        state,
        EditDataset(dataset_id="d1", principal=ALICE, name=" new ", notes=" hi\n"),
        at=fixed(),
    )
    assert events == [
        DatasetEdited(dataset_id="d1", name="new", notes="hi", actor="alice", **_ids(events[0]))
    ]
    after = domain.evolve(state, events[0])
    assert (after.name, after.notes, after.status) == ("new", "hi", JobStatus.INITIALIZED)


def _ids(event: DatasetEdited) -> dict[str, object]:
    return {"event_id": event.event_id, "occurred_at": event.occurred_at}


def test_edit_refuses_a_blank_name_naming_job_name() -> None:
    """A blank job_name is DIGITS's 400 'name cannot be blank'."""
    try:
        domain.decide_edit(
            _created(), EditDataset(dataset_id="d1", principal=ALICE, name="  "), at=fixed()
        )
    except InvalidField as e:
        assert (e.field, str(e)) == ("job_name", "name cannot be blank")
    else:
        raise AssertionError("blank name accepted")


def test_edit_by_another_user_or_of_a_missing_dataset_is_refused() -> None:
    """Only the owner edits (403); an unknown or deleted dataset is a 404."""
    for state, user, error in (
        (_created(), BOB, NotOwner),
        (domain.DatasetState(), ALICE, DatasetNotFound),
    ):
        try:
            domain.decide_edit(
                state, EditDataset(dataset_id="d1", principal=user, notes="x"), at=fixed()
            )
        except error:
            continue
        raise AssertionError(f"{error.__name__} not raised")


def test_edit_that_changes_nothing_appends_nothing_and_blank_notes_clear() -> None:
    """The same name appends nothing; empty notes clear notes that were set."""
    state = _created()
    same = EditDataset(dataset_id="d1", principal=ALICE, name="old")
    assert domain.decide_edit(state, same, at=fixed()) == []
    noted = domain.evolve(state, DatasetEdited(dataset_id="d1", notes="remember"))
    [cleared] = domain.decide_edit(
        noted, EditDataset(dataset_id="d1", principal=ALICE, notes=""), at=fixed()
    )
    assert cleared.notes == "" and cleared.name is None
    assert domain.evolve(noted, cleared).notes == ""


async def test_a_built_dataset_is_renamed_over_the_bus_and_keeps_its_status(
    service: Settings, nc, js, images: Path
) -> None:
    """EditDataset during the build and after it appends DatasetEdited; the build goes on."""
    folder = make_folder(images / "edit", {"a": 20, "b": 20})
    command = CreateDataset(
        name="before",
        principal=ALICE,
        spec=DatasetSpec(folder_train=str(folder), resize_width=8, resize_height=8),
    )
    body, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, command)
    assert rejected is None
    dataset_id = codec.command_reply.decode(body).id
    early = EditDataset(dataset_id=dataset_id, principal=ALICE, notes="while building")
    _, rejected = await request(nc, subjects.CMD_DATASETS_EDIT, early)
    assert rejected is None
    events = await wait_terminal(js, dataset_id)
    assert isinstance(events[-1], DatasetBuilt)
    assert any(isinstance(e, DatasetEdited) for e in events)

    edit = EditDataset(dataset_id=dataset_id, principal=ALICE, name="after", notes="n")
    body, rejected = await request(nc, subjects.CMD_DATASETS_EDIT, edit)
    assert rejected is None
    accepted = codec.command_reply.decode(body)
    assert (accepted.name, accepted.status) == ("after", JobStatus.DONE)
    events = await history(js, dataset_id)
    assert isinstance(events[-1], DatasetEdited) and accepted.seq > 0
    assert domain.fold(events).status is JobStatus.DONE

    bob = EditDataset(dataset_id=dataset_id, principal=BOB, name="mine")
    _, rejected = await request(nc, subjects.CMD_DATASETS_EDIT, bob)
    assert rejected is not None and rejected.code == 403
    _, rejected = await request(
        nc, subjects.CMD_DATASETS_EDIT, EditDataset(dataset_id="x.>", principal=ALICE)
    )
    assert rejected is not None and rejected.code == 404
