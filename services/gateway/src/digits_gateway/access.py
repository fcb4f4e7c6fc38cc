"""Who may call which route: the policy table and the one global guard that applies it.

The gateway answers early and kindly by role; whether a user may change *this* job is decided
by the service that owns it (the principal travels in every command). A route missing from the
table is refused (fail closed), and tests/gateway/test_access_matrix.py fails until it is added.
"""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import quote

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from digits_gateway.errors import Denied, GatewayError, error_response
from digits_gateway.params import strip_json, wants_json
from digits_gateway.readmodel import queries
from digits_proto.base import Principal

log = structlog.get_logger(__name__)


class Access(enum.Enum):
    """What a route asks of the caller."""

    PUBLIC = "anyone, signed in or not"
    SIGNED_IN = "any account (viewers included): reads, and one's own session and tokens"
    CREATE = "a user or admin: new jobs, classify, run network code"
    OWNER = "a user on what they own, an admin on anything (the owning service decides)"
    ADMIN = "an admin"


P, S, C, OWN, A = Access.PUBLIC, Access.SIGNED_IN, Access.CREATE, Access.OWNER, Access.ADMIN

# path template (Litestar's path_format) → method → access. OPTIONS/HEAD follow GET's rule.
POLICY: dict[str, dict[str, Access]] = {
    # the gateway itself
    "/health": {"GET": P},
    # What is degraded now: the probe, public as /health is; the banner's copy for signed-in
    # pages (its reasons name paths on the server).
    "/ready": {"GET": P},
    "/api/v1/status": {"GET": S},
    # /metrics stays open on the bound address (127.0.0.1 by default) for a local Prometheus.
    "/metrics": {"GET": P},
    "/static/{file_path}": {"GET": P},
    "/login": {"GET": P, "POST": P},
    "/logout": {"POST": P},  # a stale session may still sign out
    "/schema": {"GET": S},
    "/schema/{path}": {"GET": S},
    "/schema/openapi.json": {"GET": S},
    "/schema/openapi.yaml": {"GET": S},
    "/schema/openapi.yml": {"GET": S},
    # pages and DIGITS's JSON reads
    "/": {"GET": S},
    "/cluster": {"GET": S},
    "/events/catalogue": {"GET": S},  # the bus contract: no job data
    "/index.json": {"GET": S},
    "/completed_jobs.json": {"GET": S},
    "/datasets": {"GET": S},
    "/models": {"GET": S},
    "/autocomplete/path": {"GET": S},
    "/files/{job_id}/{name}": {"GET": S},
    "/events": {"GET": S},
    "/jobs/{job_id}/events": {"GET": S},
    "/jobs/{job_id}/status": {"GET": S},
    "/datasets/{job_id}/status": {"GET": S},
    "/models/{job_id}/status": {"GET": S},
    "/jobs/{job_id}": {"GET": S, "PUT": OWN, "DELETE": OWN},
    "/jobs/{job_id}/abort": {"POST": OWN},
    # datasets
    "/datasets/images/classification/new": {"GET": C},
    "/datasets/images/classification": {"POST": C},
    "/datasets/images/classification.json": {"POST": C},
    "/datasets/images/classification/explore": {"GET": S},
    "/datasets/images/resize-example": {"POST": S},  # a preview of one uploaded image
    "/datasets/summary": {"GET": S},
    "/datasets/{job_id}": {"GET": S, "DELETE": OWN},
    "/datasets/{job_id}/mean.jpg": {"GET": S},
    "/datasets/{job_id}/abort": {"POST": OWN},
    "/datasets/{job_id}/records/{db}/{index}": {"GET": S},
    # models
    "/models/images/classification/new": {"GET": C},
    "/models/images/classification": {"POST": C},
    "/models/images/classification.json": {"POST": C},
    "/models/images/classification/classify_one": {"POST": C},
    "/models/images/classification/classify_one.json": {"POST": C},
    "/models/images/classification/classify_many": {"POST": C},
    "/models/images/classification/classify_many.json": {"POST": C},
    "/models/images/classification/top_n": {"POST": C},
    "/models/images/classification/top_n.json": {"POST": C},
    "/models/images/classification/classify_many/{run_id}": {"GET": S},
    "/models/images/classification/thumbnail": {"GET": S},  # signed links of result pages
    "/models/visualize-lr": {"POST": S},  # arithmetic on the form's numbers
    "/models/customize": {"POST": S},  # returns a network's source text
    "/models/visualize-network": {"POST": C},  # runs network code (sandboxed)
    "/models/compare": {"GET": S},  # several models side by side (read-only)
    "/models/{job_id}": {"GET": S, "DELETE": OWN},
    "/models/{job_id}/log": {"GET": S},
    "/models/{job_id}/abort": {"POST": OWN},
    "/models/{job_id}/to_pretrained": {"POST": OWN},
    "/models/{job_id}/{action}": {"GET": S, "POST": S},  # download (read-only export)
    # pretrained models
    "/pretrained_models/new": {"GET": C, "POST": C},
    "/pretrained_models/new.json": {"POST": C},
    "/pretrained_models/upload_archive": {"POST": C},
    "/pretrained_models/upload_archive.json": {"POST": C},
    "/pretrained_models/{job_id}": {"GET": S, "DELETE": OWN},
    # /api/v1
    "/api/v1/cluster": {"GET": S},
    "/api/v1/events/catalogue": {"GET": S},
    "/api/v1/queue": {"GET": S},
    "/api/v1/devices": {"GET": S},
    "/api/v1/jobs": {"GET": S},
    "/api/v1/events": {"GET": S},  # the stored events (never DIGITS_USERS)
    "/api/v1/jobs/{job_id}": {"PATCH": OWN},
    "/api/v1/jobs/{job_id}/hardware": {"GET": S},
    "/api/v1/jobs/{job_id}/hardware/history": {"GET": S},
    "/api/v1/cluster/history": {"GET": S},
    "/api/v1/datasets": {"GET": S, "POST": C},
    "/api/v1/datasets/{job_id}": {"GET": S, "DELETE": OWN},
    "/api/v1/datasets/{job_id}/abort": {"POST": OWN},
    "/api/v1/models": {"GET": S, "POST": C},
    "/api/v1/models/{job_id}": {"GET": S, "DELETE": OWN},
    "/api/v1/models/{job_id}/abort": {"POST": OWN},
    "/api/v1/models/{job_id}/classify": {"POST": C},
    "/api/v1/models/{job_id}/metrics": {"GET": S},
    "/api/v1/compare": {"GET": S},
    "/api/v1/uploads": {"POST": C},
    "/api/v1/uploads/{upload_id}": {"GET": C, "PATCH": C, "DELETE": C},
    # accounts (the users context)
    "/api/v1/session": {"GET": S, "POST": P, "DELETE": P},
    "/api/v1/tokens": {"GET": S, "POST": S},
    "/api/v1/tokens/{token_id}": {"DELETE": S},
    "/api/v1/users": {"GET": A, "POST": A},
    "/api/v1/users/{username}": {"PATCH": A},
    "/api/v1/users/me/password": {"PUT": S},
    "/account": {"GET": S},
    "/account/password": {"POST": S},
    "/account/tokens": {"POST": S},
    "/account/tokens/{token_id}/revoke": {"POST": S},
    "/admin/users": {"GET": A, "POST": A},
    "/admin/users/{username}": {"POST": A},
    # the audit view
    "/admin/audit": {"GET": A},
    "/api/v1/audit": {"GET": A},
}

