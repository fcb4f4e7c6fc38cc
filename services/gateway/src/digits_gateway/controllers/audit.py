"""The audit view (admins): every event a person caused, newest first, by actor and by job."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template

from digits_gateway import ui
from digits_gateway.deps import Gateway
from digits_gateway.params import username
from digits_gateway.readmodel import queries

Actor = Annotated[str, Parameter(query="actor", max_length=64, description="only this account's")]
Job = Annotated[str, Parameter(query="job", max_length=64, description="only this job or account")]
Limit = Annotated[int, Parameter(query="limit", ge=1, le=5000, description="rows, newest first")]


def _entries(gw: Gateway, actor: str, job: str, limit: int) -> list[queries.AuditEntry]:
    with gw.db.cursor() as cur:
        return queries.audit_entries(cur, actor=actor.strip(), job=job.strip(), limit=limit)


@get("/api/v1/audit", sync_to_thread=False)
def audit_json(gw: Gateway, actor: Actor = "", job: Job = "", limit: Limit = 500) -> dict[str, Any]:
    """`{"entries": [...]}`; `on_behalf` marks an action on someone else's job or account."""
    return {"entries": msgspec.to_builtins(_entries(gw, actor, job, limit))}


@get("/admin/audit", include_in_schema=False, sync_to_thread=False)
def audit_page(
    request: Request[Any, Any, Any],
    gw: Gateway,
    actor: Actor = "",
    job: Job = "",
    limit: Limit = 500,
) -> Template:
    """The same rows as a page with a filter form."""
    return ui.pages()._page(  # the shared page frame (title, user, assets)
        "admin/audit.html",
        "Audit",
        username(request),
        entries=_entries(gw, actor, job, limit),
        actor=actor,
        job=job,
    )
