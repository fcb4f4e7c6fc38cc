"""Errors of the datasets service: refusals a caller can act on, and build failures."""

from __future__ import annotations

from digits_proto.runtime import DomainError, Forbidden, NotFound


class DatasetsError(DomainError):
    """Base of every command refusal of this service (400 unless a subclass says otherwise)."""


class InvalidField(DatasetsError):
    """A submitted field is wrong; `field` is DIGITS's form field name."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class DatasetNotFound(NotFound):
    """No such dataset (or it was deleted)."""

    def __init__(self, dataset_id: str):
        super().__init__(f"Job not found: {dataset_id}", field="dataset_id")


class NotAbortable(Forbidden):
    """The dataset is not being built, so there is nothing to abort."""

    def __init__(self) -> None:
        super().__init__("Job not aborted: it is not running")


class HasDependentModels(Forbidden):
    """Models still use the dataset."""

    def __init__(self, dataset_id: str, model_ids: list[str]):
        ids = ", ".join(model_ids)
        super().__init__(
            f"Cannot delete dataset {dataset_id} because {len(model_ids)} model(s) "
            f"depend on it: {ids}"
        )


class NotOwner(Forbidden):
    """Only the user who created a job may edit it (DIGITS's has_permission 'edit')."""

    def __init__(self) -> None:
        super().__init__("You don't have permission to edit this job")


class BuildError(Exception):
    """The build cannot go on; the message is shown to the user as the job's error."""


class BuildStopped(Exception):
    """The build was aborted or its dataset deleted while it ran."""
