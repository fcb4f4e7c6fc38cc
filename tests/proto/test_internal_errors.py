"""A service's unexpected exception reaches the caller as a generic message with an error id;
the detail (traceback) goes to the log under the same id."""

from __future__ import annotations

import re

import pytest
import structlog
from nats.aio.client import Client

from digits_proto import codec
from digits_proto.datasets import DeleteDataset, GetDatasetRecord
from digits_proto.replies import Accepted
from digits_proto.runtime import request, serve_endpoints

SUBJECT = "digits.cmd.t.boom"
SECRET = "/srv/digits/data/credentials/gateway.creds"


async def boom(command: DeleteDataset) -> Accepted:
    raise RuntimeError(f"cannot open {SECRET} for {command.dataset_id}")


async def test_an_unexpected_exception_is_a_500_with_an_id_and_no_detail(nc: Client) -> None:
    """The reply names an id and the service's log; the path in the exception is not in it."""
    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: boom})
    with structlog.testing.capture_logs() as logs:
        _, rejected = await request(nc, SUBJECT, DeleteDataset(dataset_id="x"))
    assert rejected is not None and rejected.code == 500
    found = re.fullmatch(
        r"internal error, id ([0-9a-f]{12}); see the digits-test log", rejected.message
    )
    assert found, rejected.message
    assert SECRET not in rejected.message and "RuntimeError" not in rejected.message
    logged = [e for e in logs if e.get("error_id") == found.group(1)]
    assert len(logged) == 1
    assert logged[0]["event"] == "command_failed" and logged[0]["subject"] == SUBJECT
    assert logged[0]["exc_info"] is True  # the traceback is rendered into that log line


async def test_each_failure_gets_its_own_id(nc: Client) -> None:
    """Two failures, two ids: a user's report points at exactly one log line."""
    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: boom})
    first = (await request(nc, SUBJECT, DeleteDataset(dataset_id="a")))[1]
    second = (await request(nc, SUBJECT, DeleteDataset(dataset_id="b")))[1]
    assert first is not None and second is not None and first.message != second.message


async def test_malformed_json_is_a_400_not_a_framework_500(nc: Client) -> None:
    """Bytes that are not JSON are refused as the caller's mistake, by the same code path."""
    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: boom})
    msg = await nc.request(SUBJECT, b"{not json", timeout=5)
    assert msg.headers is not None and msg.headers["Nats-Service-Error-Code"] == "400"
    assert "malformed" in msg.headers["Nats-Service-Error"].lower()


@pytest.mark.parametrize("bad", ["*", ">", "a.b", "x.>", "a b", "d\n"])
async def test_an_id_that_is_not_one_subject_token_is_a_404_before_the_handler(
    nc: Client, bad: str
) -> None:
    """The bus is a trust boundary: a `*_id` holding a wildcard, a '.' or a space never reaches
    a handler (which would build `digits.evt.datasets.<id>` from it)."""
    called: list[str] = []

    async def record(command: GetDatasetRecord) -> Accepted:
        called.append(command.dataset_id)
        return Accepted(id=command.dataset_id)

    await serve_endpoints(nc, "digits-test", codec.dataset_commands, {SUBJECT: record})
    _, rejected = await request(nc, SUBJECT, GetDatasetRecord(dataset_id=bad, db="train", index=0))
    assert rejected is not None and (rejected.code, rejected.field) == (404, "dataset_id")
    _, rejected = await request(
        nc, SUBJECT, GetDatasetRecord(dataset_id="d-1", db="train", index=0)
    )
    assert rejected is None and called == ["d-1"]
