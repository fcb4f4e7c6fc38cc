"""ResNet-18 (v1) from MXNet's model zoo; small images (≤ 32 px) use its CIFAR-style stem."""

from mxnet.gluon.model_zoo.vision import get_resnet


def build_network(classes, input_shape):
    return get_resnet(1, 18, classes=classes, thumbnail=input_shape[1] <= 32)
