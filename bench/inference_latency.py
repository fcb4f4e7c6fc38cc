"""Inference speed: the system over HTTP against the same work done in process (the anchors).

Starts nats-server, the inference service and the gateway as processes (as the launcher does),
registers a LeNet snapshot (10 classes, 28×28 grey, random weights: speed does not depend on
them) through events and the Object Store, then measures, alternating with the anchors:

1. classify_one.json over HTTP, p50 / p99, against decode + resize + forward + softmax of the
   same PNG in this process (goal: ≤ +10 ms at p50);
2. classify_many.json over HTTP on a list of N images on disk, img/s, against decoding the same
   files and forwarding them in batches of 64 in this process (goal: ≥ 0.9×).

Both sides use the same OpenMP thread count (--threads, default 2).

    .venv/bin/python bench/inference_latency.py [--requests 200] [--images 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--requests", type=int, default=200)
parser.add_argument("--images", type=int, default=2000)
parser.add_argument("--threads", type=int, default=2)
ARGS = parser.parse_args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the service: no spinning between calls

import httpx  # noqa: E402
import mxnet as mx  # noqa: E402
import nats  # noqa: E402
import nats.errors  # noqa: E402
import nats.js.errors  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from digits_imaging import load_image, resize_image  # noqa: E402
from digits_proto import codec, subjects  # noqa: E402
from digits_proto.base import (  # noqa: E402
    BlobRef,
    Principal,
    Role,
)
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec  # noqa: E402
from digits_proto.inference import ClassifyMany, ClassifyOne  # noqa: E402
from digits_proto.models import ModelCreated, SnapshotSaved, TrainSpec  # noqa: E402
from digits_proto.runtime import (  # noqa: E402
    EventStore,
    put_bytes,
    put_file,
    request,
    serve_endpoints,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = Principal(username="bench", role=Role.USER)  # who the benchmark acts as
BIN = Path(sys.executable).parent
LABELS = [str(i) for i in range(10)]
URL: list[str] = []


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LeNet(mx.gluon.HybridBlock):
    """DIGITS's LeNet as the trainer exports it: mean and 0.0125 scale inside, logits out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        nn = mx.gluon.nn
        with self.name_scope():
            self.mean = self.params.get_constant("mean", mx.nd.full((1, 1, 28, 28), 33.0))
            self.body = nn.HybridSequential()
            self.body.add(
                nn.Conv2D(20, 5),
                nn.MaxPool2D(2, 2, ceil_mode=True),
                nn.Conv2D(50, 5),
                nn.MaxPool2D(2, 2, ceil_mode=True),
                nn.Dense(500, activation="relu"),
                nn.Dense(10),
            )

    def hybrid_forward(self, F, x, mean):
        return self.body(F.broadcast_sub(x, mean) * 0.0125)


def export_lenet(folder: Path) -> tuple[Path, Path]:
    net = LeNet()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.export(str(folder / "lenet"), epoch=1)
    return folder / "lenet-symbol.json", folder / "lenet-0001.params"


def write_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


async def exists(js, stream: str, subject: str) -> bool:
    """Whether `subject` already holds events (register may be retried on a loaded machine)."""
    try:
        await js.get_last_msg(stream, subject)
    except nats.js.errors.NotFoundError:
        return False
    return True


async def register(url: str, symbol: Path, params: Path) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        ref = BlobRef(bucket=subjects.BUCKET_DATASETS, name="x")
        spec = DatasetSpec(folder_train="/x", resize_width=28, resize_height=28, resize_channels=1)
        built = DatasetBuilt(
            dataset_id="d",
            labels=LABELS,
            labels_blob=ref,
            splits=[],
            mean=ref,
            mean_jpg=ref,
            image_width=28,
            image_height=28,
            image_channels=1,
        )
        created = DatasetCreated(dataset_id="d", name="bench", spec=spec)
        if not await exists(js, subjects.STREAM_DATASETS, subjects.dataset_events("d")):
            await EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events).append(
                subjects.dataset_events("d"), [created, built], 0
            )
        if await exists(js, subjects.STREAM_MODELS, subjects.model_events("m")):
            return  # a retry after a slow first try that did get through
        snapshot = SnapshotSaved(
            model_id="m",
            epoch=1.0,
            input_shape=[1, 28, 28],
            symbol=await put_file(js, subjects.BUCKET_MODELS, "m/s-1-symbol.json", symbol),
            params=await put_file(js, subjects.BUCKET_MODELS, "m/s-1.params", params),
        )
        model = ModelCreated(model_id="m", name="bench", dataset_id="d", spec=TrainSpec())
        await EventStore(js, subjects.STREAM_MODELS, codec.model_events).append(
            subjects.model_events("m"), [model, snapshot], 0
        )
    finally:
        await nc.close()


