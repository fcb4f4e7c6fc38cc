"""Gateway errors and the one place that turns any exception into DIGITS's error bodies."""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from nats.js.errors import ObjectNotFoundError

from digits_gateway.error_pages import MISSING_JOB, error_page, wants_page
from digits_gateway.forms import FormErrors
from digits_gateway.params import wants_json

log = structlog.get_logger(__name__)


# The error body's "type" for each HTTP status (DIGITS's names).
KINDS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    422: "UnprocessableEntity",
    502: "BadGateway",
    503: "ServiceUnavailable",
    507: "InsufficientStorage",
}


class GatewayError(Exception):
    """Base of the gateway's own errors; `code` is the HTTP status, `kind` (the body's "type")
    follows from it unless a subclass names its own."""

    code = 500
    kind = "Error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = KINDS.get(cls.code, "Error")

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JobNotFound(GatewayError):
    """No such job (or not of the type the route serves)."""

    code = 404

    def __init__(self, message: str = MISSING_JOB):
        super().__init__(message)


class NotLoggedIn(GatewayError):
    """The route needs a user (DIGITS's requires_login)."""

    code = 401

    def __init__(self) -> None:
        super().__init__("Sign in first (a session cookie or an Authorization: Bearer token)")


class InvalidUsername(GatewayError):
    """The username breaks DIGITS's rule."""

    code = 400


class Denied(GatewayError):
    """Refused: not the owner, not abortable, models depend on it."""

    code = 403


class Unavailable(GatewayError):
    """A service did not answer (`accepted` False: nothing happened, safe to retry), or it
    accepted the command but the read model did not catch up in time (`accepted` True, with
    the job's id: retry under the same Idempotency-Key, or GET the job)."""

    code = 503

    def __init__(
        self,
        message: str,
        accepted: bool | None = None,
        job_id: str | None = None,
        retry_after: int = 1,
    ):
        super().__init__(message)
        self.accepted = accepted
        self.job_id = job_id
        self.retry_after = retry_after


class KeyReused(GatewayError):
    """The Idempotency-Key was used for a different request (IETF draft, Stripe: 422)."""

    code = 422

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used for a different request; use a new key")


class NotAborted(GatewayError):
    """An abort that could not be recorded (the owning service failed, its disk or its store):
    409 with the reason, so that an abort always answers and never with a 500."""

    code = 409

    def __init__(self, reason: str):
        super().__init__(f"Job not aborted: {reason}")


class StorageFull(GatewayError):
    """The gateway could not write a file a request needs (a full disk, a read-only folder)."""

    code = 507

    def __init__(self, error: OSError, doing: str):
        reason = error.strerror or str(error) or type(error).__name__
        where = f" writing {error.filename}" if error.filename is not None else ""
        super().__init__(f"{doing} failed: {reason}{where} on the gateway")


