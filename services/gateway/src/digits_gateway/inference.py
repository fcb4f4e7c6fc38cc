"""Inference results the gateway reads back from the Object Store (classify one's visualizations)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import structlog
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_gateway.deps import Gateway
from digits_gateway.errors import Unavailable
from digits_proto import subjects
from digits_proto.inference import Classified, Visualizations
from digits_proto.runtime import read_bytes

log = structlog.get_logger(__name__)


async def visualizations(gw: Gateway, result: Classified) -> Visualizations | None:
    """The visualizations a reply points to (read once, then deleted), or None."""
    ref = result.visualizations
    if ref is None or ref.bucket != subjects.BUCKET_UPLOADS:
        return None
    try:
        data = await read_bytes(gw.js, ref.bucket, ref.name)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise Unavailable("The visualizations were lost before they could be read; retry") from e
    finally:
        with contextlib.suppress(Exception):
            await (await gw.js.object_store(ref.bucket)).delete(ref.name)
    return msgspec.json.decode(data, type=Visualizations)


def visualizations_json(visuals: Visualizations) -> dict[str, Any]:
    """The keys classify_one.json gains with `show_visualizations`."""
    return {
        "visualizations": msgspec.to_builtins(visuals.layers),
        "total_parameters": visuals.total_parameters,
        "gradcam": {
            "image": visuals.gradcam,
            "layer": visuals.gradcam_layer,
            "label": visuals.gradcam_label,
        },
    }
