"""LeNet as DIGITS's lenet.prototxt (scale 0.0125, two conv/pool pairs, 500 ReLU, logits)."""

from mxnet import gluon
from mxnet.gluon import nn


class Scale(gluon.HybridBlock):
    """Multiply the input by a constant (Caffe's transform_param scale)."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def hybrid_forward(self, F, x):
        return x * self.factor


def build_network(classes, input_shape):
    # No ReLU after the convolutions, as in DIGITS's prototxt; ceil_mode is Caffe's pooling rule.
    net = nn.HybridSequential(prefix="lenet_")
    with net.name_scope():
        net.add(
            Scale(0.0125),
            nn.Conv2D(20, kernel_size=5),
            nn.MaxPool2D(pool_size=2, strides=2, ceil_mode=True),
            nn.Conv2D(50, kernel_size=5),
            nn.MaxPool2D(pool_size=2, strides=2, ceil_mode=True),
            nn.Dense(500, activation="relu"),
            nn.Dense(classes),
        )
    return net
