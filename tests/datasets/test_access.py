"""Who may do what to a dataset, decided by the datasets service itself (the gateway bypassed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_datasets import domain
from digits_datasets.errors import NoPrincipal, NotOwner, ReadOnly
from digits_datasets.settings import Settings
from digits_proto import codec, subjects
from digits_proto.base import Principal, Role
from digits_proto.datasets import (
    AbortDataset,
    CreateDataset,
    DatasetAborted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetEdited,
    DatasetSpec,
    DeleteDataset,
    EditDataset,
    ExploreDataset,
    GetDatasetRecord,
    ResizeExample,
)
from digits_proto.runtime import request
from digits_proto.stamps import fixed
from tests.fakes.principals import ADMIN, ALICE, BOB, VERA

from .conftest import make_folder
from .test_service import history, wait_terminal

ID = "20250101-000000-abcd"
CREATED = DatasetCreated(
    dataset_id=ID, name="pets", username="alice", spec=DatasetSpec(folder_train="/x")
)


def given_alices_dataset() -> domain.DatasetState:
    return domain.fold([CREATED])


def abort(who: Principal | None) -> list:
    return domain.decide_abort(
        given_alices_dataset(), AbortDataset(dataset_id=ID, principal=who), at=fixed()
    )


def delete(who: Principal | None) -> list:
    command = DeleteDataset(dataset_id=ID, principal=who)
    return domain.decide_delete(given_alices_dataset(), command, [], at=fixed())


def edit(who: Principal | None) -> list:
    command = EditDataset(dataset_id=ID, principal=who, name="renamed")
    return domain.decide_edit(given_alices_dataset(), command, at=fixed())


CHANGES = [abort, delete, edit]


@pytest.mark.parametrize("when", CHANGES)
@pytest.mark.parametrize(
    ("who", "refusal"), [(None, NoPrincipal), (VERA, ReadOnly), (BOB, NotOwner)]
)
def test_no_principal_a_viewer_and_another_user_are_refused(when, who, refusal) -> None:
    """given alice's dataset, when nobody / vera (viewer) / bob changes it, then 403."""
    with pytest.raises(refusal) as info:
        when(who)
    assert info.value.code == 403


@pytest.mark.parametrize("when", CHANGES)
@pytest.mark.parametrize(("who", "actor"), [(ALICE, "alice"), (ADMIN, "admin")])
def test_the_owner_and_an_admin_change_it_and_the_event_names_the_actor(when, who, actor) -> None:
    """given alice's dataset, when alice or the admin changes it, then the event's actor is
    who acted (the admin's action on alice's job is marked as the admin's)."""
    [event] = when(who)
    assert isinstance(event, DatasetAborted | DatasetDeleted | DatasetEdited)
    assert event.actor == actor


def test_another_users_refusal_says_why() -> None:
    """The 403 names the verb and the owner, so the gateway's answer says why."""
    with pytest.raises(NotOwner, match="permission to delete this job \\(it belongs to alice\\)"):
        delete(BOB)


def test_a_dataset_without_owner_is_changed_by_admins_only() -> None:
    """A dataset from before accounts (no username) is nobody's: only an admin changes it."""
    state = domain.fold([DatasetCreated(dataset_id=ID, name="old", spec=DatasetSpec())])
    with pytest.raises(NotOwner):
        domain.decide_edit(
            state, EditDataset(dataset_id=ID, principal=ALICE, notes="mine"), at=fixed()
        )
    [event] = domain.decide_edit(
        state, EditDataset(dataset_id=ID, principal=ADMIN, notes="n"), at=fixed()
    )
    assert event.actor == "admin"


def test_a_nameless_principal_is_no_principal() -> None:
    """A principal with an empty name would match the empty owner of pre-account datasets."""
    state = domain.fold([DatasetCreated(dataset_id=ID, name="old", spec=DatasetSpec())])
    nameless = Principal(username="", role=Role.USER)
    with pytest.raises(NoPrincipal):
        domain.decide_edit(
            state, EditDataset(dataset_id=ID, principal=nameless, notes="mine"), at=fixed()
        )


