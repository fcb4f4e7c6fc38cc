"""Snapshots: the exported network (symbol + params) and a `.state` tar for resuming.

The `.state` file is an uncompressed tar of two members: `trainer.states` (MXNet's
`Trainer.save_states`: optimizer state such as momentum, and its update counts) and
`checkpoint.json` (the sidecar below: spec, position, RNG states, early-stopping state and the
latest metrics). Together with the params file that is everything a resume needs.

A resume point (`resume-<iteration>.ckpt`) is the same tar plus a third member, `net.params`
(the weights by parameter name): written every few seconds of training between snapshots, it
bounds what a crash costs without being a user-visible snapshot.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import mxnet as mx
import numpy as np
from mxnet import gluon

from digits_proto.models import TrainSpec
from digits_trainer.reports import ResumePointReport, SnapshotReport, WriteFailed

STATES_MEMBER = "trainer.states"
SIDECAR_MEMBER = "checkpoint.json"
PARAMS_MEMBER = "net.params"  # resume points only


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failure while writing `path` into WriteFailed naming it: Python's write() errors
    carry no file name, and MXNet's C++ streams fail a CHECK that says nothing of the disk."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as e:
        raise WriteFailed(path, e.strerror or str(e)) from e
    except mx.base.MXNetError as e:
        raise WriteFailed(path, why_not_written(Path(path), e)) from e


def why_not_written(path: Path, error: Exception) -> str:
    """What the file system says about `path`'s folder: full or read-only (what MXNet's error
    hides); else the error's first line."""
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
    with contextlib.suppress(OSError):
        fs = os.statvfs(folder)
        if fs.f_flag & os.ST_RDONLY:
            return os.strerror(30)  # EROFS: "Read-only file system"
        if fs.f_bavail == 0:
            return os.strerror(28)  # ENOSPC: "No space left on device"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a snapshot says about the training that produced it, and where it stood."""

    version: int = 2
    model_id: str
    dataset_id: str
    spec: TrainSpec
    epoch: float
    iteration: int
    max_iteration: int
    seed: int
    input_shape: list[int]
    metrics: dict[str, float] = {}
    # MXNet has no RNG state getter: at each snapshot it is reseeded with `mx_seed`, so a
    # resumed run draws what the uninterrupted one did. The batch order and augmentations
    # derive from (seed, epoch, batch) and need nothing here.
    mx_seed: int = 0
    python_random: list = []
    numpy_random: list = []
    best_val_loss: float | None = None
    bad_validations: int = 0
    kept: list[tuple[float, float | None]] = []  # snapshots still kept: (epoch, val loss)


def retain(
    kept: list[tuple[float, float | None]], keep: int
) -> tuple[list[tuple[float, float | None]], list[float]]:
    """Snapshot retention: the last `keep` snapshots plus the one with the lowest validation
    loss stay (0 = all stay); returns (kept, dropped epochs)."""
    if keep <= 0 or len(kept) <= keep:
        return kept, []
    scored = [(loss, i) for i, (_, loss) in enumerate(kept) if loss is not None]
    best = {min(scored)[1]} if scored else set()
    stay = set(range(len(kept) - keep, len(kept))) | best
    return [k for i, k in enumerate(kept) if i in stay], [
        epoch for i, (epoch, _) in enumerate(kept) if i not in stay
    ]


def position_seed(seed: int, iteration: int) -> int:
    """The MXNet seed used from `iteration` on (the same in a resumed and an unbroken run)."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0] % (2**31))


def capture_rng(seed: int, iteration: int) -> dict:
    """Reseed MXNet for what follows and record every RNG's state for the sidecar."""
    mx_seed = position_seed(seed, iteration)
    mx.random.seed(mx_seed)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = random.getstate()
    return {
        "mx_seed": mx_seed,
        "python_random": [state[0], list(state[1]), state[2]],
        "numpy_random": [kind, keys.tolist(), pos, has_gauss, cached],
    }


