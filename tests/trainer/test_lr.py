"""The seven DIGITS learning-rate policies, value by value (digits-features §2.2)."""

from __future__ import annotations

import pytest

from digits_proto.models import TrainSpec
from digits_trainer.lr import lr_at

BASE = 0.01

TABLE = [
    # policy, progress %, expected lr (DIGITS's default parameters for each policy)
    ("fixed", 0, BASE),
    ("fixed", 73.5, BASE),
    ("step", 0, BASE),
    ("step", 32.9, BASE),
    ("step", 33, BASE * 0.1),
    ("step", 66, BASE * 0.01),
    ("step", 99.5, BASE * 0.001),
    ("multistep", 49.9, BASE),
    ("multistep", 50, BASE * 0.5),
    ("multistep", 84.9, BASE * 0.5),
    ("multistep", 85, BASE * 0.25),
    ("multistep", 100, BASE * 0.25),
    ("exp", 0, BASE),
    ("exp", 10, BASE * 0.95**10),
    ("exp", 100, BASE * 0.95**100),
    ("inv", 0, BASE),
    ("inv", 30, BASE * 4**-0.5),
    ("inv", 80, BASE / 3),
    ("poly", 0, BASE),
    ("poly", 50, BASE * 0.125),
    ("poly", 100, 0.0),
    ("sigmoid", 0, 0.0099330714907572),
    ("sigmoid", 50, BASE / 2),
    ("sigmoid", 100, 6.692850924284856e-05),
]


@pytest.mark.parametrize(("policy", "progress", "expected"), TABLE)
def test_lr_at_follows_digits_formula(policy: str, progress: float, expected: float) -> None:
    """Each policy gives DIGITS's learning rate at that percent of training."""
    spec = TrainSpec(learning_rate=BASE, lr_policy=policy)
    assert lr_at(progress, spec) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_lr_at_uses_the_spec_parameters() -> None:
    """Non-default step size, gamma, multistep values and powers are honoured."""
    assert lr_at(25, TrainSpec(lr_policy="step", lr_step_size=10, lr_step_gamma=0.5)) == 0.01 / 4
    multistep = TrainSpec(lr_policy="multistep", lr_multistep_values="[10, 20,30]")
    assert lr_at(25, multistep) == pytest.approx(0.01 * 0.5**2)
    assert lr_at(50, TrainSpec(lr_policy="poly", lr_poly_power=1)) == pytest.approx(0.005)
    assert lr_at(100, TrainSpec(lr_policy="sigmoid", lr_sigmoid_gamma=100)) == 0.0
