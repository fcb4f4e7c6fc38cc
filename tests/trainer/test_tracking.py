"""The loss window: what it reports for near-certain predictions."""

from __future__ import annotations

import mxnet as mx
import numpy as np
from mxnet import gluon

from digits_trainer.tracking import Window


def test_a_window_of_certain_predictions_reports_a_loss_of_zero_not_below() -> None:
    """MXNet's float32 log_softmax gives a certain prediction a loss of about -1.4e-6; the
    reported mean loss is a cross-entropy, so it is clamped at 0 (the page showed -1.43e-6)."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    logits = np.zeros((8, 10), dtype="float32")
    logits[:, 0] = 30.0
    outputs, labels = mx.nd.array(logits), mx.nd.zeros(8)
    assert float(loss_fn(outputs, labels).min().asscalar()) < 0  # the rounding this is about
    window = Window()
    for _ in range(Window.FOLD + 3):  # folded sums and the unfolded rest
        window.add([loss_fn(outputs, labels)], [outputs], [labels])
    loss, accuracy, _ = window.flush()
    assert loss == 0.0 and accuracy == 1.0


def test_the_window_mean_of_real_losses_is_unchanged() -> None:
    """The clamp touches only the rounding: an uncertain batch keeps its mean loss."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    outputs, labels = mx.nd.zeros((4, 10)), mx.nd.array([0, 1, 2, 3])
    window = Window()
    window.add([loss_fn(outputs, labels)], [outputs], [labels])
    loss, _, _ = window.flush()
    assert abs(loss - np.log(10)) < 1e-5