def restore_rng(checkpoint: Checkpoint) -> None:
    """Put every RNG back where the checkpoint left it."""
    mx.random.seed(checkpoint.mx_seed)
    if checkpoint.python_random:
        version, internal, gauss = checkpoint.python_random
        random.setstate((version, tuple(internal), gauss))
    if checkpoint.numpy_random:
        kind, keys, pos, has_gauss, cached = checkpoint.numpy_random
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_snapshot(
    net: gluon.HybridBlock,
    trainer: gluon.Trainer,
    folder: str | Path,
    checkpoint: Checkpoint,
    dropped: list[float] | None = None,
) -> SnapshotReport:
    """Write one snapshot's three files under `folder/<epoch>/` and describe them."""
    out = Path(folder) / f"{checkpoint.epoch:g}"
    state = out / "snapshot.state"
    try:
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        with writing(out / "net-0000.params"):
            net.export(str(out / "net"), epoch=0)  # epoch only names the file; ours: the folder
        with writing(out / STATES_MEMBER):
            trainer.save_states(str(out / STATES_MEMBER))
        with writing(out / SIDECAR_MEMBER):
            (out / SIDECAR_MEMBER).write_bytes(msgspec.json.encode(checkpoint))
        with writing(state), tarfile.open(state, "w") as tar:
            tar.add(out / STATES_MEMBER, arcname=STATES_MEMBER)
            tar.add(out / SIDECAR_MEMBER, arcname=SIDECAR_MEMBER)
    except WriteFailed:  # a half-written snapshot is of no use: its folder goes
        shutil.rmtree(out, ignore_errors=True)
        raise
    return SnapshotReport(
        epoch=checkpoint.epoch,
        symbol=str(out / "net-symbol.json"),
        params=str(out / "net-0000.params"),
        state=str(state),
        input_shape=checkpoint.input_shape,
        dropped=dropped or [],
    )


def save_resume_point(
    net: gluon.HybridBlock, trainer: gluon.Trainer, folder: str | Path, checkpoint: Checkpoint
) -> ResumePointReport:
    """Write one resume point `folder/resume-<iteration>.ckpt` atomically (whoever reads it sees
    a whole file) and describe it."""
    out = Path(folder)
    path = out / f"resume-{checkpoint.iteration}.ckpt"
    with writing(path):
        out.mkdir(parents=True, exist_ok=True)
    # The temporary folder goes whatever happens: a failed point leaves no partial file.
    with writing(path), tempfile.TemporaryDirectory(dir=out, prefix=".point-") as tmp:
        params, states = Path(tmp) / PARAMS_MEMBER, Path(tmp) / STATES_MEMBER
        # By parameter name, as `load_matching` reads them (one copy: contexts hold the same).
        weights = {name: p.data(p.list_ctx()[0]) for name, p in net.collect_params().items()}
        mx.nd.save(str(params), weights)
        trainer.save_states(str(states))
        sidecar = Path(tmp) / SIDECAR_MEMBER
        sidecar.write_bytes(msgspec.json.encode(checkpoint))
        part = Path(tmp) / "point.tar"
        with tarfile.open(part, "w") as tar:
            for member in (params, states, sidecar):
                tar.add(member, arcname=member.name)
        os.replace(part, path)
    return ResumePointReport(epoch=checkpoint.epoch, iteration=checkpoint.iteration, path=str(path))


def extract_params(state_file: str | Path, folder: str | Path) -> str | None:
    """A resume point's weights as a file under `folder` (None for a snapshot's `.state`,
    whose weights are the separate params file)."""
    with tarfile.open(state_file, "r") as tar:
        try:
            member = tar.extractfile(PARAMS_MEMBER)
        except KeyError:
            return None
        assert member is not None
        path = Path(folder) / "resume.params"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(member.read())
        return str(path)


def read_checkpoint(state_file: str | Path) -> tuple[Checkpoint, bytes]:
    """The sidecar and the optimizer-state bytes of a `.state` file (for a later resume)."""
    with tarfile.open(state_file, "r") as tar:
        sidecar = tar.extractfile(SIDECAR_MEMBER)
        states = tar.extractfile(STATES_MEMBER)
        assert sidecar is not None and states is not None
        return msgspec.json.decode(sidecar.read(), type=Checkpoint), states.read()


def load_optimizer_state(trainer: gluon.Trainer, states: bytes, folder: str | Path) -> None:
    """Give a fresh Trainer the saved optimizer state (momentum, update counts)."""
    path = Path(folder) / "resume.states"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(states)
    trainer.load_states(str(path))
    path.unlink()
