"""Each service's small Litestar app, served by uvicorn inside the service's own event loop.

Every app answers, publicly on its bound address (127.0.0.1 unless `DIGITS_<SERVICE>_HOST`):
- `GET /health` — alive: 200 while the process runs;
- `GET /ready` — 200 when consumers run, every stream has a leader with a quorum and the data
  disk is above its floor, else 503 with `waiting_for` (the reasons: `ServiceHost.not_ready`);
- `GET /metrics` — Prometheus text from the service's `Metrics` registry;
- `GET /schema` — the OpenAPI document (JSON; also at `/schema/openapi.json`).

A service adds its own routes through its `ServiceHost` (see `_service.py`): handlers reach the
service's objects as Litestar dependencies, and operations take `guards=[ops_guard]`. Handlers run
on the service's loop, so they may use its NATS connection directly. A `DomainError` raised in a
handler becomes its status code with `{"detail", "field"}`; anything unexpected becomes a 500
naming an error id that is in the log (never the exception's text). Every request is handled in
a chain named by the caller's sane `X-Request-Id` (else a new one), returned as `X-Request-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import nats.errors
import uvicorn
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ControllerRouterHandler
from prometheus_client import CONTENT_TYPE_LATEST

from digits_proto.runtime._metrics import Metrics
from digits_proto.runtime._micro import DomainError, internal_error
from digits_proto.runtime._opstoken import OPS_SCHEME
from digits_proto.runtime._requestid import RequestIdMiddleware, return_request_id

SHUTDOWN_SECONDS = 2.0
# NATS unreachable, restarting or slow: a 503 the caller may retry, not a 500.
NATS_DOWN: tuple[type[Exception], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
)


class Alive(msgspec.Struct, frozen=True, kw_only=True):
    """`/health`: the process runs."""

    service: str
    alive: bool = True


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """`/ready`: whether the service takes work, and what it waits for if not."""

    service: str
    ready: bool
    waiting_for: list[str]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An error answer (the shape Litestar's own 4xx answers have, plus the field)."""

    status_code: int
    detail: str
    field: str | None = None


@get("/health", sync_to_thread=False, tags=["service"])
def health(state: State) -> Alive:
    """Alive: 200 whenever the process answers."""
    return Alive(service=state.service)


@get(
    "/ready",
    tags=["service"],
    responses={503: ResponseSpec(Readiness, description="Not ready: `waiting_for` says why")},
)
async def ready(state: State) -> Response[Readiness]:
    """Ready to take work: 200, else 503 naming what it waits for (the launcher polls this)."""
    reasons: list[str] = await state.readiness()
    body = Readiness(service=state.service, ready=not reasons, waiting_for=reasons)
    return Response(body, status_code=503 if reasons else 200)


@get("/metrics", sync_to_thread=False, tags=["service"], media_type=CONTENT_TYPE_LATEST)
def prometheus(state: State) -> Response[bytes]:
    """Prometheus exposition text."""
    registry: Metrics = state.metrics
    return Response(registry.render().encode(), media_type=CONTENT_TYPE_LATEST)


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    return Response(
        Problem(status_code=exc.code, detail=exc.message, field=exc.field),
        status_code=exc.code,
        media_type=MediaType.JSON,
    )


def _nats_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # NATS down or restarting: the caller may retry (the service reconnects by itself).
    internal_error(request.app.state.service, "route_nats_unavailable", path=request.url.path)
    return Response(
        Problem(status_code=503, detail=f"NATS unavailable ({type(exc).__name__}); retry soon"),
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": "2"},
    )


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    service = request.app.state.service
    # Called while handling `exc`: internal_error logs it with its traceback and an id.
    message = internal_error(service, "route_failed", path=request.url.path)
    return Response(
        Problem(status_code=500, detail=message),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


def routes_router(
    handlers: Sequence[ControllerRouterHandler], dependencies: Mapping[str, Any]
) -> Router:
    """A router for a service's own handlers; each dependency is a value handed as is."""
    return Router(
        path="/",
        route_handlers=list(handlers),
        dependencies={name: _constant(value) for name, value in dependencies.items()},
    )


def _constant(value: Any) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, sync_to_thread=False, use_cache=True)


def build_app(
    service: str,
    metrics: Metrics,
    readiness: Callable[[], Awaitable[list[str]]],
    ops_token: str,
    routes: Sequence[Router] = (),
) -> Litestar:
    """The app: health, readiness, metrics and schema, plus the service's routers."""
    return Litestar(
        route_handlers=[health, ready, prometheus, *routes],
        state=State(
            {
                "service": service,
                "metrics": metrics,
                "readiness": readiness,
                "ops_token": ops_token,
            }
        ),
        openapi_config=OpenAPIConfig(
            title=service,
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
            components=Components(
                security_schemes={
                    OPS_SCHEME: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="The operator token: <data_dir>/ops-token or DIGITS_OPS_TOKEN",
                    )
                }
            ),
        ),
        exception_handlers={
            DomainError: _domain_error,
            **dict.fromkeys(NATS_DOWN, _nats_unavailable),
            HTTP_500_INTERNAL_SERVER_ERROR: _internal_error,
        },
        # An operator call (POST /drain, DELETE /cache) starts a chain from the caller's
        # X-Request-Id, as a gateway request does: what it sends and logs names it.
        middleware=[RequestIdMiddleware],
        before_send=[return_request_id],
        logging_config=None,  # structlog owns logging; errors are logged by _internal_error
        debug=False,
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the service's lifecycle owns SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.up = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.up.set()


class HttpServer:
    """The app on uvicorn, as a task of the running loop."""

    def __init__(self, app: Litestar, host: str, port: int):
        self.app = app
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(SHUTDOWN_SECONDS),
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve; returns once the socket listens (raises if it cannot bind)."""
        self._task = asyncio.create_task(self._server.serve(), name="http")
        up = asyncio.create_task(self._server.up.wait())
        await asyncio.wait({self._task, up}, return_when=asyncio.FIRST_COMPLETED)
        if not self._server.up.is_set():
            up.cancel()
            try:
                self._task.result()  # uvicorn exits (SystemExit) when the port is taken
            except SystemExit as e:
                raise OSError(f"HTTP server could not listen on {self._where}") from e
            raise OSError(f"HTTP server stopped at start on {self._where}")

    @property
    def _where(self) -> str:
        return f"{self._server.config.host}:{self._server.config.port}"

    @property
    def port(self) -> int | None:
        """The port it listens on (the one chosen when 0 was asked)."""
        servers = getattr(self._server, "servers", None)
        if not self._server.started or not servers or not servers[0].sockets:
            return None
        return int(servers[0].sockets[0].getsockname()[1])

    def register(self, router: Router) -> None:
        """Add routes to the running app."""
        self.app.register(router)

    async def stop(self) -> None:
        """Stop listening; open connections get `SHUTDOWN_SECONDS` to finish."""
        if self._task is None:
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait({self._task}, timeout=SHUTDOWN_SECONDS * 2)
        if not done:  # a connection that would not close
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
