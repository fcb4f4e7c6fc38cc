"""Composition root: the Litestar app, its lifespan (NATS, DuckDB, projection) and the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import structlog
import uvicorn
from litestar import Litestar, MediaType, Request, Response
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from digits_gateway import access, security, ui, views
from digits_gateway.bus import Bus
from digits_gateway.controllers import (
    accounts,
    api,
    audit,
    browse,
    compare,
    datasets,
    events,
    home,
    jobs,
    models,
    pretrained,
    session,
    system,
    uploads,
)
from digits_gateway.controllers import catalogue as catalogue_routes
from digits_gateway.controllers import cluster as cluster_routes
from digits_gateway.controllers import inference as inference_routes
from digits_gateway.controllers._common import provide_gateway
from digits_gateway.controllers.event_feed import list_events
from digits_gateway.controllers.explore import explore, record_image
from digits_gateway.controllers.lr_preview import visualize_lr
from digits_gateway.controllers.networks import customize, visualize_network
from digits_gateway.controllers.resize_example import resize_example
from digits_gateway.deps import Gateway
from digits_gateway.errors import EXCEPTION_HANDLERS
from digits_gateway.identity import Accounts, AccountStore
from digits_gateway.identity import middleware as identity_middleware
from digits_gateway.pages._assets import import_map
from digits_gateway.params import GatewayRequest
from digits_gateway.readiness import Readiness
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub
from digits_gateway.readmodel.runner import Projection
from digits_gateway.readmodel.telemetry import TelemetryRelay
from digits_gateway.settings import Settings
from digits_proto import subjects
from digits_proto.runtime import (
    CREDS_ENV,
    Metrics,
    RequestIdMiddleware,
    connect,
    credentials_for,
    ensure_streams,
    return_request_id,
)

log = structlog.get_logger(__name__)

UNGATED = ("/health", "/ready", "/api/v1/status", "/metrics")


def _lifespan(settings: Settings) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        metrics = Metrics("digits_gateway")
        nc = await connect(settings.nats_url, subjects.SERVICE_GATEWAY)
        js = nc.jetstream()
        await ensure_streams(js)
        db = ReadModel(settings.readmodel_path, settings.duckdb_memory)
        hub = Hub()
        projection = Projection(db, js, hub, metrics, settings.fetch_batch)
        readiness = Readiness(
            nc, projection.caught_up, interval=settings.ready_interval, data_dir=settings.data_dir
        )
        telemetry = TelemetryRelay(nc, hub, db)
        users = Accounts(AccountStore(js), projection, settings)
        bus = Bus(
            nc, projection, metrics, settings.command_timeout, settings.read_your_writes_timeout
        )
        app.state.gateway = Gateway(
            settings=settings,
            nc=nc,
            js=js,
            db=db,
            hub=hub,
            projection=projection,
            bus=bus,
            readiness=readiness,
            metrics=metrics,
            telemetry=telemetry,
            accounts=users,
        )
        await users.ensure_admin()  # before the projection starts: it is there at first view
        await projection.start()
        await telemetry.start()
        watcher = asyncio.create_task(readiness.run(), name="readiness")
        try:
            yield
        finally:
            hub.close()
            await telemetry.stop()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await projection.stop()
            with contextlib.suppress(Exception):
                await nc.drain()
            db.close()
            log.info("gateway_stopped")

    return lifespan


async def _gate(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Until every service answers and the projection runs, only /health (and /metrics) work."""
    if request.url.path in UNGATED:
        return None
    gw: Gateway | None = request.app.state.get("gateway")
    if gw is not None and gw.readiness.ready:
        return None
    waiting = ", ".join(gw.readiness.waiting_for()) if gw is not None else "NATS"
    return Response(
        {
            "error": {
                "message": f"DIGITS is starting: waiting for {waiting}",
                "type": "ServiceUnavailable",
            }
        },
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": "2"},
    )


