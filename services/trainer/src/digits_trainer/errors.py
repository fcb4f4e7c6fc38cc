"""The trainer's domain errors: each becomes a `Rejected` with its HTTP code and form field."""

from __future__ import annotations

from digits_proto.runtime import DomainError, Forbidden, NotFound


class InvalidField(DomainError):
    """A form field is missing or out of range (400, naming the DIGITS field)."""

    code = 400

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class StorageFailed(DomainError):
    """This node could not write a file the command needs (a full disk, a read-only folder):
    507, the message names the file (or folder) and the node, never a 500."""

    code = 507  # Insufficient Storage: the request was fine, this node's disk was not


class ModelNotFound(NotFound):
    """No model job has this id, or it was deleted (404)."""

    def __init__(self, model_id: str):
        super().__init__(f"Job {model_id} not found", field="job_id")


class NotAbortable(Forbidden):
    """The job already ended, so it cannot be aborted (403, DIGITS's answer)."""

    def __init__(self) -> None:
        super().__init__("Job not aborted")


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
    """A viewer reads everything and changes nothing (nor runs network code)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} is a viewer: viewers change nothing")
