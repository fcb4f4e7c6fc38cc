"""Classify one with `show_visualizations`: per-layer statistics, tiles, parameters, Grad-CAM."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import msgspec
import numpy as np
import pytest
from PIL import Image

from digits_inference import tiles
from digits_inference.visualize import Explainer
from digits_proto import codec, subjects
from digits_proto.inference import Classified, Visualizations
from digits_proto.models import ModelCreated, SnapshotSaved, TrainSpec
from digits_proto.replies import Rejected
from digits_proto.runtime import EventStore, put_file
from tests.inference.nets import export_convnet
from tests.inference.test_service import LABELS, classify, png, service  # noqa: F401

SHAPE = (3, 16, 16)


def picture(url: str) -> Image.Image:
    """The PNG inside a data URL."""
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.fixture
def convnet(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny exported conv net over 3×16×16 inputs with 3 classes."""
    return export_convnet(tmp_path / "conv", len(LABELS), SHAPE)


async def add_conv_model(js, files: tuple[Path, Path], model_id: str = "c") -> None:
    """A model on dataset `d` whose one snapshot is the tiny conv net."""
    symbol, params = files
    events = [
        ModelCreated(model_id=model_id, name=model_id, dataset_id="d", spec=TrainSpec()),
        SnapshotSaved(
            model_id=model_id,
            epoch=1.0,
            symbol=await put_file(js, subjects.BUCKET_MODELS, f"{model_id}/s-symbol.json", symbol),
            params=await put_file(js, subjects.BUCKET_MODELS, f"{model_id}/s.params", params),
            input_shape=list(SHAPE),
        ),
    ]
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    await store.append(subjects.model_events(model_id), events, 0)


def test_explainer_reports_every_layer_and_counts_learned_parameters(convnet) -> None:
    """Each op has activation stats with a 20-bin histogram; conv/dense have weights counted."""
    batch = np.random.default_rng(0).uniform(0, 255, (1, *SHAPE)).astype(np.float32)
    visuals = Explainer(*convnet, SHAPE).explain(batch, tuple(LABELS))
    names = [layer.name for layer in visuals.layers]
    assert names[0] == "data"
    weighted = {layer.name: layer.weights.parameters for layer in visuals.layers if layer.weights}
    expected = {4 * 3 * 9 + 4, 6 * 4 * 9 + 6, 8 * 6 * 5 * 5 + 8, 3 * 8 + 3}
    assert set(weighted.values()) == expected
    assert visuals.total_parameters == sum(expected)
    for layer in visuals.layers:
        act = layer.activation
        assert act is not None and len(act.histogram_counts) == 20
        assert len(act.histogram_edges) == 21 and sum(act.histogram_counts) == np.prod(act.shape)
        assert act.min <= act.mean <= act.max and act.std >= 0
    conv = next(layer for layer in visuals.layers if layer.op == "Convolution")
    assert conv.activation.shape[1] == 4 and picture(conv.activation.image).mode == "RGB"
    assert picture(conv.weights.image).size[0] >= tiles.MIN_CELL
    dense = [layer for layer in visuals.layers if layer.op == "FullyConnected"]
    assert dense and all(layer.weights.image == "" for layer in dense)


def test_gradcam_is_taken_on_the_last_spatial_layer_and_matches_the_top_class(convnet) -> None:
    """Grad-CAM names the last 4-D layer, the top class, and is an image at least 128 px wide."""
    batch = np.random.default_rng(1).uniform(0, 255, (1, *SHAPE)).astype(np.float32)
    explainer = Explainer(*convnet, SHAPE)
    visuals = explainer.explain(batch, tuple(LABELS))
    assert "conv1" in visuals.gradcam_layer
    assert visuals.gradcam_label in LABELS
    assert picture(visuals.gradcam).size[0] >= 128


def test_gradcam_gradient_equals_a_finite_difference(convnet) -> None:
    """The probe's gradient is d(top logit)/d(activation): checked against a finite difference."""
    import mxnet as mx
    from mxnet import autograd

    batch = np.random.default_rng(2).uniform(0, 255, (1, *SHAPE)).astype(np.float32)
    ex = Explainer(*convnet, SHAPE)
    eps = mx.nd.zeros(ex.cam_shape)
    eps.attach_grad()
    with autograd.record():
        logits = ex.net(mx.nd.array(batch), eps)[-1]
        top = int(logits[0].argmax().asscalar())
        logits[0, top].backward()
    grad = eps.grad.asnumpy()
    idx = tuple(int(i) for i in np.unravel_index(np.abs(grad).argmax(), grad.shape))
    bumped = np.zeros(ex.cam_shape, np.float32)
    bumped[idx] = 1e-2
    up = ex.net(mx.nd.array(batch), mx.nd.array(bumped))[-1][0, top].asscalar()
    base = ex.net(mx.nd.array(batch), mx.nd.zeros(ex.cam_shape))[-1][0, top].asscalar()
    assert (up - base) / 1e-2 == pytest.approx(grad[idx], rel=1e-2, abs=1e-4)


def test_a_net_with_only_constants_counts_no_learned_parameters(tmp_path) -> None:
    """The intensity net holds constants (mean, centers) only: 0 learned parameters, no weights."""
    from tests.inference.nets import export_net

    files = export_net(tmp_path / "i", [0.0, 0.5, 1.0], (3, 12, 12))
    visuals = Explainer(*files, (3, 12, 12)).explain(np.zeros((1, 3, 12, 12)), tuple(LABELS))
    assert visuals.total_parameters == 0
    assert all(layer.weights is None for layer in visuals.layers)
    assert visuals.gradcam_layer  # its mean-subtracted input is the one spatial layer


async def test_classify_one_with_visualizations_replies_with_a_blob(service, nc, js, convnet):  # noqa: F811
    """The reply carries predictions, total parameters and a blob decoding to Visualizations."""
    await add_conv_model(js, convnet)
    reply = await classify(nc, job_id="c", image=png(200), show_visualizations=True)
    assert isinstance(reply, Classified), reply
    assert reply.predictions and reply.visualizations is not None
    store = await js.object_store(reply.visualizations.bucket)
    visuals = msgspec.json.decode(
        (await store.get(reply.visualizations.name)).data, type=Visualizations
    )
    assert visuals.total_parameters == reply.total_parameters > 0
    assert visuals.gradcam_label == reply.predictions[0][0]
    plain = await classify(nc, job_id="c", image=png(200))
    assert isinstance(plain, Classified) and plain.visualizations is None
    assert plain.predictions == reply.predictions


async def test_huge_dimensions_are_refused_with_400_not_decoded(service, nc) -> None:  # noqa: F811
    """A 20000×20000 PNG (a few kB compressed) is refused by the pixel guard with a 400."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    reply = await classify(nc, job_id="m", image=out.getvalue())
    assert isinstance(reply, Rejected), reply
    assert (reply.code, reply.field) == (400, "image_file")
