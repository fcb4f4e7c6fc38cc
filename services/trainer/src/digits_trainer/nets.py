"""Gluon networks, self-contained: raw 0-255 NCHW pixels in, mean and scale inside, logits out."""

from __future__ import annotations

from collections.abc import Callable

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.gluon import nn

from digits_trainer.data import center_crop


class Preprocess(gluon.HybridBlock):
    """DIGITS's data transform as the network's first layer: subtract the mean, then scale.

    The mean is a constant parameter, so `export()` writes it into the params file and the
    exported model needs nothing but raw pixels.
    """

    def __init__(self, mean: np.ndarray | None, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        if mean is not None:
            with self.name_scope():
                self.mean = self.params.get_constant("mean", mx.nd.array(mean[None]))

    def hybrid_forward(self, F, x, mean=None):
        if mean is not None:
            x = F.broadcast_sub(x, mean)
        return x * self.scale


def lenet(classes: int, mean: np.ndarray | None) -> gluon.HybridBlock:
    """LeNet as DIGITS's lenet.prototxt: scale 0.0125, two conv/pool pairs, 500 ReLU, logits.

    No ReLU after the convolutions, as in that prototxt; `ceil_mode` is Caffe's pooling size rule.
    """
    net = nn.HybridSequential(prefix="lenet_")
    with net.name_scope():
        net.add(
            Preprocess(mean, scale=0.0125, prefix="preprocess_"),
            nn.Conv2D(20, kernel_size=5),
            nn.MaxPool2D(pool_size=2, strides=2, ceil_mode=True),
            nn.Conv2D(50, kernel_size=5),
            nn.MaxPool2D(pool_size=2, strides=2, ceil_mode=True),
            nn.Dense(500, activation="relu"),
            nn.Dense(classes),
        )
    return net


NETWORKS: dict[str, Callable[[int, np.ndarray | None], gluon.HybridBlock]] = {"lenet": lenet}


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


def build_network(name: str, classes: int, mean: np.ndarray | None) -> gluon.HybridBlock:
    """A fresh, uninitialized network by its DIGITS standard name."""
    return NETWORKS[name](classes, mean)


def initializer() -> mx.init.Initializer:
    """Caffe's "xavier" filler (uniform, scaled by fan-in), as DIGITS's prototxts use."""
    return mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=3)
