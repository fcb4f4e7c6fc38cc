"""DIGITS form fields → bus commands; shared by the DIGITS routes and `/api/v1` (one translation).

The field reader is in `_fields`, the dataset form in `_datasets`, the model form in `_models`.
"""

from __future__ import annotations

from digits_gateway.forms._datasets import DATASET_FILES, dataset_command
from digits_gateway.forms._fields import FALSE, TRUE, Fields, FormErrors, kept_form, submitted
from digits_gateway.forms._models import FRAMEWORKS, LR_POLICIES, SOLVERS, model_commands

__all__ = [
    "DATASET_FILES",
    "FALSE",
    "FRAMEWORKS",
    "LR_POLICIES",
    "SOLVERS",
    "TRUE",
    "Fields",
    "FormErrors",
    "dataset_command",
    "kept_form",
    "model_commands",
    "submitted",
]
