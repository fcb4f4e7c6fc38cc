"""Abort always answers: a full gateway disk or a failing service is a clear 4xx/503, never 500."""

from __future__ import annotations

import errno
from pathlib import Path

import msgspec
import pytest

from digits_gateway.app import create_app
from digits_proto import subjects
from digits_proto.models import AbortModel
from digits_proto.runtime import serve_endpoints
from tests.gateway.accounts import sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.helpers import until
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.timeout(120)

ROUTES = ["/api/v1/models/{id}/abort", "/models/{id}/abort", "/jobs/{id}/abort"]


async def training_model(client, backend) -> str:
    """A model whose (fake) training runs: a built dataset, a created model, TrainingStarted."""
    ds = (await client.post("/api/v1/datasets", json={"name": "p", "folder_train": "/d"})).json()
    await backend.build(ds["id"])

    async def built() -> bool:
        return (await client.get(f"/api/v1/datasets/{ds['id']}")).json()["status"] == "Done"

    await until(built)
    r = await client.post(
        "/api/v1/models", json={"name": "m", "dataset_id": ds["id"], "network": "lenet"}
    )
    assert r.status_code == 202, r.text
    model_id = r.json()["id"]
    await backend.start_training(model_id)

    async def running_() -> bool:
        return (await client.get(f"/api/v1/models/{model_id}")).json()["status"] == "Running"

    await until(running_)
    return model_id


@pytest.mark.parametrize("route", ROUTES)
async def test_abort_with_the_gateway_data_dir_full_answers_clearly(
    route: str, nats_url, tmp_path: Path, backend
) -> None:
    """The gateway's data dir (its read model, sessions) is a full tmpfs: abort answers 200
    (the job is Aborted) or a 503 saying whether it was accepted; never a 500."""
    with tmpfs(tmp_path / "gw", size="32m") as data:
        settings = make_settings(nats_url, tmp_path, data_dir=str(data))
        async with running(create_app(settings)) as client:
            await wait_ready(client)
            await sign_in(client, "alice")
            model_id = await training_model(client, backend)
            filler = fill(data)
            r = await client.post(route.format(id=model_id), headers={"Accept": "application/json"})
            assert r.status_code in (200, 503), (r.status_code, r.text)
            if r.status_code == 503:
                assert "ccepted" in r.json()["error"]["message"], r.text
            r = await client.post(route.format(id=model_id), headers={"Accept": "application/json"})
            assert r.status_code in (403, 503), (r.status_code, r.text)
            filler.unlink()


@pytest.mark.parametrize("route", ROUTES)
async def test_abort_the_service_fails_answers_409_with_a_reason(
    route: str, client, backend, nc
) -> None:
    """The trainer's abort handler raises OSError (its disk): the gateway answers 409 "Job not
    aborted" with the service's reason (an error id to quote), never a 500."""
    model_id = await training_model(client, backend)

    async def broken(command: AbortModel):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/trainer/jobs/x")

    await backend.stop()  # its endpoints answer no more: ours is the only trainer
    await serve_endpoints(
        nc,
        "digits-trainer-broken",
        msgspec.json.Decoder(AbortModel),
        {subjects.CMD_MODELS_ABORT: broken},
    )
    r = await client.post(route.format(id=model_id), headers={"Accept": "application/json"})
    assert r.status_code == 409, (r.status_code, r.text)
    message = r.json()["error"]["message"]
    assert message.startswith("Job not aborted: ") and "internal error, id " in message, message


async def test_abort_failing_in_the_gateway_itself_answers_409_with_an_error_id(
    client, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError inside the gateway's own abort path (its read model's disk) is a 409 naming
    an error id, never a 500."""
    from digits_gateway import commands

    model_id = await training_model(client, backend)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/gateway/readmodel.duckdb")

    monkeypatch.setattr(commands, "find_job", full)
    r = await client.post(f"/api/v1/models/{model_id}/abort")
    assert r.status_code == 409, (r.status_code, r.text)
    message = r.json()["error"]["message"]
    assert message.startswith("Job not aborted: internal error, id "), message
