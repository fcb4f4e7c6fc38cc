"""DIGITS's solver types as MXNet optimizers, with Caffe's hidden defaults."""

from __future__ import annotations

import mxnet as mx
from mxnet.ndarray import NDArray, sqrt

from digits_proto.models import TrainSpec
from digits_trainer.spec import weight_decay


class CaffeAdaDelta(mx.optimizer.AdaDelta):
    """AdaDelta whose step is scaled by the learning rate, as Caffe's (MXNet's ignores it).

    DIGITS users set the learning rate of an ADADELTA job expecting Caffe's meaning.
    """

    def update(self, index, weight, grad, state):
        lr, wd = self._get_lr(index), self._get_wd(index)
        self._update_count(index)
        grad = grad * self.rescale_grad + wd * weight  # Caffe regularizes before the update
        acc_g, acc_delta = state
        acc_g[:] = self.rho * acc_g + (1.0 - self.rho) * grad * grad
        delta: NDArray = sqrt(acc_delta + self.epsilon) / sqrt(acc_g + self.epsilon) * grad
        acc_delta[:] = self.rho * acc_delta + (1.0 - self.rho) * delta * delta
        weight[:] -= lr * delta


def make_optimizer(spec: TrainSpec) -> mx.optimizer.Optimizer:
    """The optimizer for a spec; the learning rate is set again before each step (see lr.py).

    Caffe defaults DIGITS relies on: momentum 0.9 for SGD and NESTEROV, weight decay base_lr/100
    when the spec gives none, RMSPROP's decay from `rms_decay`.
    """
    common = {"learning_rate": spec.learning_rate, "wd": weight_decay(spec)}
    match spec.solver_type:
        case "SGD":
            return mx.optimizer.SGD(momentum=spec.momentum, **common)
        case "NESTEROV":
            return mx.optimizer.NAG(momentum=spec.momentum, **common)
        case "ADAGRAD":
            return mx.optimizer.AdaGrad(**common)
        case "RMSPROP":
            return mx.optimizer.RMSProp(gamma1=spec.rms_decay, **common)
        case "ADADELTA":
            return CaffeAdaDelta(rho=0.9, epsilon=1e-8, **common)
        case "ADAM":
            return mx.optimizer.Adam(**common)
        case other:
            raise ValueError(f"unknown solver_type {other!r}")
