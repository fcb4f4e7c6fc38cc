"""A service that fails on a delete or an edit (its disk, a bug): the gateway answers 502 with
the service's reason and error id, never a 500 (the gateway itself did not fail)."""

from __future__ import annotations

import errno

import msgspec
import pytest

from digits_proto import codec, subjects
from digits_proto.runtime import serve_endpoints
from tests.gateway.test_abort_never_500 import training_model

pytestmark = pytest.mark.timeout(120)


async def broken(command: msgspec.Struct):
    raise OSError(errno.ENOSPC, "No space left on device", "/data/trainer/jobs/x")


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("DELETE", "/jobs/{id}", None),
        ("DELETE", "/api/v1/models/{id}", None),
        ("PUT", "/jobs/{id}", {"job_name": "renamed"}),
        ("PATCH", "/api/v1/jobs/{id}", {"name": "renamed"}),
    ],
)
async def test_a_failing_service_is_a_502_with_its_reason(
    method: str, route: str, body: dict | None, client, backend, nc
) -> None:
    model_id = await training_model(client, backend)
    await backend.stop()  # its endpoints answer no more: ours is the only trainer
    await serve_endpoints(
        nc,
        "digits-trainer-broken",
        codec.model_commands,
        {subjects.CMD_MODELS_DELETE: broken, subjects.CMD_MODELS_EDIT: broken},
    )
    kwargs = {"json": body} if method == "PATCH" else {"data": body} if body else {}
    r = await client.request(
        method, route.format(id=model_id), headers={"Accept": "application/json"}, **kwargs
    )
    assert r.status_code == 502, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["type"] == "BadGateway"
    assert "internal error, id " in error["message"] and "trainer" in error["message"], error
