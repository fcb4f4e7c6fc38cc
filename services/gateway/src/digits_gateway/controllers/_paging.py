"""Pages of the `/api/v1` job lists: `limit` jobs after a `cursor`, with a link to the next page.

Keyset paging on (created, id), the lists' order: a job created or deleted while a client walks
the pages shifts nothing, so no job is skipped or listed twice. The cursor is the id of the last
job of the previous page; `next` is the URL of the following page (null on the last).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar.params import Parameter

from digits_gateway import views
from digits_gateway.deps import Gateway
from digits_gateway.forms import FormErrors
from digits_gateway.readmodel import queries
from digits_gateway.schemas import JobList, JobSummary

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Limit = Annotated[
    int,
    Parameter(
        query="limit",
        ge=1,
        le=MAX_LIMIT,
        description=f"jobs per page (1–{MAX_LIMIT}, default {DEFAULT_LIMIT})",
    ),
]
Cursor = Annotated[
    str,
    Parameter(
        query="cursor",
        max_length=64,
        description="where the page starts: the `next` link of the previous page carries it",
    ),
]


def job_page(gw: Gateway, type: str | None, limit: int, cursor: str, path: str) -> JobList:
    """One page of live jobs (of one type, or all), oldest first; 400 on an unknown cursor."""
    with gw.db.cursor() as cur:
        try:
            jobs = queries.list_jobs(cur, type, limit=limit + 1, after=cursor or None)
        except KeyError:
            raise FormErrors(
                {"cursor": [f"Unknown cursor {cursor!r}: start without one"]}
            ) from None
    more = len(jobs) > limit
    jobs = jobs[:limit]
    link = f"{path}?{urlencode({'limit': limit, 'cursor': jobs[-1].id})}" if more else None
    return JobList(jobs=[JobSummary(**views.summary(j)) for j in jobs], next=link)
