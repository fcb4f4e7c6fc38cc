"""Sweeps: comma lists of learning_rate and batch_size give one grouped job per combination."""

from __future__ import annotations

from digits_gateway.forms import model_commands
from digits_proto.base import Principal, Role

ALICE = Principal(username="alice", role=Role.USER)


def test_a_sweep_makes_one_job_per_combination_grouped_under_the_model_name() -> None:
    """2 rates × 2 batch sizes → 4 CreateModel named like DIGITS's, one group; a named group wins."""
    form = {
        "dataset": "20260101-000000-abcd",
        "model_name": "sweep",
        "standard_networks": "lenet",
        "learning_rate": "0.1,0.01",
        "batch_size": "32,64",
    }
    commands = model_commands(form, ALICE, lambda _: True)
    assert [(c.spec.learning_rate, c.spec.batch_size) for c in commands] == [
        (0.1, 32),
        (0.1, 64),
        (0.01, 32),
        (0.01, 64),
    ]
    assert commands[0].name == "sweep learning_rate:0.1 batch_size:32"
    assert {c.group for c in commands} == {"sweep"}
    named = model_commands({**form, "group_name": "mine"}, ALICE, lambda _: True)
    assert {c.group for c in named} == {"mine"}
    single = model_commands(
        {**form, "learning_rate": "0.1", "batch_size": ""}, ALICE, lambda _: True
    )
    assert len(single) == 1 and single[0].group == ""
