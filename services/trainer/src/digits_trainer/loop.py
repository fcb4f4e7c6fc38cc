"""The training loop: one `train()` that reads top to bottom, as in MXNet's Gluon examples."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterator

import msgspec
import mxnet as mx
import numpy as np
import structlog
from mxnet import autograd, gluon

from digits_proto.models import TrainSpec
from digits_trainer.augment import augment, augmenting
from digits_trainer.checkpoints import (
    Checkpoint,
    capture_rng,
    position_seed,
    retain,
    save_resume_point,
    save_snapshot,
)
from digits_trainer.config import ChildConfig
from digits_trainer.data import (
    Data,
    Split,
    Tensors,
    batches,
    tensor_batches,
    to_tensors,
    train_batches,
)
from digits_trainer.lr import lr_at
from digits_trainer.plan import plan_for
from digits_trainer.reports import HAND_BACK_FILE, MetricsReport, ProgressReport, Report
from digits_trainer.startup import prepare
from digits_trainer.stream import read_ahead
from digits_trainer.tracking import EarlyStopping, Window

log = structlog.get_logger(__name__)

Emit = Callable[[Report], None]
PROGRESS_EVERY = 1.0  # seconds between progress reports (the parent throttles events further)
# Resume points may cost at most this share of training time: one that took 0.1 s to write
# waits at least 5 s for the next (besides the config's `resume_every` minimum).
RESUME_BUDGET = 0.02
# Until the first point has been timed, its cost is guessed from the network's size: weights and
# up to two optimizer states of float32 written at this speed (ResNet-18: a first point after
# ~30 s, not 2 s; LeNet: after `resume_every`).
GUESSED_WRITE_BYTES_PER_S = 200e6


def parameter_count(net: gluon.Block) -> int:
    """How many numbers the network's parameters hold."""
    return sum(math.prod(p.shape) for p in net.collect_params().values())


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


