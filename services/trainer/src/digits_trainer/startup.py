"""A run's starting point: seeds, network and optimizer, fresh, resumed or fine-tuned."""

from __future__ import annotations

import random

import mxnet as mx
import numpy as np
import structlog
from mxnet import gluon

from digits_trainer.checkpoints import (
    extract_params,
    load_optimizer_state,
    read_checkpoint,
    restore_rng,
)
from digits_trainer.config import ChildConfig
from digits_trainer.data import Data
from digits_trainer.nets import build_model, initializer, load_matching, mean_for
from digits_trainer.networks import source as standard_source
from digits_trainer.solver import make_optimizer

log = structlog.get_logger(__name__)


def seed_everything(seed: int | None) -> int:
    """Seed Python, NumPy and MXNet: the same seed and data give the same run on the CPU."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    return seed


def prepare(config: ChildConfig, data: Data, ctx: list[mx.Context]):
    """Seed, build and initialize the network and optimizer; resume or fine-tune if asked.

    Returns (net, trainer, seed, checkpoint or None).
    """
    spec = config.spec
    resumed = read_checkpoint(config.resume.state) if config.resume else None
    seed = seed_everything(resumed[0].seed if resumed else spec.random_seed)
    crop = spec.crop_size
    shape = (config.channels, crop or config.height, crop or config.width)
    mean = mean_for(spec.use_mean, data.mean, crop)
    code = config.network or standard_source(spec.standard_network)
    net = build_model(code, config.classes, shape, mean, spec.aug_whitening)
    net.initialize(initializer(), ctx=ctx)
    if config.resume or config.pretrained:
        # Finish deferred shapes before loading weights, imperatively: a hybridized call on
        # this dummy batch would make every later training step several times slower.
        net(mx.nd.zeros((1, *shape), ctx=ctx[0]))
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(spec))
    if resumed is not None and config.resume is not None:
        checkpoint, states = resumed
        # A resume point carries its weights inside its tar; a snapshot has a params file.
        params = config.resume.params or extract_params(config.resume.state, config.snapshot_dir)
        if params is None:
            raise ValueError(f"{config.resume.state} holds no weights and no params file is given")
        fresh = load_matching(net, params, ctx)
        if fresh:
            raise ValueError(f"the snapshot to resume from lacks {fresh[:3]}")
        load_optimizer_state(trainer, states, config.snapshot_dir)
        restore_rng(checkpoint)
        log.info("resuming from epoch %g (iteration %d)", checkpoint.epoch, checkpoint.iteration)
        return net, trainer, seed, checkpoint
    if config.pretrained:
        fresh = load_matching(net, config.pretrained, ctx)
        log.info("fine-tuning from %s; freshly initialized: %s", config.pretrained, fresh)
    return net, trainer, seed, None
