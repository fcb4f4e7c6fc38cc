"""Replies shared by every command endpoint."""

from __future__ import annotations

from digits_proto.base import JobStatus, Reply


class Accepted(Reply, frozen=True, kw_only=True, tag="common.Accepted"):
    """A command took effect: the job it concerns and where its last event lies.

    `stream`/`seq` let the gateway wait until its read model has caught up (read-your-writes).
    """

    id: str
    name: str = ""
    status: JobStatus = JobStatus.INITIALIZED
    stream: str = ""
    seq: int = 0


class Rejected(Reply, frozen=True, kw_only=True, tag="common.Rejected"):
    """A command was refused. `code` is an HTTP status; `field` names the input at fault."""

    code: int
    message: str
    field: str | None = None