def train(config: ChildConfig, data: Data, ctx: list[mx.Context], emit: Emit) -> None:
    """Train one job (from scratch or from a checkpoint), reporting through `emit`."""
    spec = config.spec
    # Without crops or augmentations, MXNet gathers the batches from the split as NDArrays.
    preloaded = isinstance(data.train.images, np.ndarray)
    plain = spec.crop_size is None and not augmenting(spec)
    tensors = to_tensors(data.train) if preloaded and plain else None
    run = Run(config, data, ctx, emit)
    plan, start = run.plan, run.iteration
    if run.stopper.stopped():  # resumed after its early stop's final snapshot: nothing to do
        return
    for epoch in range(start // plan.per_epoch, spec.train_epochs):
        skip = max(0, start - epoch * plan.per_epoch)
        feed = epoch_batches(data.train, tensors, plan.batch_size, spec, run.seed, epoch, skip)
        for batch, (x, y) in enumerate(feed, start=skip + 1):
            epoch_end = batch == plan.per_epoch
            run.step(x, y, epoch_end)
            run.report(epoch, batch, epoch_end)
            last = run.iteration == plan.max_iter
            stop = run.validate(last)
            snapshot = (
                last
                or stop
                or bool(plan.snapshot_every and run.iteration % plan.snapshot_every == 0)
            )
            if snapshot:
                run.snapshot()
            if stop:
                log.info("training done early at epoch %g", run.at)
                return
            if run.iteration % plan.log_every == 0 or epoch_end:
                run.boundary(snapshot)
    log.info("training done: %d iterations in %.1f s", run.iteration, run.elapsed())


def epoch_batches(
    split: Split,
    tensors: Tensors | None,
    batch_size: int,
    spec: TrainSpec,
    seed: int,
    epoch: int,
    skip: int,
) -> Iterator[tuple]:
    """One epoch's training batches from batch `skip` on: NDArrays gathered by MXNet when
    `tensors` is given, else NumPy batches with the spec's crops and augmentations."""
    if tensors is not None:
        yield from tensor_batches(tensors, batch_size, seed, epoch, spec.shuffle, skip)
        return
    augmented = augmenting(spec)
    numpy_batches = (
        ((augment(x, spec, rng) if augmented else x), y)
        for x, y, rng in train_batches(
            split, batch_size, spec.crop_size, seed, epoch, spec.shuffle, skip
        )
    )
    yield from read_ahead(split.images, numpy_batches)


class Run:
    """One training run's state: network, optimizer, position, windows; one method per duty."""

    def __init__(self, config: ChildConfig, data: Data, ctx: list[mx.Context], emit: Emit):
        self.config, self.data, self.ctx, self.emit = config, data, ctx, emit
        spec = config.spec
        self.net, self.trainer, self.seed, resumed = prepare(config, data, ctx)
        self.plan = plan_for(spec, len(data.train), config.log_every)
        crop = spec.crop_size
        self.input_shape = [config.channels, crop or config.height, crop or config.width]
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.accumulate = spec.batch_accumulation or 1
        if self.accumulate > 1:  # gradients add up over `accumulate` batches, then one step
            for param in self.net.collect_params().values():
                if param.grad_req != "null":
                    param.grad_req = "add"
        self.start = self.iteration = resumed.iteration if resumed else 0
        self.latest = dict(resumed.metrics) if resumed else {}  # newest value of each series
        self.stopper = EarlyStopping(
            spec.early_stopping_patience,
            resumed.best_val_loss if resumed else None,
            resumed.bad_validations if resumed else 0,
        )
        self.pending, self.lr, self.at = 0, spec.learning_rate, 0.0
        self.kept = list(resumed.kept) if resumed else []  # retained snapshots, val loss
        self.window = Window()
        self.started = self.last_progress = time.monotonic()
        self.progress_iteration = self.iteration  # where the last progress report stood
        self.handed_back = False  # the point the parent asked for is written
        guessed_cost = 3 * 4 * parameter_count(self.net) / GUESSED_WRITE_BYTES_PER_S
        self.next_point = self.started + max(config.resume_every, guessed_cost / RESUME_BUDGET)
        self.point_costs: list[float] = []  # seconds the last resume points took to write
        log.info(
            "training",
            seed=self.seed,
            ctx=str(ctx),
            accumulate=self.accumulate,
            **self.plan._asdict(),
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, x, y, epoch_end: bool) -> None:
        """Forward, backward, and (every `accumulate` batches or at epoch end) one update.

        `x`, `y`: one batch as NumPy arrays or host NDArrays, split over the contexts.
        """
        self.lr = lr_at(100.0 * self.iteration / self.plan.max_iter, self.config.spec)
        xs = gluon.utils.split_and_load(x, self.ctx, even_split=False)
        ys = gluon.utils.split_and_load(y, self.ctx, even_split=False)
        with autograd.record():
            outputs = [self.net(xi) for xi in xs]
            losses = [self.loss_fn(out, yi) for out, yi in zip(outputs, ys, strict=True)]
        autograd.backward(losses)
        self.iteration += 1
        self.pending += len(y)
        if self.iteration % self.accumulate == 0 or epoch_end:
            self.trainer.set_learning_rate(self.lr)
            self.trainer.step(self.pending)
            self.pending = 0
            if self.accumulate > 1:
                self.net.collect_params().zero_grad()
        self.window.add(losses, outputs, ys)
        self.at = round(self.iteration / self.plan.per_epoch, 6)  # DIGITS's x axis

    def report(self, epoch: int, batch: int, epoch_end: bool) -> None:
        """A train metric point every `log_every` batches; progress about once a second."""
        at, iteration = self.at, self.iteration
        if iteration % self.plan.log_every == 0 or epoch_end:
            loss, accuracy, speed = self.window.flush()  # a device sync point: not every batch
            if not math.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss} at epoch {at:g}: learning rate too high?")
            values = {"loss": loss, "learning_rate": self.lr}
            self.emit(MetricsReport(phase="train", epoch=at, iteration=iteration, values=values))
            self.latest.update(values)
            log.info(
                "epoch %d batch %d: loss %.4f, acc %.3f, %.1f img/s",
                epoch + 1,
                batch,
                loss,
                accuracy,
                speed,
            )
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY or epoch_end:
            left = self.plan.max_iter - iteration
            eta = (now - self.started) * left / max(iteration - self.start, 1)
            done = iteration / self.plan.max_iter
            images = (iteration - self.progress_iteration) * self.plan.batch_size
            speed = images / max(now - self.last_progress, 1e-6)
            self.emit(
                ProgressReport(
                    epoch=at,
                    progress=done,
                    eta_seconds=eta,
                    epoch_end=epoch_end,
                    images_per_second=round(speed, 1),
                )
            )
            self.last_progress, self.progress_iteration = now, iteration

    def validate(self, last: bool) -> bool:
        """Validate when due; True if early stopping says to stop."""
        plan = self.plan
        if self.data.val is None or not plan.val_every:
            return False
        if not (self.iteration % plan.val_every == 0 or last):
            return False
        crop = self.config.spec.crop_size
        val = validate(self.net, self.data.val, plan.batch_size, crop, self.ctx, self.loss_fn)
        self.emit(MetricsReport(phase="val", epoch=self.at, iteration=self.iteration, values=val))
        self.latest.update({f"val_{name}": value for name, value in val.items()})
        log.info("epoch %g validation: loss %.4f, acc %.3f", self.at, val["loss"], val["accuracy"])
        if self.stopper.update(val["loss"]):
            log.info("early stopping: %d validations without a lower loss", self.stopper.bad)
            return True
        return False

    def boundary(self, snapshotted: bool) -> None:
        """At each metric point (the loss window was just emptied): reseed MXNet from the
        position, and write a resume point when one is due.

        The reseed happens whether or not a point is written, so the random draws after it
        (dropout) do not depend on when points happened to be taken: runs stay deterministic,
        and one resumed from any point draws what the unbroken run drew.
        """
        mx.random.seed(position_seed(self.seed, self.iteration))
        now = time.monotonic()
        # The parent's node drains: one point now, whatever the clock (a stat per metric point).
        asked = not self.handed_back and os.path.exists(HAND_BACK_FILE)
        if snapshotted and not asked:  # a snapshot is as good as a resume point
            self.next_point = now + self.config.resume_every
            return
        # Not with gradients still adding up (`batch_accumulation`): they are not saved.
        due = now >= self.next_point or asked
        if not self.config.resume_points or not due or self.pending:
            return
        mx.nd.waitall()  # the queued steps are training time, not the point's
        started = time.monotonic()
        report = save_resume_point(
            self.net, self.trainer, self.config.resume_points, self.checkpoint()
        )
        self.emit(msgspec.structs.replace(report, asked=asked))
        self.handed_back = self.handed_back or asked
        # The median of the last few costs: one write caught in a stall (another process
        # holding a core) must not put the next point off for minutes.
        self.point_costs = [*self.point_costs[-4:], time.monotonic() - started]
        cost = statistics.median(self.point_costs)
        now = time.monotonic()
        self.next_point = now + max(self.config.resume_every, cost / RESUME_BUDGET)

    def checkpoint(self) -> Checkpoint:
        """Everything a resume needs about where training stands (reseeds MXNet from it)."""
        return Checkpoint(
            model_id=self.config.model_id,
            dataset_id=self.config.dataset_id,
            spec=self.config.spec,
            epoch=self.at,
            iteration=self.iteration,
            max_iteration=self.plan.max_iter,
            seed=self.seed,
            input_shape=self.input_shape,
            metrics=dict(self.latest),
            best_val_loss=self.stopper.best,
            bad_validations=self.stopper.bad,
            kept=self.kept,
            **capture_rng(self.seed, self.iteration),
        )

    def snapshot(self) -> None:
        """Export the network and save everything a resume needs; apply retention."""
        self.kept, dropped = retain(
            [*self.kept, (self.at, self.latest.get("val_loss"))], self.config.spec.snapshot_keep
        )
        folder = self.config.snapshot_dir
        self.emit(save_snapshot(self.net, self.trainer, folder, self.checkpoint(), dropped))
        log.info("epoch %g snapshot saved", self.at)


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
    for x, y in read_ahead(split.images, batches(split, batch_size, crop)):
        xs = gluon.utils.split_and_load(x, ctx, even_split=False)
        ys = gluon.utils.split_and_load(y, ctx, even_split=False)
        outputs = [net(xi) for xi in xs]
        window.add([loss_fn(out, yi) for out, yi in zip(outputs, ys, strict=True)], outputs, ys)
    loss, accuracy, _ = window.flush()
    return {"loss": loss, "accuracy": accuracy}
