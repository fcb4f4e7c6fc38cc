"""The training loop: one `train()` that reads top to bottom, as in MXNet's Gluon examples."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import NamedTuple

import mxnet as mx
import numpy as np
import structlog
from mxnet import autograd, gluon

from digits_proto.models import TrainSpec
from digits_trainer import spec as specs
from digits_trainer.checkpoints import Checkpoint, save_snapshot
from digits_trainer.config import ChildConfig
from digits_trainer.data import Data, Split, batches
from digits_trainer.lr import lr_at
from digits_trainer.nets import build_network, initializer, mean_for
from digits_trainer.reports import MetricsReport, ProgressReport, Report
from digits_trainer.solver import make_optimizer

log = structlog.get_logger(__name__)

Emit = Callable[[Report], None]
PROGRESS_EVERY = 1.0  # seconds between progress reports (the parent throttles events further)


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


class Plan(NamedTuple):
    """When things happen, in iterations, converted from the spec's epochs as DIGITS does."""

    batch_size: int
    per_epoch: int
    max_iter: int
    val_every: int  # 0 = never
    snapshot_every: int  # 0 = only the final snapshot
    log_every: int


def plan_for(spec: TrainSpec, train_size: int, log_every: int = 0) -> Plan:
    """The iteration plan of a job: DIGITS's interval conversions and its `display` rule."""
    batch_size = specs.batch_size(spec)
    per_epoch = math.ceil(train_size / batch_size)
    max_iter = per_epoch * spec.train_epochs
    display = max(1, min(max_iter // (spec.train_epochs * 8), math.ceil(5000 / batch_size)))
    return Plan(
        batch_size=batch_size,
        per_epoch=per_epoch,
        max_iter=max_iter,
        val_every=interval_iterations(spec.val_interval, per_epoch, max_iter),
        snapshot_every=interval_iterations(spec.snapshot_interval, per_epoch, max_iter),
        log_every=log_every or display,
    )


def interval_iterations(epochs: float, per_epoch: int, max_iter: int) -> int:
    """An interval in epochs as iterations (caffe_train.py): 0 never, at least 1, at most the end."""
    if epochs <= 0:
        return 0
    iterations = epochs * per_epoch
    return 1 if iterations <= 1 else min(int(iterations), max_iter)


def seed_everything(seed: int | None) -> int:
    """Seed Python, NumPy and MXNet: the same seed and data give the same run on the CPU."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    return seed


def train(config: ChildConfig, data: Data, ctx: list[mx.Context], emit: Emit) -> None:
    """Train one job from scratch, reporting metrics, progress and snapshots through `emit`."""
    spec = config.spec
    seed = seed_everything(spec.random_seed)
    rng = np.random.default_rng(seed)
    plan = plan_for(spec, len(data.train), config.log_every)
    crop = spec.crop_size
    input_shape = [config.channels, crop or config.height, crop or config.width]

    mean = mean_for(spec.use_mean, data.mean, crop)
    net = build_network(spec.standard_network, config.classes, mean)
    net.initialize(initializer(), ctx=ctx)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(spec))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    log.info("training", seed=seed, ctx=str(ctx), **plan._asdict())

    iteration, latest = 0, {}  # latest: the newest value of each series, for the sidecar
    window = Window()
    started = last_progress = time.monotonic()
    for epoch in range(spec.train_epochs):
        for batch, (x, y) in enumerate(
            batches(data.train, plan.batch_size, crop, rng, spec.shuffle), start=1
        ):
            lr = lr_at(100.0 * iteration / plan.max_iter, spec)
            trainer.set_learning_rate(lr)
            xs = gluon.utils.split_and_load(x, ctx, even_split=False)
            ys = gluon.utils.split_and_load(y, ctx, even_split=False)
            with autograd.record():
                outputs = [net(xi) for xi in xs]
                losses = [loss_fn(out, yi) for out, yi in zip(outputs, ys, strict=True)]
            autograd.backward(losses)
            trainer.step(len(y))
            iteration += 1
            window.add(losses, outputs, ys)
            at = round(iteration / plan.per_epoch, 6)  # the epoch as a float, DIGITS's x axis
            epoch_end = batch == plan.per_epoch

            if iteration % plan.log_every == 0 or epoch_end:
                loss, accuracy, speed = window.flush()  # a CPU-GPU sync point, so not every batch
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"loss is {loss} at epoch {at:g}: learning rate too high?"
                    )
                values = {"loss": loss, "learning_rate": lr}
                emit(MetricsReport(phase="train", epoch=at, iteration=iteration, values=values))
                latest.update(values)
                log.info(
                    "epoch %d batch %d: loss %.4f, acc %.3f, %.1f img/s",
                    epoch + 1,
                    batch,
                    loss,
                    accuracy,
                    speed,
                )

            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY or epoch_end:
                done = iteration / plan.max_iter
                eta = (now - started) * (1 - done) / done
                emit(ProgressReport(epoch=at, progress=done, eta_seconds=eta, epoch_end=epoch_end))
                last_progress = now

            last = iteration == plan.max_iter
            if (
                data.val is not None
                and plan.val_every
                and (iteration % plan.val_every == 0 or last)
            ):
                val = validate(net, data.val, plan.batch_size, crop, ctx, loss_fn)
                emit(MetricsReport(phase="val", epoch=at, iteration=iteration, values=val))
                latest.update({f"val_{name}": value for name, value in val.items()})
                log.info(
                    "epoch %g validation: loss %.4f, acc %.3f", at, val["loss"], val["accuracy"]
                )

            if last or (plan.snapshot_every and iteration % plan.snapshot_every == 0):
                checkpoint = Checkpoint(
                    model_id=config.model_id,
                    dataset_id=config.dataset_id,
                    spec=spec,
                    epoch=at,
                    iteration=iteration,
                    max_iteration=plan.max_iter,
                    seed=seed,
                    input_shape=input_shape,
                    metrics=dict(latest),
                )
                emit(save_snapshot(net, trainer, config.snapshot_dir, checkpoint))
                log.info("epoch %g snapshot saved", at)
    log.info("training done: %d iterations in %.1f s", iteration, time.monotonic() - started)


def validate(
    net: gluon.HybridBlock,
    split: Split,
    batch_size: int,
    crop: int | None,
    ctx: list[mx.Context],
    loss_fn: gluon.loss.Loss,
) -> dict[str, float]:
    """Mean loss and accuracy (0..1) over a whole split, center-cropped, no gradients."""
    window = Window()
    for x, y in batches(split, batch_size, crop):
        xs = gluon.utils.split_and_load(x, ctx, even_split=False)
        ys = gluon.utils.split_and_load(y, ctx, even_split=False)
        outputs = [net(xi) for xi in xs]
        window.add([loss_fn(out, yi) for out, yi in zip(outputs, ys, strict=True)], outputs, ys)
    loss, accuracy, _ = window.flush()
    return {"loss": loss, "accuracy": accuracy}


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
