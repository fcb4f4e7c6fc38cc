"""DIGITS's standard networks as editable Gluon source (each module is what "Customize" returns).

Contract of every network source, standard or custom: a module-level function
`build_network(classes, input_shape)` returning a `gluon.HybridBlock` that maps float32
N×C×H×W input (raw 0-255 pixels, mean already subtracted by the trainer) to N×classes logits.
`input_shape` is (C, H, W) after the crop. The source may import mxnet, numpy and the stdlib.
"""

from __future__ import annotations

from importlib import resources

STANDARD = ("lenet", "alexnet", "googlenet", "resnet18")


def source(name: str) -> str:
    """The Gluon source of a standard network."""
    if name not in STANDARD:
        raise KeyError(name)
    return resources.files(__package__).joinpath(f"{name}.py").read_text()
