"""Who may do what to a model job, decided by the trainer itself (the gateway bypassed)."""

from __future__ import annotations

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus, Principal
from digits_proto.datasets import DatasetCreated, DatasetSpec
from digits_proto.gpus import AcquireLease
from digits_proto.models import (
    AbortModel,
    CreateModel,
    CreatePretrainedModel,
    CustomizeNetwork,
    DeleteModel,
    EditModel,
    MakePretrained,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    TrainSpec,
    VisualizeNetwork,
)
from digits_proto.runtime import Conflict, request, serve_endpoints
from digits_proto.stamps import fixed
from digits_trainer.domain import (
    decide_abort,
    decide_create,
    decide_delete,
    decide_edit,
    fold_dataset,
    fold_model,
)
from digits_trainer.errors import NoPrincipal, NotOwner, ReadOnly
from tests.fakes.principals import ADMIN, ALICE, BOB, VERA
from tests.trainer.test_service import add_dataset, status_is, trainer, wait_for

pytestmark = pytest.mark.timeout(120)

CREATED = ModelCreated(model_id="m", name="net", username="alice", dataset_id="d", spec=TrainSpec())


def abort(who: Principal | None) -> list:
    return decide_abort(fold_model([CREATED]), AbortModel(model_id="m", principal=who), at=fixed())


def delete(who: Principal | None) -> list:
    return decide_delete(
        fold_model([CREATED]), DeleteModel(model_id="m", principal=who), at=fixed()
    )


def edit(who: Principal | None) -> list:
    return decide_edit(
        fold_model([CREATED]), EditModel(model_id="m", principal=who, notes="n"), at=fixed()
    )


CHANGES = [abort, delete, edit]


@pytest.mark.parametrize("when", CHANGES)
@pytest.mark.parametrize(
    ("who", "refusal"), [(None, NoPrincipal), (VERA, ReadOnly), (BOB, NotOwner)]
)
def test_no_principal_a_viewer_and_another_user_are_refused(when, who, refusal) -> None:
    """given alice's job, when nobody / vera (viewer) / bob changes it, then 403."""
    with pytest.raises(refusal) as info:
        when(who)
    assert info.value.code == 403


@pytest.mark.parametrize("when", CHANGES)
@pytest.mark.parametrize(("who", "actor"), [(ALICE, "alice"), (ADMIN, "admin")])
def test_the_owner_and_an_admin_change_it_and_the_event_names_the_actor(when, who, actor) -> None:
    """given alice's job, when alice or the admin changes it, then the event's actor is who
    acted (an admin's action on alice's job is marked as the admin's)."""
    [event] = when(who)
    assert isinstance(event, ModelAborted | ModelDeleted | ModelEdited)
    assert event.actor == actor


@pytest.mark.parametrize(("who", "refusal"), [(None, NoPrincipal), (VERA, ReadOnly)])
def test_create_needs_a_user_or_an_admin(who, refusal) -> None:
    """Nobody and viewers create no job."""
    dataset = fold_dataset([DatasetCreated(dataset_id="d", name="d", spec=DatasetSpec())])
    command = CreateModel(name="n", dataset_id="d", spec=TrainSpec(), principal=who)
    with pytest.raises(refusal):
        decide_create(command, dataset, "x", at=fixed())


class CappingBroker:
    """A gpu-broker whose devices are all busy: it notes who each AcquireLease says owns the job
    (the per-user cap counts that name)."""

    def __init__(self) -> None:
        self.users: list[str] = []

    async def serve(self, nc) -> None:
        async def answer(command):
            if isinstance(command, AcquireLease):
                self.users.append(command.user)
            raise Conflict("all devices are leased")

        await serve_endpoints(
            nc,
            subjects.SERVICE_GPU_BROKER,
            codec.gpu_commands,
            {s: answer for s in (subjects.CMD_GPUS_ACQUIRE, subjects.CMD_GPUS_RELEASE)},
        )


