"""The gateway's resources, built by the lifespan and injected into every controller."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_gateway.bus import Bus
from digits_gateway.identity import Accounts
from digits_gateway.readiness import Readiness
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub
from digits_gateway.readmodel.runner import Projection
from digits_gateway.readmodel.telemetry import TelemetryRelay
from digits_gateway.settings import Settings
from digits_gateway.uploads import Uploads
from digits_proto.runtime import Metrics


@dataclass
class Gateway:
    """NATS, the read model, its projection and live hub, the command bus, readiness."""

    settings: Settings
    nc: Client
    js: JetStreamContext
    db: ReadModel
    hub: Hub
    projection: Projection
    bus: Bus
    readiness: Readiness
    metrics: Metrics
    telemetry: TelemetryRelay | None = None  # live device samples (`gpu` SSE events)
    accounts: Accounts | None = None  # the users context (sign-in, tokens, accounts)
    uploads: Uploads | None = None  # chunked uploads (/api/v1/uploads)
