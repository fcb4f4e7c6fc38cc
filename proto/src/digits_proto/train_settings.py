"""The training settings' one source: the choices each field takes and the defaults.

The defaults are `TrainSpec`'s own; the gateway's form parser, its HTML form and the trainer's
checks all read them from here, so a default or a choice changes in one place. They follow
DIGITS (reference §2) except where noted: the standard network is LeNet (DIGITS: AlexNet,
which cannot take the 28×28 MNIST images every first run uses), and the solvers are the six
DIGITS offers for Caffe and Torch, the ones MXNet runs.
"""

from __future__ import annotations

from typing import Any

from digits_proto.models import TrainSpec

SOLVERS = ("SGD", "NESTEROV", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM")
LR_POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
MEAN_MODES = ("none", "image", "pixel")
METHODS = ("standard", "previous", "pretrained", "custom")
FLIPS = ("none", "fliplr", "flipud", "fliplrud")
QUAD_ROTATIONS = ("none", "rot90", "rot180", "rotall")
FRAMEWORKS = ("mxnet", "caffe", "torch", "tensorflow")  # a form's choice; all run on MXNet

DEFAULTS = TrainSpec()

# TrainSpec fields whose DIGITS form field has another name.
FORM_NAMES = {"standard_network": "standard_networks"}
# Fields a form does not default from the spec: chosen per job (which network to start from,
# the network's source, the GPUs).
NOT_IN_FORM = ("previous_network", "previous_snapshot", "custom_network", "select_gpus")


def form_value(value: Any) -> str:
    """A default as an HTML form holds it: "" for none, "1"/"0" for a checkbox, 1.0 as "1"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def form_defaults() -> dict[str, str]:
    """Every form field's default, by its DIGITS form name, as the HTML form shows it."""
    return {
        FORM_NAMES.get(name, name): form_value(getattr(DEFAULTS, name))
        for name in TrainSpec.__struct_fields__
        if name not in NOT_IN_FORM
    }
