"""An endpoint decodes into the command type its handler declares: a command sent to another
command's endpoint is a 400 naming the type before any handler runs."""

from __future__ import annotations

import functools

from nats.aio.client import Client

from digits_proto import codec
from digits_proto.datasets import AbortDataset, DeleteDataset
from digits_proto.replies import Accepted
from digits_proto.runtime import command_type, request, serve_endpoints

SUBJECT = "digits.cmd.t.typed"


async def delete(calls: list[str], command: DeleteDataset) -> Accepted:
    calls.append(command.dataset_id)
    return Accepted(id=command.dataset_id)


class Owner:
    async def delete(self, command: DeleteDataset, retention_days: float = 7.0) -> Accepted:
        return Accepted(id=command.dataset_id)


def test_the_declared_type_is_read_through_partials_and_methods() -> None:
    """The first parameter left unbound names the command, whatever binds the others."""
    assert command_type(functools.partial(delete, [])) is DeleteDataset
    assert command_type(Owner().delete) is DeleteDataset
    assert command_type(functools.partial(Owner().delete, retention_days=1.0)) is DeleteDataset


async def test_a_command_for_another_endpoint_is_a_400_before_the_handler(nc: Client) -> None:
    """AbortDataset on the delete endpoint: refused with 400, the handler never called."""
    calls: list[str] = []
    handler = functools.partial(delete, calls)
    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: handler})
    _, rejected = await request(nc, SUBJECT, AbortDataset(dataset_id="x"))
    assert rejected is not None and rejected.code == 400
    assert "AbortDataset" in rejected.message
    assert calls == []
    body, rejected = await request(nc, SUBJECT, DeleteDataset(dataset_id="y"))
    assert rejected is None and codec.command_reply.decode(body) == Accepted(id="y")
    assert calls == ["y"]


def service_handlers() -> dict[str, object]:
    """Every command handler the four bus services register, by subject, its dependencies
    bound as the composition roots bind them."""
    from digits_datasets.app import COMMAND_HANDLERS
    from digits_gpu_broker.app import ENDPOINTS, node_endpoints
    from digits_inference import handlers as inference
    from digits_inference import jobs
    from digits_trainer.handlers import command_handlers

    inference_table = {
        "inference.classify_one": inference.classify_one,
        "inference.export": inference.export_model,
        "inference.classify_many": jobs.classify_many,
    }
    needs_deps = {**COMMAND_HANDLERS, **ENDPOINTS, **node_endpoints("n1"), **inference_table}
    return {
        **{subject: functools.partial(fn, None) for subject, fn in needs_deps.items()},
        **command_handlers(None, None, None),  # type: ignore[arg-type]
    }


def test_every_service_handler_declares_its_command_type() -> None:
    """One shape in all services: each handler takes its own typed command (a msgspec Struct),
    so its endpoint decodes exactly that type (no `object`/`Any` + isinstance)."""
    import msgspec

    untyped = {
        subject: command_type(handler)
        for subject, handler in service_handlers().items()
        if not (
            isinstance(command_type(handler), type)
            and issubclass(command_type(handler), msgspec.Struct)
        )
    }
    assert untyped == {}
