"""The new-model form's fields → TrainSpec (forms/), and the home-page loss sparkline."""

from __future__ import annotations

import pytest

from digits_gateway.forms import FormErrors, model_commands
from digits_proto.base import Principal, Role
from tests.gateway.helpers import until
from tests.gateway.test_models_routes import built_dataset, form

ALICE = Principal(username="alice", role=Role.USER)

BASE = {"dataset": "ds", "model_name": "net"}


def spec_of(**values: str):
    [command] = model_commands({**BASE, **values}, ALICE, lambda _id: True)
    return command.spec


def test_augmentation_fields_reach_the_train_spec() -> None:
    """Every augmentation field of the form is mapped onto TrainSpec."""
    spec = spec_of(
        aug_flip="fliplrud",
        aug_quad_rot="rot90",
        aug_rot="15",
        aug_scale="0.07",
        aug_noise="0.03",
        aug_contrast="0.5",
        aug_whitening="0,1",
        aug_hsv_use="1",
        aug_hsv_h="0.1",
        aug_hsv_s="0.2",
        aug_hsv_v="0.3",
    )
    assert (spec.aug_flip, spec.aug_quad_rot, spec.aug_rot) == ("fliplrud", "rot90", 15.0)
    assert (spec.aug_scale, spec.aug_noise, spec.aug_contrast) == (0.07, 0.03, 0.5)
    assert spec.aug_whitening and spec.aug_hsv_use
    assert (spec.aug_hsv_h, spec.aug_hsv_s, spec.aug_hsv_v) == (0.1, 0.2, 0.3)


def test_a_checkbox_after_its_hidden_zero_reads_the_last_value() -> None:
    """The browser posts "0" alone when unticked and "0,1" when ticked: the last value wins."""
    assert spec_of(shuffle="0").shuffle is False
    assert spec_of(shuffle="0,1").shuffle is True
    assert spec_of().shuffle is True  # absent: DIGITS's default


def test_previous_network_and_its_snapshot_reach_the_train_spec() -> None:
    """method=previous maps `previous_networks` and `<job>-snapshot` onto the spec."""
    spec = spec_of(method="previous", previous_networks="job1", **{"job1-snapshot": "3"})
    assert (spec.method, spec.previous_network, spec.previous_snapshot) == ("previous", "job1", 3.0)
    assert spec_of(previous_networks="job1").previous_network == ""  # only with method=previous


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"aug_flip": "diagonal"}, "aug_flip"),
        ({"aug_rot": "270"}, "aug_rot"),
        ({"aug_hsv_h": "0.9"}, "aug_hsv_h"),
        ({"aug_contrast": "x"}, "aug_contrast"),
        ({"method": "previous"}, "previous_networks"),
        ({"method": "previous", "previous_networks": "j", "j-snapshot": "-2"}, "j-snapshot"),
        ({"early_stopping_patience": "-1"}, "early_stopping_patience"),
        ({"aug_whitening": "maybe"}, "aug_whitening"),
    ],
)
def test_bad_new_fields_are_refused_naming_the_field(values: dict[str, str], field: str) -> None:
    """Out-of-range or unknown values are FormErrors (a 400) under the field's own name."""
    with pytest.raises(FormErrors) as caught:
        spec_of(**values)
    assert field in caught.value.errors


async def test_completed_jobs_carries_a_train_loss_sparkline(client, backend) -> None:
    """/completed_jobs.json gives each model its train loss, bucketed, in training order."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    await backend.start_training(model_id)
    for iteration in range(1, 51):
        await backend.metric(model_id, iteration, loss=10.0 / iteration)
    await backend.metric(model_id, 51, phase="val", loss=99.0, accuracy=0.5)

    async def all_points_projected() -> bool:
        points = (await client.get(f"/api/v1/models/{model_id}/metrics")).json()["points"]
        return len(points) == 51

    await until(all_points_projected)

    async def sparkline() -> list[float] | None:
        table = (await client.get("/completed_jobs.json")).json()
        item = next(m for part in ("running", "models") for m in table[part] if m["id"] == model_id)
        line = item.get("loss_sparkline") or []
        return line if len(line) == 24 else None

    line = await until(sparkline)
    assert line == sorted(line, reverse=True) and 99.0 not in line
    assert line[0] == pytest.approx((10 + 5 + 10 / 3) / 3, rel=1e-5)
