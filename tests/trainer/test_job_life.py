"""Job life in the trainer: rename and notes (EditModel → ModelEdited), the raw log's uploads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import (
    CreateModel,
    EditModel,
    ModelCreated,
    ModelEdited,
    TrainingCompleted,
    TrainSpec,
)
from digits_proto.runtime import put_bytes, request
from digits_proto.stamps import fixed
from digits_trainer.domain import decide_edit, evolve_model
from digits_trainer.errors import InvalidField, ModelNotFound, NotOwner
from digits_trainer.joblog import JobLog, log_blob
from digits_trainer.store import Store
from tests.fakes.principals import ALICE, BOB
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    status_is,
    trainer,
    wait_for,
    wait_for_progress,
)

pytestmark = pytest.mark.timeout(120)


def _state(username: str = "alice"):
    created = ModelCreated(
        model_id="m1", name="net", username=username, dataset_id="d", spec=TrainSpec()
    )
    state = evolve_model(None, created)
    assert state is not None
    return state


def test_edit_decides_a_model_edited_event_and_folding_it_renames() -> None:
    """A new name and notes, stripped; folding the event shows them; the same name adds nothing."""
    state = _state()
    [event] = decide_edit(
        state, EditModel(model_id="m1", principal=ALICE, name=" b ", notes="x"), at=fixed()
    )
    assert (event.name, event.notes) == ("b", "x")
    after = evolve_model(state, event)
    assert after is not None and (after.name, after.notes) == ("b", "x")
    assert decide_edit(after, EditModel(model_id="m1", principal=ALICE, name="b"), at=fixed()) == []


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (EditModel(model_id="m1", principal=ALICE, name=" "), InvalidField),
        (EditModel(model_id="m1", principal=BOB, name="b"), NotOwner),
    ],
)
def test_edit_refuses_a_blank_name_and_another_user(command, error) -> None:
    """Blank job_name → 400 on job_name; not the owner → 403."""
    with pytest.raises(error):
        decide_edit(_state(), command, at=fixed())
    with pytest.raises(ModelNotFound):
        decide_edit(None, command, at=fixed())


async def test_the_log_continues_a_stored_longer_log_and_is_uploaded(js, tmp_path: Path) -> None:
    """A new attempt on another node starts from the stored log and appends its header; a local
    log longer than the stored one (same node) is kept as it is."""
    store = Store.on(js)
    await put_bytes(js, subjects.BUCKET_MODELS, log_blob("m1"), b"attempt 1 line\n")
    log = JobLog(store, "m1", tmp_path / "node-b" / "m1", every=30)
    await log.open("attempt 2 of m1")
    await log.close("training completed")
    stored = (await store.read_model_file(log_blob("m1"))) or b""
    lines = stored.decode().splitlines()
    assert lines[0] == "attempt 1 line"
    assert lines[1].endswith("attempt 2 of m1") and lines[2].endswith("training completed")

    local = tmp_path / "node-a" / "m1"
    local.mkdir(parents=True)
    (local / "train.log").write_text("a much longer local log of attempt 1\n" * 10)
    await JobLog(store, "m1", local, every=30).open("attempt 3 of m1")
    text = (local / "train.log").read_text()
    assert text.startswith("a much longer local log") and text.rstrip().endswith("attempt 3 of m1")
    assert await store.read_model_file(log_blob("nobody")) is None


async def test_a_running_job_is_renamed_and_trains_on_with_its_log_uploaded(
    nats_url, js, nc, tmp_path
) -> None:
    """EditModel during training appends ModelEdited; the attempt goes on to Done; the log in
    the bucket holds the attempt header, the child's lines and how it ended."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        command = CreateModel(
            name="before",
            principal=ALICE,
            dataset_id=dataset_id,
            spec=TrainSpec(train_epochs=2, random_seed=1, lr_policy="fixed"),
        )
        body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command)
        assert rejected is None
        model_id = codec.command_reply.decode(body).id
        await wait_for_progress(js, model_id)  # training runs
        for n in range(3):  # several edits while the attempt appends its own events
            edit = EditModel(model_id=model_id, principal=ALICE, name=f"after {n}", notes="n")
            body, rejected = await request(nc, subjects.CMD_MODELS_EDIT, edit)
            assert rejected is None
        reply = codec.command_reply.decode(body)
        assert (reply.name, reply.status) == ("after 2", JobStatus.RUNNING)
        live = await nc.request(subjects.model_log(model_id), b"", timeout=2)
        assert f"attempt 1 of {model_id}" in live.data.decode()
        bob = EditModel(model_id=model_id, principal=BOB, name="mine")
        _, rejected = await request(nc, subjects.CMD_MODELS_EDIT, bob)
        assert rejected is not None and rejected.code == 403
        events = await wait_for(js, model_id, status_is(JobStatus.DONE))
    assert isinstance(events[-1], TrainingCompleted)
    edits = [(e.name, e.notes) for e in events if isinstance(e, ModelEdited)]
    assert edits == [("after 0", "n"), ("after 1", None), ("after 2", None)]
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    out = io.BytesIO()
    await bucket.get(log_blob(model_id), writeinto=out)
    text = out.getvalue().decode()
    assert f"attempt 1 of {model_id}" in text
    assert "data loaded" in text and "validation" in text
    assert text.rstrip().endswith("training completed")
