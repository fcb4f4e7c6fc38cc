"""The trainer's domain errors: each becomes a `Rejected` with its HTTP code and form field."""

from __future__ import annotations

from digits_proto.runtime import DomainError, Forbidden, NotFound


class InvalidField(DomainError):
    """A form field is missing or out of range (400, naming the DIGITS field)."""

    code = 400

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class ModelNotFound(NotFound):
    """No model job has this id, or it was deleted (404)."""

    def __init__(self, model_id: str):
        super().__init__(f"Job {model_id} not found", field="job_id")


class NotAbortable(Forbidden):
    """The job already ended, so it cannot be aborted (403, DIGITS's answer)."""

    def __init__(self) -> None:
        super().__init__("Job not aborted")


class NotOwner(Forbidden):
    """Only the user who created a job may edit it (DIGITS's has_permission 'edit')."""

    def __init__(self) -> None:
        super().__init__("You don't have permission to edit this job")
