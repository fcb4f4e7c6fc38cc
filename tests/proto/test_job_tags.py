"""Job tags in both owning services (EditModel / EditDataset → *Edited), one rule for both."""

from __future__ import annotations

import pytest

from digits_datasets import domain as datasets
from digits_datasets.errors import InvalidField as DatasetInvalid
from digits_proto.datasets import DatasetCreated, DatasetSpec, EditDataset
from digits_proto.models import EditModel, ModelCreated, TrainSpec
from digits_proto.stamps import fixed
from digits_trainer import domain as trainer
from digits_trainer.errors import InvalidField as ModelInvalid
from tests.fakes.principals import ALICE

MODEL = trainer.fold_model(
    [ModelCreated(model_id="m", name="net", username="alice", dataset_id="d", spec=TrainSpec())]
)
DATASET = datasets.fold(
    [
        DatasetCreated(
            dataset_id="d", name="pets", username="alice", spec=DatasetSpec(folder_train="/x")
        )
    ]
)


def test_a_model_takes_cleaned_tags_and_an_unchanged_list_appends_nothing() -> None:
    cmd = EditModel(model_id="m", principal=ALICE, tags=[" sweep ", "Sweep", "", "lr  0.1"])
    [event] = trainer.decide_edit(MODEL, cmd, at=fixed())
    assert (event.tags, event.name, event.notes) == (["sweep", "lr 0.1"], None, None)
    after = trainer.evolve_model(MODEL, event)
    assert after.tags == ("sweep", "lr 0.1") and after.name == "net"
    again = EditModel(model_id="m", principal=ALICE, tags=["sweep", "lr 0.1"])
    assert trainer.decide_edit(after, again, at=fixed()) == []
    [cleared] = trainer.decide_edit(
        after, EditModel(model_id="m", principal=ALICE, tags=[]), at=fixed()
    )
    assert trainer.evolve_model(after, cleared).tags == ()


def test_a_dataset_takes_tags_and_refuses_a_long_one_naming_job_tags() -> None:
    [event] = datasets.decide_edit(
        DATASET, EditDataset(dataset_id="d", principal=ALICE, tags=["cats"]), at=fixed()
    )
    assert datasets.evolve(DATASET, event).tags == ("cats",)
    with pytest.raises(DatasetInvalid) as info:
        datasets.decide_edit(
            DATASET, EditDataset(dataset_id="d", principal=ALICE, tags=["x" * 41]), at=fixed()
        )
    assert info.value.field == "job_tags"
    with pytest.raises(ModelInvalid):
        trainer.decide_edit(
            MODEL, EditModel(model_id="m", principal=ALICE, tags=["a,b"]), at=fixed()
        )
