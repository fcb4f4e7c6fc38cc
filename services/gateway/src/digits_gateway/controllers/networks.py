"""`POST /models/customize` and `POST /models/visualize-network`: thin forwards to the trainer.

Customize answers a network's editable Gluon source (a standard name, or a previous job's
network and snapshot); visualize-network has the trainer build custom source in its sandbox and
answers the graph as JSON for the browser to draw.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from digits_gateway.controllers._common import require_user
from digits_gateway.deps import Gateway
from digits_gateway.errors import CommandRejected, Unavailable
from digits_gateway.forms import FormErrors
from digits_gateway.params import read_params
from digits_proto import codec, subjects
from digits_proto.models import CustomizeNetwork, NetworkGraph, VisualizeNetwork
from digits_proto.replies import Rejected
from digits_proto.runtime import request as bus_request

# Building a network in a fresh sandbox child imports MXNet first: seconds on a busy node.
SANDBOX_TIMEOUT = 90.0


async def _ask(gw: Gateway, subject: str, command: Any, decoder: Any, timeout: float) -> Any:
    try:
        body, rejected = await bus_request(gw.nc, subject, command, timeout=timeout)
    except TimeoutError as e:
        raise Unavailable("The trainer did not answer; retry") from e
    reply = rejected or decoder.decode(body)
    if isinstance(reply, Rejected):
        raise CommandRejected(reply.code, reply.message, reply.field)
    return reply


@post("/models/customize", status_code=200)
async def customize(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """`{"network": "<Gluon source>"}` (+ `"snapshot"` for a previous job); 400 on `network`."""
    params = await read_params(request)
    name = (params.get("network") or "").strip()
    framework = (params.get("framework") or "mxnet").strip()
    if framework != "mxnet":
        raise FormErrors({"framework": [f"Framework {framework!r} is not available"]})
    if not name:
        raise FormErrors({"network": ["This field is required."]})
    epoch_text = (params.get("snapshot_epoch") or "").strip()
    try:
        epoch = float(epoch_text) if epoch_text else None
    except ValueError:
        raise FormErrors({"snapshot_epoch": ["Not a valid number."]}) from None
    command = CustomizeNetwork(network=name, snapshot_epoch=epoch, principal=require_user(request))
    reply = await _ask(gw, subjects.CMD_MODELS_CUSTOMIZE, command, codec.network_source_reply, 10.0)
    body: dict[str, Any] = {"network": reply.network}
    if reply.snapshot is not None:
        body["snapshot"] = reply.snapshot
    return Response(body)


@post("/models/visualize-network", status_code=200)
async def visualize_network(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """The graph of `custom_network` (nodes, edges, shapes, parameter counts) on the shape of
    `dataset_id`'s images; a mistake is a 400 on `custom_network` quoting the line."""
    params = await read_params(request)
    code = params.get("custom_network") or ""
    if not code.strip():
        raise FormErrors({"custom_network": ["This field is required."]})
    command = VisualizeNetwork(
        custom_network=code,
        dataset_id=(params.get("dataset_id") or "").strip(),
        principal=require_user(request),
    )
    graph: NetworkGraph = await _ask(
        gw, subjects.CMD_MODELS_VISUALIZE, command, codec.network_graph_reply, SANDBOX_TIMEOUT
    )
    return Response(
        {
            "nodes": [
                {"id": n.id, "name": n.name, "op": n.op, "shape": n.shape, "params": n.params}
                for n in graph.nodes
            ],
            "edges": graph.edges,
            "total_params": graph.total_params,
        }
    )