async def send(nc, subject: str, command) -> object:
    """The command's Rejected, or None when it was accepted."""
    _, rejected = await request(nc, subject, command, timeout=30)
    return rejected


async def test_the_trainer_refuses_other_principals_on_the_bus(nats_url, js, nc, tmp_path):
    """With no gateway in the way: bob's, vera's and anonymous abort/delete/edit/to-pretrained
    of alice's job are refused with a reason; vera creates nothing and runs no network code;
    the admin's edit and abort succeed with the admin as actor, alice still the owner; the
    device queue's per-user cap counts alice's account, not a typed username."""
    broker = CappingBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        create = CreateModel(
            name="alice's",
            username="mallory",  # superseded: the principal owns the job
            dataset_id=dataset_id,
            spec=TrainSpec(train_epochs=1),
            principal=ALICE,
        )
        body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, create)
        assert rejected is None, rejected
        model_id = codec.command_reply.decode(body).id
        await wait_for(js, model_id, status_is(JobStatus.WAITING))
        assert broker.users and set(broker.users) == {"alice"}

        attempts = {
            subjects.CMD_MODELS_ABORT: lambda who: AbortModel(model_id=model_id, principal=who),
            subjects.CMD_MODELS_DELETE: lambda who: DeleteModel(model_id=model_id, principal=who),
            subjects.CMD_MODELS_EDIT: lambda who: EditModel(
                model_id=model_id, principal=who, name="mine"
            ),
            subjects.CMD_MODELS_TO_PRETRAINED: lambda who: MakePretrained(
                model_id=model_id, principal=who
            ),
        }
        for subject, command in attempts.items():
            for who, reason in ((BOB, "permission"), (VERA, "viewer"), (None, "no principal")):
                rejected = await send(nc, subject, command(who))
                assert rejected is not None, (subject, who)
                assert rejected.code == 403 and reason in rejected.message, rejected

        viewer_runs = [
            (subjects.CMD_MODELS_CREATE, CreateModel(**{**_fields(create), "principal": VERA})),
            (subjects.CMD_MODELS_VISUALIZE, VisualizeNetwork(custom_network="x", principal=VERA)),
            (subjects.CMD_MODELS_PRETRAINED, CreatePretrainedModel(name="p", principal=VERA)),
            (subjects.CMD_MODELS_CUSTOMIZE, CustomizeNetwork(network="lenet")),
        ]
        for subject, command in viewer_runs:
            rejected = await send(nc, subject, command)
            assert rejected is not None and rejected.code == 403, subject
        reply = await request(
            nc, subjects.CMD_MODELS_CUSTOMIZE, CustomizeNetwork(network="lenet", principal=VERA)
        )
        assert reply[1] is None  # viewers read every network's source

        assert (
            await send(nc, subjects.CMD_MODELS_EDIT, attempts[subjects.CMD_MODELS_EDIT](ADMIN))
            is None
        )
        rejected = await send(
            nc,
            subjects.CMD_MODELS_TO_PRETRAINED,
            attempts[subjects.CMD_MODELS_TO_PRETRAINED](ADMIN),
        )
        assert rejected is not None and rejected.code == 409  # past the owner rule: no snapshot
        assert (
            await send(nc, subjects.CMD_MODELS_ABORT, attempts[subjects.CMD_MODELS_ABORT](ADMIN))
            is None
        )
        events = await wait_for(js, model_id, status_is(JobStatus.ABORTED))
    created = events[0]
    assert isinstance(created, ModelCreated) and (created.username, created.actor) == (
        "alice",
        "alice",
    )
    edited = [e.actor for e in events if isinstance(e, ModelEdited)]
    aborted = [e.actor for e in events if isinstance(e, ModelAborted)]
    assert (edited, aborted) == (["admin"], ["admin"])
    assert fold_model(events).username == "alice"


def _fields(struct: object) -> dict:
    return {f: getattr(struct, f) for f in struct.__struct_fields__}  # type: ignore[attr-defined]
