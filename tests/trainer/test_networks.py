"""Network endpoints: Customize, the sandboxed graph of custom source, custom and previous jobs."""

from __future__ import annotations

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import (
    CreateModel,
    CustomizeNetwork,
    NetworkGraph,
    NetworkSource,
    SnapshotSaved,
    TrainSpec,
    VisualizeNetwork,
)
from digits_proto.runtime import request
from digits_trainer.networks import source
from tests.fakes.principals import ALICE
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    stored_log,
    trainer,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

TINY = """from mxnet.gluon import nn


def build_network(classes, input_shape):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, kernel_size=3, activation="relu"), nn.GlobalAvgPool2D())
    net.add(nn.Dense(classes))
    return net
"""
BROKEN = TINY.replace("nn.GlobalAvgPool2D()", "nn.GlobalAvgPool2D(size=3)")


async def ask(nc, subject, command, decoder):
    """Send a command; the decoded reply (or the Rejected)."""
    body, rejected = await request(nc, subject, command, timeout=90)
    return rejected if rejected is not None else decoder.decode(body)


async def test_customize_returns_gluon_source_for_standard_names_and_400_otherwise(
    nats_url, nc, js, tmp_path
):
    """Every standard network has editable source; an unknown name is a 400 on `network`."""
    async with trainer(nats_url, tmp_path / "data"):
        for name in ("lenet", "alexnet", "googlenet", "resnet18"):
            reply = await ask(
                nc,
                subjects.CMD_MODELS_CUSTOMIZE,
                CustomizeNetwork(network=name, principal=ALICE),
                codec.network_source_reply,
            )
            assert isinstance(reply, NetworkSource) and reply.network == source(name)
            assert "def build_network(classes, input_shape)" in reply.network
        rejected = await ask(
            nc,
            subjects.CMD_MODELS_CUSTOMIZE,
            CustomizeNetwork(network="vgg", principal=ALICE),
            codec.network_source_reply,
        )
        assert (rejected.code, rejected.field) == (400, "network")


async def test_visualize_draws_the_graph_and_names_the_failing_line(nats_url, nc, js, tmp_path):
    """Source that builds gives nodes, edges and parameter counts (dataset's shape); a mistake
    is a 400 on `custom_network` quoting the line."""
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data", warm=True):
        graph = await ask(
            nc,
            subjects.CMD_MODELS_VISUALIZE,
            VisualizeNetwork(custom_network=TINY, dataset_id=dataset_id, principal=ALICE),
            codec.network_graph_reply,
        )
        assert isinstance(graph, NetworkGraph)
        assert graph.nodes[0].op == "Input" and graph.nodes[0].shape == [1, 1, 28, 28]
        assert graph.nodes[-1].shape == [1, 3]  # three toy classes
        assert graph.total_params == (8 * 9 + 8) + (8 * 3 + 3)
        ids = {n.id for n in graph.nodes}
        assert graph.edges and all(a in ids and b in ids for a, b in graph.edges)
        rejected = await ask(
            nc,
            subjects.CMD_MODELS_VISUALIZE,
            VisualizeNetwork(custom_network=BROKEN, principal=ALICE),
            codec.network_graph_reply,
        )
        assert (rejected.code, rejected.field) == (400, "custom_network")
        assert "line 6:" in rejected.message and "GlobalAvgPool2D(size=3)" in rejected.message


async def test_a_custom_network_trains_and_a_previous_one_fine_tunes_from_it(
    nats_url, nc, js, tmp_path
):
    """Broken custom source is refused before a job exists; working source trains to Done;
    a job on `previous_networks` starts from its snapshot and trains to Done."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data", warm=True):
        spec = TrainSpec(method="custom", custom_network=BROKEN, train_epochs=1)
        _, rejected = await request(
            nc,
            subjects.CMD_MODELS_CREATE,
            CreateModel(name="bad", dataset_id=dataset_id, spec=spec, principal=ALICE),
            timeout=90,
        )
        assert rejected is not None and (rejected.code, rejected.field) == (400, "custom_network")
        assert "line 6" in rejected.message

        spec = TrainSpec(method="custom", custom_network=TINY, train_epochs=1, random_seed=1)
        body, rejected = await request(
            nc,
            subjects.CMD_MODELS_CREATE,
            CreateModel(name="tiny", dataset_id=dataset_id, spec=spec, principal=ALICE),
            timeout=90,
        )
        assert rejected is None, rejected
        first = codec.command_reply.decode(body)
        await wait_for(js, first.id, status_is(JobStatus.DONE), timeout=90)
        _, rejected = await request(
            nc,
            subjects.CMD_MODELS_CREATE,
            CreateModel(
                name="ft",
                dataset_id=dataset_id,
                spec=TrainSpec(method="previous", previous_network="20990101-000000-none"),
                principal=ALICE,
            ),
        )
        assert rejected is not None and rejected.field == "previous_networks"

        second = await create(
            nc, dataset_id, method="previous", previous_network=first.id, previous_snapshot=1.0
        )
        events = await wait_for(js, second.id, status_is(JobStatus.DONE), timeout=90)
        assert any(isinstance(e, SnapshotSaved) for e in events)
        reply = await ask(
            nc,
            subjects.CMD_MODELS_CUSTOMIZE,
            CustomizeNetwork(network=first.id, principal=ALICE),
            codec.network_source_reply,
        )
        assert reply.network == TINY and reply.snapshot == 1.0
    log = await stored_log(js, second.id)  # the local folder goes when the job ends
    assert "fine-tuning from" in log