def fake_services(url: str, stop: threading.Event) -> None:
    """The gateway waits for every backend to answer pings: stand-ins for the three unused,
    on a thread of their own so that they answer while the benchmark blocks on HTTP."""

    async def serve() -> None:
        nc = await nats.connect(url)
        names = (subjects.SERVICE_DATASETS, subjects.SERVICE_TRAINER, subjects.SERVICE_GPU_BROKER)
        for name in names:
            await serve_endpoints(nc, name, codec.dataset_commands, {})
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await nc.close()

    asyncio.run(serve())


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def in_process_one(net, image: bytes) -> None:
    pixels = np.asarray(resize_image(load_image(image, 1), 28, 28, "squash"), np.float32)
    logits = net(mx.nd.array(pixels[None, None])).asnumpy()[0].astype(np.float64)
    e = np.exp(logits - logits.max())
    _ = e / e.sum()


def in_process_many(net, paths: list[Path]) -> None:
    for start in range(0, len(paths), 64):
        batch = np.stack(
            [
                np.asarray(
                    resize_image(load_image(p.read_bytes(), 1), 28, 28, "squash"), np.float32
                )
                for p in paths[start : start + 64]
            ]
        )[:, None]
        net(mx.nd.array(batch)).asnumpy()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="digits-bench-"))
    images = tmp / "images"
    images.mkdir()
    paths = write_images(images, ARGS.images)
    symbol, params = export_lenet(tmp)
    nats_port, http_port = free_port(), free_port()
    url = f"nats://127.0.0.1:{nats_port}"
    URL.append(url)
    procs = [
        subprocess.Popen(
            [
                str(BIN / "nats-server"),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(nats_port),
                "-sd",
                str(tmp / "nats"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    env = dict(
        os.environ,
        DIGITS_NATS_URL=url,
        DIGITS_DATA_DIR=str(tmp / "data"),
        DIGITS_DATA_ROOTS=str(images),
        DIGITS_PORT=str(http_port),
        DIGITS_INFERENCE_OMP_THREADS=str(ARGS.threads),
        DIGITS_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "warning"),
        DIGITS_GATEWAY_HOST="127.0.0.1",
    )
    time.sleep(0.3)
    procs.append(subprocess.Popen([sys.executable, "-m", "digits_inference"], env=env))
    stop = threading.Event()
    fakes = threading.Thread(target=fake_services, args=(url, stop), daemon=True)
    fakes.start()
    for _ in range(100):  # the inference service creates the streams and buckets
        try:
            asyncio.run(register(url, symbol, params))
            break
        except (nats.errors.Error, OSError, TimeoutError):
            time.sleep(0.2)
    procs.append(subprocess.Popen([sys.executable, "-m", "digits_gateway"], env=env))
    base = f"http://127.0.0.1:{http_port}"
    try:
        with httpx.Client(base_url=base, timeout=300) as client:
            for _ in range(300):
                time.sleep(0.1)
                with contextlib.suppress(httpx.TransportError):
                    health = client.get("/health").status_code
                    if health == 200 and client.get("/models/m.json").status_code == 200:
                        break
            run(client, paths, symbol, params, images)
    finally:
        stop.set()
        fakes.join(5)
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)


async def over_nats(image: bytes) -> list[float]:
    """ClassifyOne sent straight to the inference service: the gateway's share, by difference."""
    nc = await nats.connect(URL[0])
    times = []
    try:
        for _ in range(ARGS.requests):
            t = time.perf_counter()
            _, rejected = await request(
                nc,
                subjects.CMD_INFERENCE_CLASSIFY_ONE,
                ClassifyOne(job_id="m", image=image, principal=BENCH),
            )
            assert rejected is None, rejected
            times.append(1000 * (time.perf_counter() - t))
    finally:
        await nc.close()
    return times


async def many_over_nats(listing: bytes, images: Path, count: int) -> list[float]:
    """ClassifyMany straight to the inference service (list upload + result read included)."""
    nc = await nats.connect(URL[0])
    js = nc.jetstream()
    rates = []
    try:
        store = await js.object_store(subjects.BUCKET_UPLOADS)
        for _ in range(3):
            t = time.perf_counter()
            ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "bench/list.txt", listing)
            cmd = ClassifyMany(
                job_id="m", image_list=ref, image_folder=str(images), principal=BENCH
            )
            body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 300)
            assert rejected is None, rejected
            reply = codec.classify_many_reply.decode(body)
            buffer = io.BytesIO()
            await store.get(reply.result.name, writeinto=buffer)
            rates.append(count / (time.perf_counter() - t))
    finally:
        await nc.close()
    return rates