def create_app(settings: Settings) -> Litestar:
    """The gateway's ASGI app: DIGITS's routes, /api/v1, SSE, pages and static files."""
    web = ui.web_dir(settings)
    handlers: list[Any] = [
        system.health,
        system.ready,
        system.status_json,
        audit.audit_json,
        audit.audit_page,
        system.metrics,
        session.login,
        session.logout,
        home.index_json,
        home.completed_jobs_json,
        jobs.job_status,
        jobs.JobController,
        browse.job_lists,
        browse.autocomplete_path,
        browse.job_file,
        datasets.DatasetController,
        models.ModelController,
        pretrained.PretrainedController,
        pretrained.to_pretrained,
        inference_routes.download,
        inference_routes.classify_many,
        inference_routes.classify_many_run,
        inference_routes.thumbnail,
        visualize_lr,
        customize,
        visualize_network,
        resize_example,
        explore,
        record_image,
        events.all_events,
        events.job_events,
        list_events,
        catalogue_routes.catalogue_json,
        cluster_routes.cluster_json,
        cluster_routes.queue_json,
        cluster_routes.job_hardware,
        cluster_routes.job_hardware_history,
        cluster_routes.cluster_history,
        compare.compare_json,
        compare.compare_page,
        api.DatasetApi,
        api.ModelApi,
        api.JobApi,
        accounts.SessionApi,
        accounts.TokenApi,
        accounts.UserApi,
        uploads.UploadApi,
    ]
    handlers += [*ui.pages().page_routes, cluster_routes.cluster_page]
    handlers.append(catalogue_routes.catalogue_page)
    if (web / "static").is_dir():
        handlers.append(
            create_static_files_router(
                path="/static", directories=[web / "static"], include_in_schema=False
            )
        )
    templates = (
        TemplateConfig(directory=web / "templates", engine=JinjaTemplateEngine)
        if (web / "templates").is_dir()
        else None
    )
    return Litestar(
        handlers,
        lifespan=[_lifespan(settings), uploads.lifespan(settings)],
        dependencies={"gw": Provide(provide_gateway, sync_to_thread=False)},
        exception_handlers={**EXCEPTION_HANDLERS, access.LoginRequired: access.on_login_required},
        before_request=_gate,
        guards=[access.require_access],
        # After the authentication middleware: they read the principal it sets.
        middleware=[
            RequestIdMiddleware,  # first: what follows (and its log lines) is in the request's chain
            *identity_middleware(settings),
            *security.middleware(settings),
        ],
        allowed_hosts=security.allowed_hosts(settings),
        before_send=[security.headers_hook(import_map()), return_request_id],
        request_max_body_size=settings.max_upload_bytes,
        request_class=GatewayRequest,
        template_config=templates,
        # The document only (JSON at /schema, YAML beside it): the viewer pages load their scripts
        # from a CDN, which the Content-Security-Policy refuses, so they would be blank.
        openapi_config=OpenAPIConfig(
            title="DIGITS gateway",
            version=views.VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        logging_config=None,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn, ending SSE streams first: it waits for open connections before the lifespan."""

    def __init__(self, config: uvicorn.Config, app: Litestar):
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        gw: Gateway | None = self.app.state.get("gateway")
        if gw is not None:
            gw.hub.close()
        await super().shutdown(sockets)


def server(settings: Settings, app: Litestar | None = None) -> GatewayServer:
    """A uvicorn server (httptools, 2 s graceful shutdown) for the app."""
    app = app or create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
        log_config=None,
        access_log=False,
    )
    return GatewayServer(config, app)


async def main(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; non-zero if the app never started (e.g. no NATS)."""
    await _bus_as_wanted(settings)
    gateway = server(settings)
    await gateway.serve()
    return 0 if gateway.started else 1


async def _bus_as_wanted(settings: Settings) -> None:
    """Reconcile the streams before uvicorn starts: NeedsOperator (a SystemExit) raised inside
    the lifespan would come out as uvicorn's traceback and exit 3; here it ends the gateway with
    78 (not restarted) and its one `bus_needs_operator` line. Any other failure (no NATS yet) is
    left to the lifespan, as before."""
    # An explicit path: the lifespan's connection still finds DIGITS_NATS_CREDS set.
    creds = credentials_for(subjects.SERVICE_GATEWAY, os.environ.get(CREDS_ENV, ""))
    try:
        nc = await connect(settings.nats_url, subjects.SERVICE_GATEWAY, creds)
    except Exception:  # noqa: BLE001 - the lifespan connects again and says why it cannot
        return
    try:
        await ensure_streams(nc.jetstream())
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
