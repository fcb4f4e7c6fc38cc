"""nats.micro endpoints: decode the command, call the handler, turn domain errors into replies."""

from __future__ import annotations

import functools
import inspect
import re
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from digits_proto import codec, headers, subjects
from digits_proto.replies import Rejected
from digits_proto.runtime._metrics import Metrics, metrics_for
from digits_proto.runtime._trace import trace_headers, traced

log = structlog.get_logger(__name__)

Handler = Callable[[Any], Awaitable[msgspec.Struct]]

# What a command's `*_id` may hold: one subject token. Ids become subjects (`digits.evt.
# datasets.<id>`), so '*', '>' or '.' would read or watch other aggregates; no id has them.
ID_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


class DomainError(Exception):
    """A command refused for a reason the caller can act on; `code` is an HTTP status."""

    code = 400

    def __init__(self, message: str, field: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The job (or other thing) named does not exist."""

    code = 404


class Conflict(DomainError):
    """The thing exists but its state forbids the command."""

    code = 409


class Forbidden(DomainError):
    """The command is not allowed (DIGITS answers 403 here)."""

    code = 403


def internal_error(service: str, event: str, **context: Any) -> str:
    """Log the exception being handled (traceback included) with a fresh id; returns the
    message the caller gets instead: never the exception's text, which may name paths, hosts
    or other users' data."""
    error_id = uuid.uuid4().hex[:12]
    log.exception(event, error_id=error_id, **context)
    return f"internal error, id {error_id}; see the {service} log"


async def serve_endpoints(
    nc: Client,
    service_name: str,
    decoder: msgspec.json.Decoder[Any],
    handlers: Mapping[str, Handler],
    version: str = "0.1.0",
) -> Service:
    """Register one micro endpoint per subject in `handlers` (queue group `q`).

    Each endpoint decodes into the command type its handler declares (`command_type`), so a
    command sent to another command's endpoint is a 400 before any handler runs. `decoder` is
    used only for a handler that declares no type."""
    service = await add_service(
        nc, name=service_name, version=version, queue_group=subjects.QUEUE_GROUP
    )
    for subject, handler in handlers.items():
        declared = command_type(handler)
        typed = decoder if declared is None else msgspec.json.Decoder(declared)
        await service.add_endpoint(
            name=subject.rsplit(".", 1)[-1],
            subject=subject,
            handler=traced(_wrap(typed, handler, subject, service_name, metrics_for(nc))),
        )
    # The subscriptions must reach the server before anyone is told we are ready.
    await nc.flush()
    return service


def command_type(handler: Handler) -> Any:
    """The type a handler declares for the command it is called with: the annotation of its
    first positional parameter left unbound (after `functools.partial` and `self`); None if it
    declares none, `Any` or `object`."""
    func: Any = handler
    while isinstance(func, functools.partial):
        func = func.func
    hints = typing.get_type_hints(func)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in inspect.signature(handler).parameters.values() if p.kind in positional]
    declared = hints.get(params[0].name) if params else None
    return None if declared in (None, Any, object) else declared


def _wrap(
    decoder: msgspec.json.Decoder[Any],
    handler: Handler,
    subject: str,
    service: str,
    metrics: Metrics | None = None,
):
    name = subject.rsplit(".", 1)[-1]

    async def handle(req: Request) -> str:
        """Answer the request; returns the outcome ("ok" or the error code) for the metrics."""
        try:
            command = decoder.decode(req.data)
        except msgspec.DecodeError as e:  # malformed JSON, or a field of the wrong type
            await _reject(req, Rejected(code=400, message=str(e)))
            return "400"
        if (bad := _bad_id(command)) is not None:
            await _reject(req, Rejected(code=404, message=f"No such id: {bad[1]!r}", field=bad[0]))
            return "404"
        try:
            reply = await handler(command)
        except DomainError as e:
            await _reject(req, Rejected(code=e.code, message=e.message, field=e.field))
            return str(e.code)
        except Exception:  # noqa: BLE001 - the detail goes to the log, never to the caller
            await _reject(
                req,
                Rejected(
                    code=500, message=internal_error(service, "command_failed", subject=subject)
                ),
            )
            return "500"
        await req.respond(codec.encode(reply))
        return "ok"

    async def endpoint(req: Request) -> None:
        start = time.perf_counter()
        outcome = await handle(req)
        if metrics is not None:
            elapsed = time.perf_counter() - start
            metrics.observe("command_seconds", elapsed, endpoint=name, outcome=outcome)

    return endpoint


def _bad_id(command: object) -> tuple[str, str] | None:
    """(field, value) of the first `*_id` field that is not one subject token; empty is left
    to the handler (an optional id)."""
    for name in getattr(command, "__struct_fields__", ()):
        value = getattr(command, name)
        wrong = isinstance(value, str) and value and not ID_TOKEN.fullmatch(value)
        if name.endswith("_id") and wrong:
            return name, value
    return None


async def _reject(req: Request, rejected: Rejected) -> None:
    await req.respond_error(str(rejected.code), rejected.message, data=codec.encode(rejected))


async def request(
    nc: Client, subject: str, command: msgspec.Struct, timeout: float = 10.0
) -> tuple[bytes, Rejected | None]:
    """Send a command; returns the reply body, or the Rejected decoded from a service error."""
    # The command carries the chain it belongs to and its own id (its effects name it as cause).
    hdrs = trace_headers(command=True)
    msg = await nc.request(subject, codec.encode(command), timeout=timeout, headers=hdrs)
    if msg.headers and headers.SERVICE_ERROR_CODE in msg.headers:
        try:
            rejected = msgspec.json.decode(msg.data, type=Rejected)
        except msgspec.DecodeError:
            rejected = Rejected(
                code=int(msg.headers[headers.SERVICE_ERROR_CODE] or 500),
                message=msg.headers.get(headers.SERVICE_ERROR, ""),
            )
        return msg.data, rejected
    return msg.data, None
