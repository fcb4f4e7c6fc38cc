"""GoogLeNet (Inception v1) as DIGITS's googlenet.prototxt, main tower only (no auxiliary
classifiers); for 256×256 images DIGITS crops 224. The final pooling is global."""

from mxnet import gluon
from mxnet.gluon import nn


class LRN(gluon.HybridBlock):
    """Caffe's local response normalization across channels."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta = size, alpha, beta

    def hybrid_forward(self, F, x):
        return F.LRN(x, nsize=self.size, alpha=self.alpha, beta=self.beta, knorm=1.0)


def conv(channels, kernel, **kwargs):
    return nn.Conv2D(channels, kernel_size=kernel, activation="relu", **kwargs)


class Inception(gluon.HybridBlock):
    """Four branches (1×1, 1×1→3×3, 1×1→5×5, pool→1×1) concatenated along channels."""

    def __init__(self, c1, c3r, c3, c5r, c5, pool, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.b1 = conv(c1, 1)
            self.b3 = nn.HybridSequential()
            self.b3.add(conv(c3r, 1), conv(c3, 3, padding=1))
            self.b5 = nn.HybridSequential()
            self.b5.add(conv(c5r, 1), conv(c5, 5, padding=2))
            self.bp = nn.HybridSequential()
            self.bp.add(nn.MaxPool2D(pool_size=3, strides=1, padding=1), conv(pool, 1))

    def hybrid_forward(self, F, x):
        return F.concat(self.b1(x), self.b3(x), self.b5(x), self.bp(x), dim=1)


def build_network(classes, input_shape):
    net = nn.HybridSequential(prefix="googlenet_")
    with net.name_scope():
        net.add(
            conv(64, 7, strides=2, padding=3),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            LRN(),
            conv(64, 1),
            conv(192, 3, padding=1),
            LRN(),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            Inception(64, 96, 128, 16, 32, 32),
            Inception(128, 128, 192, 32, 96, 64),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            Inception(192, 96, 208, 16, 48, 64),
            Inception(160, 112, 224, 24, 64, 64),
            Inception(128, 128, 256, 24, 64, 64),
            Inception(112, 144, 288, 32, 64, 64),
            Inception(256, 160, 320, 32, 128, 128),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            Inception(256, 160, 320, 32, 128, 128),
            Inception(384, 192, 384, 48, 128, 128),
            nn.GlobalAvgPool2D(),
            nn.Dropout(0.4),
            nn.Dense(classes),
        )
    return net
