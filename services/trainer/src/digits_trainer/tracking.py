"""What a run keeps track of between reports: loss/accuracy windows and early stopping."""

from __future__ import annotations

import time

import mxnet as mx


class EarlyStopping:
    """Patience on the validation loss: stop after `patience` validations without a new best."""

    def __init__(self, patience: int, best: float | None = None, bad: int = 0) -> None:
        self.patience, self.best, self.bad = patience, best, bad

    def update(self, loss: float) -> bool:
        """Note one validation loss; True when training should stop."""
        if self.best is None or loss < self.best:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        return self.stopped()

    def stopped(self) -> bool:
        """True once patience has run out."""
        return self.patience > 0 and self.bad >= self.patience


class Window:
    """Loss and accuracy summed over some batches, kept on the devices until `flush`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start an empty window now."""
        self.loss_sums: list[mx.nd.NDArray] = []
        self.correct: list[mx.nd.NDArray] = []
        self.count = 0
        self.started = time.monotonic()

    def add(self, losses: list, outputs: list, labels: list) -> None:
        """Queue one batch's sums (asynchronous: nothing waits for the device here)."""
        for loss, out, y in zip(losses, outputs, labels, strict=True):
            self.loss_sums.append(loss.sum())
            self.correct.append((out.argmax(axis=1) == y).sum())
            self.count += len(y)

    def flush(self) -> tuple[float, float, float]:
        """Mean loss, accuracy and images per second since the last flush; then start anew."""
        count = max(self.count, 1)
        loss = sum(float(v.asscalar()) for v in self.loss_sums) / count
        accuracy = sum(float(v.asscalar()) for v in self.correct) / count
        speed = self.count / max(time.monotonic() - self.started, 1e-9)
        self.reset()
        return loss, accuracy, speed
