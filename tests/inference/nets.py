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
