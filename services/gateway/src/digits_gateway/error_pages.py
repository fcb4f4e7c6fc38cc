"""The HTML error page a browser gets for a refused request: which form or job it was about,
where to go back to, and what a 404 on a job's URL means (deleted, or never there)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.utils.scope.state import ScopeState

from digits_gateway import ui
from digits_gateway.params import username, wants_json
from digits_gateway.readmodel import queries

# JobNotFound's message when a route only knows that its job is not there.
MISSING_JOB = "Job not found"

# The model page's form (its heading's id) that each inference post comes from.
FORM_ANCHORS = {
    "classify_one": "#test-heading",
    "classify_many": "#test-many-heading",
    "top_n": "#test-many-heading",
}

JOB_KINDS = {"dataset": "dataset", "model": "model", "pretrained_model": "pretrained model"}


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for a page (Accept names text/html, no `.json` or /api route) from an
    app that renders templates: DIGITS's scripts and the API keep their JSON and text bodies."""
    if wants_json(request) or request.app.template_engine is None:
        return False
    return "text/html" in request.headers.get("accept", "").lower()


def _request_job_id(request: Request[Any, Any, Any]) -> str:
    """The model a form was about (`job_id` of the query or of the form already read), or ''."""
    value = request.query_params.get("job_id")
    if value is None:
        form = ScopeState.from_scope(request.scope).form
        value = form.get("job_id") if isinstance(form, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) else ""


def error_page(
    request: Request[Any, Any, Any],
    code: int,
    message: str,
    errors: dict[str, list[str]] | None,
) -> Response[Any]:
    """The error in the site frame: a form's errors lead back to that form on the model page
    (and say that chosen files must be chosen again), a job that is not there (or any other
    refusal) back to the job list."""
    job_id = _request_job_id(request)
    if job_id and code != 404:
        back = (f"/models/{quote(job_id, safe='')}{_form_anchor(request)}", "Back to the form")
    else:
        back = ("/", "Back to the job list")
    if errors:
        title = "The form has errors"
    elif code == 404:
        title, message = _not_found(request, message)
    else:
        title = {403: "Not allowed", 409: "Conflict", 413: "Too large"}.get(code, "Request refused")
    files = code != 404 and _chose_files(request)
    page = ui.pages().error_page(code, title, message, errors, back, username(request), files)
    return page  # type: ignore[no-any-return]


def _form_anchor(request: Request[Any, Any, Any]) -> str:
    return FORM_ANCHORS.get(request.url.path.rstrip("/").rsplit("/", 1)[-1], "")


def _chose_files(request: Request[Any, Any, Any]) -> bool:
    """Whether the refused form carried a chosen file: no browser puts one back in its field."""
    form = ScopeState.from_scope(request.scope).form
    if not isinstance(form, dict):
        return False
    values = [v for value in form.values() for v in (value if isinstance(value, list) else [value])]
    return any(isinstance(v, UploadFile) and v.filename for v in values)


def _not_found(request: Request[Any, Any, Any], message: str) -> tuple[str, str]:
    """Heading and text of a 404 page. A job route's plain "Job not found" says whether the
    job was deleted (the read model keeps its row) or no job ever had the id; other 404s
    keep their own words."""
    if message != MISSING_JOB:
        return (message.rstrip(".") if message.startswith(MISSING_JOB) else "Not found"), message
    job_id = (request.scope.get("path_params") or {}).get("job_id") or _request_job_id(request)
    gw = request.app.state.get("gateway")
    if not job_id or gw is None:
        return message, message
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, job_id, include_deleted=True)
    if job is None:
        return "No job has this id", (
            f"No dataset, model or pretrained model has the id {job_id}: check the address, "
            "or look for the job in the job list."
        )
    if job.deleted:
        kind = JOB_KINDS.get(job.type, "job")
        return "This job was deleted", (
            f"The {kind} “{job.name}” ({job.id}) was deleted, with its files and results."
        )
    return message, message
