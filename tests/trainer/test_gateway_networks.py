"""The gateway's network routes forward to the real trainer: Customize and the network graph."""

from __future__ import annotations

import pytest

from digits_gateway.app import create_app
from digits_trainer.networks import source
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.trainer.test_networks import BROKEN, TINY
from tests.trainer.test_service import trainer

pytestmark = pytest.mark.timeout(180)


async def test_customize_and_visualize_network_routes_answer_json(nats_url, nc, js, tmp_path):
    """Customize gives a standard network's source (400 on `network` when unknown); visualize
    gives nodes, edges and total_params, or a 400 naming `custom_network` and the line."""
    fake = FakeBackend(nc, js)
    await fake.start()
    try:
        await seed_accounts(js)
        async with trainer(nats_url, tmp_path / "trainer", warm=True):
            app = create_app(make_settings(nats_url, tmp_path))
            async with running(app) as client:
                await wait_ready(client)
                await sign_in(client, "alice")
                ok = await client.post("/models/customize?network=resnet18&framework=mxnet")
                assert ok.status_code == 200 and ok.json() == {"network": source("resnet18")}
                bad = await client.post("/models/customize?network=vgg&framework=mxnet")
                assert bad.status_code == 400 and "network" in bad.text

                graph = await client.post(
                    "/models/visualize-network", data={"custom_network": TINY}, timeout=120
                )
                assert graph.status_code == 200, graph.text
                body = graph.json()
                assert set(body) == {"nodes", "edges", "total_params"}
                assert body["nodes"][0]["shape"] == [1, 3, 32, 32] and body["total_params"] > 0
                broken = await client.post(
                    "/models/visualize-network", data={"custom_network": BROKEN}, timeout=120
                )
                assert broken.status_code == 400
                assert "custom_network" in broken.text and "line 6" in broken.text
    finally:
        await fake.stop()
