"""A tiny exported network that follows the snapshot contract, for the inference tests."""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
from mxnet import gluon


class IntensityNet(gluon.HybridBlock):
    """Raw 0–255 input, mean subtracted and scaled inside, logits out: peaks where the image's
    mean intensity (0..1) is nearest one of `centers`."""

    def __init__(self, centers: list[float], shape: tuple[int, int, int], **kwargs):
        super().__init__(**kwargs)
        self.mean = self.params.get_constant("mean", mx.nd.zeros((1, *shape)))
        self.centers = self.params.get_constant("centers", mx.nd.array([centers]))

    def hybrid_forward(self, F, x, mean, centers):
        level = F.mean(F.broadcast_sub(x, mean), axis=(1, 2, 3)) * (1 / 255.0)
        distance = F.broadcast_sub(level.reshape((-1, 1)), centers)
        return -20 * distance * distance


def export_net(
    folder: Path, centers: list[float], shape: tuple[int, int, int]
) -> tuple[Path, Path]:
    """Export an `IntensityNet`; returns its symbol and params files."""
    net = IntensityNet(centers, shape)
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, *shape)))  # a forward pass builds the graph export needs
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "net"
    net.export(str(prefix), epoch=0)
    return folder / "net-symbol.json", folder / "net-0000.params"


class TinyConvNet(gluon.HybridBlock):
    """A LeNet-shaped net (mean, scale, conv, pool, conv, dense, dense) for visualization tests."""

    def __init__(self, classes: int, shape: tuple[int, int, int], **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.mean = self.params.get_constant("mean", mx.nd.full((1, *shape), 100.0))
            self.conv0 = gluon.nn.Conv2D(4, kernel_size=3)
            self.pool0 = gluon.nn.MaxPool2D(pool_size=2, strides=2)
            self.conv1 = gluon.nn.Conv2D(6, kernel_size=3, activation="relu")
            self.dense0 = gluon.nn.Dense(8, activation="relu")
            self.dense1 = gluon.nn.Dense(classes)

    def hybrid_forward(self, F, x, mean):
        x = F.broadcast_sub(x, mean) * 0.0125
        return self.dense1(self.dense0(self.conv1(self.pool0(self.conv0(x)))))


def export_convnet(folder: Path, classes: int, shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """Export a randomly initialised `TinyConvNet`; returns its symbol and params files."""
    mx.random.seed(7)
    net = TinyConvNet(classes, shape)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, *shape)))
    folder.mkdir(parents=True, exist_ok=True)
    net.export(str(folder / "conv"), epoch=0)
    return folder / "conv-symbol.json", folder / "conv-0000.params"