ROLE_LEVEL = {Access.CREATE: "may_create", Access.OWNER: "may_create", Access.ADMIN: "is_admin"}


class LoginRequired(GatewayError):
    """No signed-in account: 401 for JSON clients, the login page for browsers."""

    code = 401
    kind = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("Sign in first (a session cookie or an Authorization: Bearer token)")


def rule_for(method: str, path_template: str) -> Access | None:
    """The table's rule; OPTIONS and HEAD are answered as GET is."""
    methods = POLICY.get(path_template, {})
    if method in ("HEAD", "OPTIONS") and "GET" in methods:
        return methods["GET"]
    if method == "OPTIONS":
        return Access.PUBLIC  # a preflight reveals only the allowed methods
    return methods.get(method)


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The authenticated principal the auth middleware put in the scope, if any."""
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def require_access(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """The app's one guard: the route's rule against the caller's role."""
    method = connection.scope.get("method", "GET")
    template = connection.scope.get("path_template", "")
    rule = rule_for(method, template)
    if rule is None:
        log.error("route_without_access_rule", method=method, path_template=template)
        raise Denied(f"{method} {template} has no access rule (refused until it has one)")
    if rule is Access.PUBLIC:
        return
    user = principal(connection)
    if user is None:
        raise LoginRequired()
    needed = ROLE_LEVEL.get(rule)
    if needed is not None and not getattr(user, needed):
        raise Denied(f"Your role ({user.role.value}) may not do this: it needs {rule.value}")
    if rule is Access.OWNER:
        _check_owner(connection, user)


def _check_owner(connection: ASGIConnection[Any, Any, Any, Any], user: Principal) -> None:
    """The early, friendly owner answer; the owning service decides again on the command."""
    job_id = connection.path_params.get("job_id")
    gw = connection.app.state.get("gateway")
    if not isinstance(job_id, str) or gw is None:
        return
    with gw.db.cursor() as cur:
        job = queries.get_job(cur, strip_json(job_id))
    if job is not None and not user.may_change(job.username):
        raise Denied(
            f"This {job.type} belongs to {job.username}: only they or an admin may change it"
        )


def on_login_required(request: Any, exc: LoginRequired) -> Any:
    """Browsers go to the login page and come back; scripts get 401 JSON."""
    if wants_json(request):
        return error_response(request, exc.code, exc.message, exc.kind)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    status = 302 if request.method in ("GET", "HEAD") else 303
    return Redirect(path=f"/login?next={quote(target, safe='/')}", status_code=status)
