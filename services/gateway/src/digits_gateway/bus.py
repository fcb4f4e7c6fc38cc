"""Commands over nats.micro: send, map refusals to gateway errors, wait for the read model."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError

from digits_gateway.errors import CommandRejected, Unavailable
from digits_gateway.readmodel.runner import Projection
from digits_proto import codec
from digits_proto.inference import Classified
from digits_proto.replies import Accepted, Rejected
from digits_proto.runtime import Metrics, request

log = structlog.get_logger(__name__)

# A service's 5xx the client may act on as it is: retry later (503), free space (507).
PASSED_ON = (503, 507)


class Bus:
    """The gateway's side of the command path (architecture.md, "Command path")."""

    def __init__(
        self,
        nc: Client,
        projection: Projection,
        metrics: Metrics,
        timeout: float,
        ryw_timeout: float,
    ):
        self.nc = nc
        self.projection = projection
        self.metrics = metrics
        self.timeout = timeout
        self.ryw_timeout = ryw_timeout

    async def _request(
        self, subject: str, command: msgspec.Struct, timeout: float | None = None
    ) -> bytes:
        try:
            body, rejected = await request(
                self.nc, subject, command, timeout=timeout or self.timeout
            )
        except (NatsError, TimeoutError) as e:
            self.metrics.inc("commands", subject=subject, outcome="unavailable")
            log.warning("command_unanswered", subject=subject, error=type(e).__name__)
            raise Unavailable(
                f"Not accepted: the service behind {subject} did not answer; safe to retry",
                accepted=False,
                retry_after=2,
            ) from e
        if rejected is not None:
            self.metrics.inc("commands", subject=subject, outcome=str(rejected.code))
            log.info(
                "command_rejected",
                subject=subject,
                code=rejected.code,
                field=rejected.field,
                message=rejected.message,
            )
            raise self._refusal(rejected)
        self.metrics.inc("commands", subject=subject, outcome="ok")
        return body

    @staticmethod
    def _refusal(rejected: Rejected) -> CommandRejected:
        """The service's refusal as the gateway's answer; a service that failed (its 500: a
        full disk, a bug, its error id in the message) is a 502 naming the service's reason,
        since the gateway itself did not fail."""
        code = rejected.code
        if code >= 500 and code not in PASSED_ON:
            code = 502
        return CommandRejected(code, rejected.message, rejected.field)

    async def send(
        self, subject: str, command: msgspec.Struct, timeout: float | None = None
    ) -> Accepted:
        """Send a command and wait until the read model shows its effect (read-your-writes);
        `timeout` overrides the usual answer time (a slow command, like a model upload)."""
        reply = codec.command_reply.decode(await self._request(subject, command, timeout))
        if isinstance(reply, Rejected):
            raise self._refusal(reply)
        if not await self.projection.wait_for(reply.stream, reply.seq, self.ryw_timeout):
            log.warning("read_model_lagging", stream=reply.stream, seq=reply.seq)
            raise Unavailable(
                f"Accepted as {reply.id}, not yet visible: retry with the same Idempotency-Key"
                f" or GET the job",
                accepted=True,
                job_id=reply.id,
            )
        return reply

    async def ask(self, subject: str, command: msgspec.Struct, decoder: Any) -> Any:
        """Send a query-like command; its decoded reply (no event, nothing to wait for)."""
        reply = decoder.decode(await self._request(subject, command))
        if isinstance(reply, Rejected):
            raise self._refusal(reply)
        return reply

    async def classify(self, subject: str, command: msgspec.Struct) -> Classified:
        """Ask inference for predictions (no event, nothing to wait for)."""
        reply = codec.classify_reply.decode(await self._request(subject, command))
        if isinstance(reply, Rejected):
            raise self._refusal(reply)
        return reply