class CommandRejected(GatewayError):
    """The owning service refused the command (its `Rejected` reply)."""

    def __init__(self, code: int, message: str, field: str | None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.kind = KINDS.get(code, "Error")


def error_response(
    request: Request[Any, Any, Any], code: int, message: str, kind: str
) -> Response[Any]:
    """DIGITS's `{"error": {"message", "type"}}` for JSON clients, the error page for a
    browser's 4xx, the plain message otherwise."""
    if wants_json(request):
        return Response(
            {"error": {"message": message, "type": kind}},
            status_code=code,
            media_type=MediaType.JSON,
        )
    if 400 <= code < 500 and wants_page(request):
        return error_page(request, code, message, None)
    return Response(message, status_code=code, media_type=MediaType.TEXT)


def errors_response(
    errors: dict[str, list[str]], request: Request[Any, Any, Any] | None = None
) -> Response[Any]:
    """DIGITS's form-validation body: 400 `{"errors": {"<field>": ["message"]}}`; a browser
    (`request` given) gets the error page naming each field instead."""
    if request is not None and wants_page(request):
        return error_page(request, 400, "", errors)
    return Response({"errors": errors}, status_code=400, media_type=MediaType.JSON)


def rejected_errors(exc: CommandRejected) -> dict[str, list[str]]:
    """A service's 400 as form errors, under the field it named."""
    return {exc.field or "form": [exc.message]}


def on_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    if isinstance(exc, CommandRejected) and exc.code == 400:
        return errors_response(rejected_errors(exc), request)
    if exc.code == 401:
        return Response({"error": {"message": exc.message, "type": exc.kind}}, status_code=401)
    if isinstance(exc, Unavailable):
        return unavailable_response(request, exc)
    return error_response(request, exc.code, exc.message, exc.kind)


def unavailable_response(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    """A 503 that says whether the command was accepted (and as which job), with Retry-After."""
    headers = {"Retry-After": str(exc.retry_after)}
    if not wants_json(request):
        return Response(exc.message, status_code=503, media_type=MediaType.TEXT, headers=headers)
    error: dict[str, Any] = {"message": exc.message, "type": exc.kind}
    if exc.accepted is not None:
        error["accepted"] = exc.accepted
    if exc.job_id is not None:
        error["id"] = exc.job_id
    return Response({"error": error}, status_code=503, media_type=MediaType.JSON, headers=headers)


def on_form_errors(request: Request[Any, Any, Any], exc: FormErrors) -> Response[Any]:
    return errors_response(exc.errors, request)


# msgspec's complaints about the body as a whole name the field in backticks; the name is the
# client's own (unknown fields), so it may be empty or hold backticks: it runs to the last one.
FIELD_RE = re.compile(r"field `(.*)`$|at `\$\.([A-Za-z0-9_]+)", re.DOTALL)


def _field_of(key: Any, message: str) -> str:
    """The field a validation message is about; `body` when it is about the body as a whole
    (litestar's `data`, a name the client never sees)."""
    if key not in (None, "data"):
        return str(key)
    found = FIELD_RE.search(message)
    if found is None:
        return "body"
    return found.group(1) if found.group(1) is not None else found.group(2)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body or parameter that does not fit its schema: the 400 names the field."""
    errors: dict[str, list[str]] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        message = str(item.get("message", exc.detail)) if isinstance(item, dict) else str(item)
        key = item.get("key") if isinstance(item, dict) else None
        if key == "data" and message == "'data'":  # litestar's KeyError: no body at all
            message = "A JSON body is required"
        errors.setdefault(_field_of(key, message), []).append(message)
    return errors_response(errors or {"body": [exc.detail]}, request)


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 400 and not isinstance(exc, ValidationException):
        return errors_response({"body": [exc.detail]}, request)
    kind = type(exc).__name__.removesuffix("Exception") or "Error"
    response = error_response(request, exc.status_code, exc.detail, kind)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def on_bad_body(request: Request[Any, Any, Any], exc: SerializationException) -> Response[Any]:
    """A body that does not even parse."""
    return errors_response({"body": [str(exc)]}, request)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a detail to the client: the traceback goes to the log under a fresh id, the client
    gets that id to quote (the exception's text may name paths, hosts or other users' data)."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "unhandled_error",
        path=request.url.path,
        method=request.method,
        error_id=error_id,
        exc_info=exc,
    )
    message = f"internal error, id {error_id}; see the gateway log"
    return error_response(request, 500, message, "InternalServerError")


def on_blob_gone(request: Request[Any, Any, Any], exc: ObjectNotFoundError) -> Response[Any]:
    """A file the read model names is no longer in the Object Store (deleted with its job)."""
    return error_response(request, 404, "The file is gone (its job was deleted?)", "NotFound")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ObjectNotFoundError: on_blob_gone,
    GatewayError: on_gateway_error,
    FormErrors: on_form_errors,
    ValidationException: on_validation,
    HTTPException: on_http,
    SerializationException: on_bad_body,
    Exception: on_unexpected,
}
