"""Browser-side defences: CSRF, Origin/Referer, allowed hosts, security headers + CSP, rate limits."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.exceptions import PermissionDeniedException, TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from digits_gateway.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
# Sign-in routes get their own, tighter limit per address (password guessing).
SIGN_IN = frozenset({"/login", "/api/v1/session"})
# Long-lived or cheap: an SSE stream is one request for hours, static files come by the dozen.
NOT_LIMITED = ["^/static/", "^/events$", "^/jobs/[^/]+/events$", "^/health$", "^/metrics$"]


def csrf_secret(settings: Settings) -> str:
    """The CSRF signing secret: the setting, else one generated at first start and kept (0600)
    beside the read model, so browsers' tokens survive a restart."""
    if settings.csrf_secret:
        return settings.csrf_secret
    path = Path(settings.data_dir) / "gateway" / "csrf.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path.read_text().strip()


class SessionCsrfMiddleware:
    """Litestar's CSRF check for cookie-authenticated requests only.

    A bearer token is not sent by the browser on its own, so a bearer request cannot be forged;
    an anonymous one is answered by the access guard (401). Safe methods always pass through
    Litestar's middleware, which sets the `csrftoken` cookie and the token the templates embed.
    Runs after authentication (it reads `scope["auth"]`).
    """

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        self.app = app
        self.csrf = CSRFMiddleware(app, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in SAFE_METHODS or scope.get("auth") == "session":
            await self.csrf(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _origin_of(value: str) -> str | None:
    """`host[:port]` of an Origin or Referer value; None for `null` or garbage."""
    parts = urlsplit(value)
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


class OriginCheckMiddleware:
    """Refuse a state change whose Origin (or, without one, Referer) is another site's.

    Browsers send Origin on every cross-origin POST, so a form on another site fails here even
    when the victim's cookie rides along; scripts send neither header and pass.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers.from_scope(scope)
            host = (headers.get("host") or "").lower()
            for name in ("origin", "referer"):
                value = headers.get(name)
                if value is None:
                    continue
                if _origin_of(value) != host:
                    raise PermissionDeniedException(
                        f"Cross-site request refused: {name} {value!r} is not this site ({host})"
                    )
                break
        await self.app(scope, receive, send)


def allowed_hosts(settings: Settings) -> AllowedHostsConfig:
    """Host headers the gateway answers (DNS rebinding defence): DIGITS_ALLOWED_HOSTS, else the
    loopback names and the bind address; each with and without the port."""
    names = [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
    if not names:
        bind = f"[{settings.host}]" if ":" in settings.host else settings.host
        names = [*LOOPBACK, *([bind] if bind not in ("0.0.0.0", "[::]") else [])]
    hosts: list[str] = []
    for name in names:
        hosts.append(name)
        if settings.port > 0 and not name.rsplit("]", 1)[-1].count(":") and name != "*":
            hosts.append(f"{name}:{settings.port}")
    return AllowedHostsConfig(allowed_hosts=hosts)


def csrf_config(settings: Settings) -> CSRFConfig:
    """Litestar's double-submit token: cookie `csrftoken`, header `x-csrftoken`, form field
    `_csrf_token`; the cookie is readable by our JS (it holds no authority on its own)."""
    return CSRFConfig(
        secret=csrf_secret(settings),
        cookie_secure=settings.secure_cookies,
        cookie_samesite="lax",
    )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _per_user(request: Any) -> str:
    """Signed in: the account (its limit follows it across addresses); else the address."""
    user = request.scope.get("user")
    return f"user:{user.username}" if user is not None else f"addr:{_client(request.scope)}"


def _per_address(request: Any) -> str:
    return f"addr:{_client(request.scope)}"


async def _is_sign_in(request: Any) -> bool:
    return request.method == "POST" and request.url.path in SIGN_IN


class RetryAfterRateLimit(RateLimitMiddleware):
    """Litestar's limiter, whose 429 also says when to come back (`Retry-After`, seconds)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as e:
            if "Retry-After" in (e.headers or {}):
                raise  # an inner limiter's answer
            reset = (e.headers or {}).get(self.config.rate_limit_reset_header_key, "60")
            e.headers = {**(e.headers or {}), "Retry-After": str(max(1, int(reset)))}
            e.detail = (
                f"Too many requests: the limit is {self.max_requests} per {self.unit}; "
                f"retry in {e.headers['Retry-After']} s"
            )
            raise


def rate_limits(settings: Settings) -> list[DefineMiddleware]:
    """Per account (or address when anonymous) on every route but SSE/static/health, and a
    tighter per-address limit on the sign-in POSTs."""
    everything = RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_per_minute),
        identifier_for_request=_per_user,
        exclude=NOT_LIMITED,
        middleware_class=RetryAfterRateLimit,
        store="rate_limit_user",
    )
    sign_in = RateLimitConfig(
        rate_limit=("minute", settings.sign_in_rate_limit_per_minute),
        identifier_for_request=_per_address,
        check_throttle_handler=_is_sign_in,
        middleware_class=RetryAfterRateLimit,
        store="rate_limit_sign_in",
    )
    return [sign_in.middleware, everything.middleware]


def middleware(settings: Settings) -> list[Any]:
    """The defences in order; they come after the authentication middleware."""
    return [
        *rate_limits(settings),
        OriginCheckMiddleware,
        DefineMiddleware(SessionCsrfMiddleware, config=csrf_config(settings)),
    ]


def script_hash(text: str) -> str:
    """A CSP source allowing exactly this inline script."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def importmap_text(importmap: dict[str, Any]) -> str:
    """The import map exactly as base.html renders it (`{{ importmap | tojson }}`)."""
    return jinja2.Environment(autoescape=True).from_string("{{ m | tojson }}").render(m=importmap)


def content_security_policy(importmap: dict[str, Any]) -> str:
    """Own scripts and styles only; the one inline script is the import map, allowed by hash."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {script_hash(importmap_text(importmap))}",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def headers_hook(importmap: dict[str, Any]) -> Any:
    """A before_send hook adding the security headers to every response (404s included)."""
    fixed = {
        "content-security-policy": content_security_policy(importmap),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            for key, value in fixed.items():
                if key not in headers:
                    headers[key] = value

    return add_headers