def run(client: httpx.Client, paths: list[Path], symbol: Path, params: Path, images: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(str(symbol), ["data"], str(params))
    net.hybridize()
    image = paths[0].read_bytes()
    files = {"image_file": ("x.png", image, "image/png")}
    url = "/models/images/classification/classify_one.json"
    for _ in range(20):  # warm both sides (net caches, connections, MKL-DNN kernels)
        assert client.post(url, data={"job_id": "m"}, files=files).status_code == 200
        in_process_one(net, image)
    http, local = [], []
    for _ in range(ARGS.requests):
        t = time.perf_counter()
        client.post(url, data={"job_id": "m"}, files=files)
        http.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        in_process_one(net, image)
        local.append(1000 * (time.perf_counter() - t))
    direct = asyncio.run(over_nats(image))
    print(f"classify_one  ({ARGS.requests} requests, threads={ARGS.threads})")
    rows = (
        ("HTTP (gateway→NATS→inference)", http),
        ("NATS request to inference", direct),
        ("in process", local),
    )
    for name, values in rows:
        print(
            f"  {name:32s} p50 {statistics.median(values):7.2f} ms   p99 {pct(values, 0.99):7.2f} ms"
        )
    overhead = statistics.median(http) - statistics.median(local)
    print(
        f"  overhead at p50: {overhead:+.2f} ms (goal ≤ +10 ms) -> {'OK' if overhead <= 10 else 'MISSED'}"
    )

    listing = "".join(f"{p.name} {i % 10}\n" for i, p in enumerate(paths)).encode()
    many_url = "/models/images/classification/classify_many.json"
    rates_http, rates_local = [], []
    for _ in range(3):
        t = time.perf_counter()
        r = client.post(
            many_url,
            data={"job_id": "m", "image_folder": str(images)},
            files={"image_list": ("l.txt", listing, "text/plain")},
        )
        assert r.status_code == 200 and len(r.json()["classifications"]) == len(paths), r.text[:300]
        rates_http.append(len(paths) / (time.perf_counter() - t))
        t = time.perf_counter()
        in_process_many(net, paths)
        rates_local.append(len(paths) / (time.perf_counter() - t))
    rates_nats = asyncio.run(many_over_nats(listing, images, len(paths)))
    h, lo = statistics.median(rates_http), statistics.median(rates_local)
    print(f"classify_many ({len(paths)} images of 28×28, 3 rounds, median)")
    rows = (
        ("HTTP (one synchronous request)", rates_http),
        ("NATS request to inference", rates_nats),
        ("in process (decode + batch 64)", rates_local),
    )
    for name, rates in rows:
        each = ", ".join(f"{r:.0f}" for r in rates)
        print(f"  {name:32s} {statistics.median(rates):8.0f} img/s   (rounds: {each})")
    print(f"  ratio {h / lo:.2f}× (goal ≥ 0.9×) -> {'OK' if h / lo >= 0.9 else 'MISSED'}")


if __name__ == "__main__":
    main()
