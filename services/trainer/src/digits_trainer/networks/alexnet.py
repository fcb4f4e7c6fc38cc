"""AlexNet as DIGITS's alexnet.prototxt (grouped convolutions, LRN, dropout 0.5); for 256×256
images DIGITS crops 227."""

from mxnet import gluon
from mxnet.gluon import nn


class LRN(gluon.HybridBlock):
    """Caffe's local response normalization across channels."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta = size, alpha, beta

    def hybrid_forward(self, F, x):
        return F.LRN(x, nsize=self.size, alpha=self.alpha, beta=self.beta, knorm=1.0)


def build_network(classes, input_shape):
    net = nn.HybridSequential(prefix="alexnet_")
    with net.name_scope():
        net.add(
            nn.Conv2D(96, kernel_size=11, strides=4, activation="relu"),
            LRN(),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            nn.Conv2D(256, kernel_size=5, padding=2, groups=2, activation="relu"),
            LRN(),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            nn.Conv2D(384, kernel_size=3, padding=1, activation="relu"),
            nn.Conv2D(384, kernel_size=3, padding=1, groups=2, activation="relu"),
            nn.Conv2D(256, kernel_size=3, padding=1, groups=2, activation="relu"),
            nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True),
            nn.Dense(4096, activation="relu"),
            nn.Dropout(0.5),
            nn.Dense(4096, activation="relu"),
            nn.Dropout(0.5),
            nn.Dense(classes),
        )
    return net
