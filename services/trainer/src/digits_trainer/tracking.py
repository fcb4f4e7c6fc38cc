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
    """Loss and accuracy over some batches, kept on the devices until `flush`.

    `add` only keeps (detached) references and sums them every `FOLD` batches: a few ops per
    context then, instead of four ops per batch, so the batch loop does what a bare Gluon loop
    does; the bound keeps a long validation from holding every output.
    """

    FOLD = 32

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start an empty window now."""
        self.kept: dict[mx.Context, list[tuple]] = {}
        self.sums: list[tuple[mx.nd.NDArray, mx.nd.NDArray]] = []  # (loss sum, correct)
        self.count = self.batches = 0
        self.started = time.monotonic()

    def add(self, losses: list, outputs: list, labels: list) -> None:
        """Keep one batch's per-context losses, outputs and labels (nothing waits here)."""
        for loss, out, y in zip(losses, outputs, labels, strict=True):
            self.kept.setdefault(loss.context, []).append((loss.detach(), out.detach(), y))
            self.count += len(y)
        self.batches += 1
        if self.batches % self.FOLD == 0:
            self.fold()

    def fold(self) -> None:
        """Queue the sums of the kept batches, one concatenation per context (asynchronous)."""
        for batches in self.kept.values():
            parts = zip(*batches, strict=True)
            losses, outputs, labels = (mx.nd.concat(*part, dim=0) for part in parts)
            # A cross-entropy is never negative, but MXNet's float32 log_softmax gives about
            # +1.4e-6 for a near-certain prediction, so such a sample's loss reads -1.4e-6 and a
            # well-fit window's mean goes below 0: clamp each sample's (reported) loss at 0.
            losses = mx.nd.maximum(losses, 0)
            self.sums.append((losses.sum(), (outputs.argmax(axis=1) == labels).sum()))
        self.kept = {}

    def flush(self) -> tuple[float, float, float]:
        """Mean loss, accuracy and images per second since the last flush; then start anew."""
        self.fold()
        count = max(self.count, 1)
        loss = sum(float(v.asscalar()) for v, _ in self.sums) / count
        accuracy = sum(float(v.asscalar()) for _, v in self.sums) / count
        speed = self.count / max(time.monotonic() - self.started, 1e-9)
        self.reset()
        return loss, accuracy, speed
