"""Networks, self-contained: raw 0-255 NCHW pixels in, mean subtracted inside, logits out.

The layers come from Gluon source defining `build_network(classes, input_shape)` (see
`networks/`): a standard network's module text, or a user's custom source.
"""

from __future__ import annotations

from collections.abc import Callable

import mxnet as mx
import numpy as np
from mxnet import gluon

from digits_trainer.data import center_crop
from digits_trainer.networks import source as standard_source

PREPROCESS_MEAN = "model_preprocess_mean"  # the dataset's own mean: never carried over
CUSTOM_FILENAME = "custom_network"  # what tracebacks of user source name their frames
Builder = Callable[[int, tuple[int, int, int]], gluon.HybridBlock]


class Preprocess(gluon.HybridBlock):
    """Subtract the mean (a constant parameter, so `export()` writes it into the params file
    and the exported model needs nothing but raw pixels), then optionally whiten each image
    (`aug_whitening`: TensorFlow's per-image standardization, at inference too)."""

    def __init__(self, mean: np.ndarray | None, whiten: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.whiten = whiten
        if mean is not None:
            with self.name_scope():
                self.mean = self.params.get_constant("mean", mx.nd.array(mean[None]))

    def hybrid_forward(self, F, x, mean=None):
        x = F.broadcast_sub(x, mean) if mean is not None else F.identity(x)
        if not self.whiten:
            return x
        centered = F.broadcast_sub(x, F.mean(x, axis=(1, 2, 3), keepdims=True))
        std = F.sqrt(F.mean(F.square(centered), axis=(1, 2, 3), keepdims=True))
        return F.broadcast_div(centered, F.maximum(std, 1e-3))


class Model(gluon.HybridBlock):
    """Preprocess, then the network's body; both built under the fixed prefix `model_`, so
    parameter names are the same in every process (resume and fine-tuning match by name)."""

    def __init__(
        self,
        build: Builder,
        classes: int,
        input_shape: tuple[int, int, int],
        mean: np.ndarray | None,
        whiten: bool = False,
    ):
        super().__init__(prefix="model_")
        with self.name_scope():
            self.preprocess = Preprocess(mean, whiten, prefix="preprocess_")
            self.body = build(classes, tuple(input_shape))
        if not isinstance(self.body, gluon.HybridBlock):
            raise TypeError(
                f"build_network must return a gluon.HybridBlock, not {type(self.body).__name__}"
            )

    def hybrid_forward(self, F, x):
        return self.body(self.preprocess(x))


def load_builder(code: str, filename: str = CUSTOM_FILENAME) -> Builder:
    """Execute network source and return its `build_network` (errors name `filename` lines)."""
    namespace: dict = {"__name__": "digits_network"}
    exec(compile(code, filename, "exec"), namespace)  # the user's own network, by design
    build = namespace.get("build_network")
    if not callable(build):
        raise NameError("the source defines no build_network(classes, input_shape) function")
    return build


def network_source(method: str, standard_network: str, custom_network: str) -> str:
    """The source a job's network is built from."""
    return custom_network if method == "custom" else standard_source(standard_network)


def build_model(
    code: str,
    classes: int,
    input_shape: tuple[int, int, int],
    mean: np.ndarray | None,
    whiten: bool = False,
) -> Model:
    """A fresh, uninitialized model from network source."""
    return Model(load_builder(code), classes, input_shape, mean, whiten)


def mean_for(use_mean: str, mean: np.ndarray | None, crop: int | None) -> np.ndarray | None:
    """The constant the network subtracts: the mean image, its per-channel mean, or nothing.

    With a crop, the image mean is center-cropped like the input the exported net receives
    (training's random crops also subtract this central window: a small, documented shortcut).
    """
    if use_mean == "none" or mean is None:
        return None
    if use_mean == "pixel":
        return mean.mean(axis=(1, 2), keepdims=True).astype(np.float32)
    return center_crop(mean, crop) if crop else mean


def initializer() -> mx.init.Initializer:
    """Caffe's "xavier" filler (uniform, scaled by fan-in), as DIGITS's prototxts use."""
    return mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=3)


def load_matching(net: gluon.Block, params_file: str, ctx: list[mx.Context]) -> list[str]:
    """Copy saved weights into `net` where name and shape match (fine-tuning); returns the
    names left as initialized (e.g. the last layer when the class count differs)."""
    saved = {
        (k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k): v
        for k, v in mx.nd.load(params_file).items()
    }
    fresh = []
    for name, param in net.collect_params().items():
        value = saved.get(name)
        if value is not None and value.shape == param.shape and name != PREPROCESS_MEAN:
            param.set_data(value)
        elif param.grad_req != "null":
            fresh.append(name)
    return fresh