@pytest.mark.parametrize(("who", "refusal"), [(None, NoPrincipal), (VERA, ReadOnly)])
def test_create_needs_a_user_or_an_admin(who, refusal) -> None:
    """Nobody and viewers create nothing."""
    with pytest.raises(refusal):
        domain.decide_create(
            ID, CreateDataset(name="n", spec=CREATED.spec, principal=who), at=fixed()
        )


def test_the_owner_of_a_new_dataset_is_who_asks_not_a_typed_name() -> None:
    """`username` in the command is superseded: the principal owns the dataset it creates."""
    command = CreateDataset(name="n", username="mallory", spec=CREATED.spec, principal=ALICE)
    [event] = domain.decide_create(ID, command, at=fixed())
    assert (event.username, event.actor) == ("alice", "alice")


async def test_the_service_refuses_other_principals_on_the_bus(
    service: Settings, nc, js, images: Path
) -> None:
    """With no gateway in the way, bob's and vera's edit/abort/delete of alice's dataset and
    commands without a principal are refused with a reason; the admin's succeed and carry the
    admin as actor while alice stays the owner."""
    folder = make_folder(images / "own", {"a_cat": 3, "b": 3})
    create = CreateDataset(
        name="alices",
        spec=DatasetSpec(folder_train=str(folder), resize_width=8, resize_height=8),
        principal=ALICE,
    )
    body, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, create)
    assert rejected is None, rejected
    dataset_id = codec.command_reply.decode(body).id
    assert isinstance((await wait_terminal(js, dataset_id))[-1], DatasetBuilt)

    attempts = {
        subjects.CMD_DATASETS_EDIT: lambda who: EditDataset(
            dataset_id=dataset_id, principal=who, name="bob's now"
        ),
        subjects.CMD_DATASETS_ABORT: lambda who: AbortDataset(dataset_id=dataset_id, principal=who),
        subjects.CMD_DATASETS_DELETE: lambda who: DeleteDataset(
            dataset_id=dataset_id, principal=who
        ),
    }
    for subject, command in attempts.items():
        for who, reason in ((BOB, "permission"), (VERA, "viewer"), (None, "no principal")):
            _, rejected = await request(nc, subject, command(who))
            assert rejected is not None, (subject, who)
            assert rejected.code == 403 and reason in rejected.message, rejected
    events = await history(js, dataset_id)
    assert not any(isinstance(e, DatasetEdited | DatasetDeleted | DatasetAborted) for e in events)

    _, rejected = await request(
        nc, subjects.CMD_DATASETS_CREATE, CreateDataset(name="v", spec=create.spec, principal=VERA)
    )
    assert rejected is not None and rejected.code == 403
    for subject, read in (
        (subjects.CMD_DATASETS_EXPLORE, ExploreDataset(dataset_id=dataset_id)),
        (subjects.CMD_DATASETS_RECORD, GetDatasetRecord(dataset_id=dataset_id)),
        (subjects.CMD_DATASETS_RESIZE_EXAMPLE, ResizeExample(image=b"x")),
    ):
        _, rejected = await request(nc, subject, read)
        assert rejected is not None and rejected.code == 403, subject
    _, rejected = await request(
        nc, subjects.CMD_DATASETS_EXPLORE, ExploreDataset(dataset_id=dataset_id, principal=VERA)
    )
    assert rejected is None  # viewers read everything

    for subject in (subjects.CMD_DATASETS_EDIT, subjects.CMD_DATASETS_DELETE):
        _, rejected = await request(nc, subject, attempts[subject](ADMIN))
        assert rejected is None, rejected
    events = await history(js, dataset_id)
    edited, deleted = events[-2:]
    assert isinstance(edited, DatasetEdited) and isinstance(deleted, DatasetDeleted)
    assert (edited.actor, deleted.actor) == ("admin", "admin")
    assert domain.fold(events).username == "alice"
