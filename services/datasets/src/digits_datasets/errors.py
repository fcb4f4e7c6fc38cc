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
    """Only the user who created a job (or an admin) may change it (DIGITS's has_permission)."""

    def __init__(self, verb: str = "edit", owner: str = "") -> None:
        whose = f" (it belongs to {owner})" if owner else ""
        super().__init__(f"You don't have permission to {verb} this job{whose}")


class NoPrincipal(Forbidden):
    """The command does not say who asks: only the gateway sends commands, and it always does."""

    def __init__(self) -> None:
        super().__init__("Refused: the command carries no principal (who asks is unknown)")


class ReadOnly(Forbidden):
    """A viewer reads everything and changes nothing."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} is a viewer: viewers change nothing")


class BuildError(Exception):
    """The build cannot go on; the message is shown to the user as the job's error."""


class BuildStopped(Exception):
    """The build was aborted or its dataset deleted while it ran."""
