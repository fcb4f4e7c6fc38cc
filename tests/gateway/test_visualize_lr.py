"""`POST /models/visualize-lr`: DIGITS's preview columns, and 400s naming the bad field."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from digits_gateway.controllers.lr_preview import visualize_lr
from digits_gateway.errors import EXCEPTION_HANDLERS


def _client() -> TestClient[Litestar]:
    return TestClient(Litestar([visualize_lr], exception_handlers=EXCEPTION_HANDLERS))


def test_visualize_lr_returns_one_column_of_101_points_per_swept_rate() -> None:
    """A comma list of rates gives one "Learning Rate i" column each, lr(0)…lr(100)."""
    with _client() as client:
        response = client.post(
            "/models/visualize-lr",
            data={
                "lr_policy": "step",
                "learning_rate": "0.1,0.01",
                "lr_step_size": "50",
                "lr_step_gamma": "0.5",
            },
        )
    assert response.status_code == 200
    columns = response.json()["data"]["columns"]
    assert [c[0] for c in columns] == ["Learning Rate 0", "Learning Rate 1"]
    assert len(columns[0]) == 102
    assert columns[0][1] == 0.1 and columns[0][51] == 0.05 and columns[1][101] == 0.0025


def test_visualize_lr_refuses_bad_fields_with_a_400_naming_them() -> None:
    """Junk in a policy field or the learning rate is a 400 whose errors name the field."""
    with _client() as client:
        bad_gamma = client.post(
            "/models/visualize-lr", data={"lr_policy": "exp", "lr_exp_gamma": "abc"}
        )
        bad_steps = client.post(
            "/models/visualize-lr", data={"lr_policy": "multistep", "lr_multistep_values": "1,x"}
        )
        bad_policy = client.post("/models/visualize-lr", data={"lr_policy": "cosine"})
        zero_step = client.post(
            "/models/visualize-lr", data={"lr_policy": "step", "lr_step_size": "0"}
        )
    assert bad_gamma.status_code == 400 and "lr_exp_gamma" in bad_gamma.json()["errors"]
    assert "lr_multistep_values" in bad_steps.json()["errors"]
    assert "lr_policy" in bad_policy.json()["errors"]
    assert "lr_step_size" in zero_step.json()["errors"]


def test_visualize_lr_drops_overflowing_points_instead_of_failing() -> None:
    """An exponential gamma that overflows gives null points, not a 500."""
    with _client() as client:
        response = client.post(
            "/models/visualize-lr", data={"lr_policy": "exp", "lr_exp_gamma": "1e300"}
        )
    assert response.status_code == 200
    column = response.json()["data"]["columns"][0]
    assert column[1] == 0.01 and column[101] is None
