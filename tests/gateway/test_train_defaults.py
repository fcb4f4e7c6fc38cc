"""The training settings have one source (digits_proto.train_settings): the API form with no
settings, the HTML form's defaults submitted as they are, and TrainSpec() are the same job."""

from __future__ import annotations

from digits_gateway.forms import model_commands
from digits_gateway.pages._models import MODEL_DEFAULTS
from digits_proto.base import Principal, Role
from digits_proto.models import TrainSpec
from digits_proto.train_settings import LR_POLICIES, SOLVERS

USER = Principal(username="u", role=Role.USER)


def spec_of(values: dict[str, str]) -> TrainSpec:
    (command,) = model_commands(values, USER, lambda _: True)
    return command.spec


def test_a_form_with_no_settings_trains_with_the_spec_defaults() -> None:
    """An API client that names only the dataset and the job gets TrainSpec's defaults."""
    assert spec_of({"dataset": "d", "model_name": "n"}) == TrainSpec()


def test_the_html_forms_defaults_submit_the_spec_defaults() -> None:
    """The page's pre-filled form, submitted untouched, is the same job as no settings."""
    assert spec_of({**MODEL_DEFAULTS, "dataset": "d", "model_name": "n"}) == TrainSpec()


def test_every_choice_the_form_offers_the_trainer_accepts() -> None:
    """No solver or policy passes the gateway only to be refused by the trainer."""
    from digits_trainer.spec import check_spec

    for solver in SOLVERS:
        check_spec(TrainSpec(solver_type=solver))
    for policy in LR_POLICIES:
        check_spec(TrainSpec(lr_policy=policy))
