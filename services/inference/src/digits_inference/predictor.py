"""Load exported networks, preprocess an image as the dataset did, forward, postprocess."""

from __future__ import annotations

import asyncio
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import gluon

from digits_imaging import load_image, resize_image
from digits_inference.visualize import Explainer
from digits_proto.inference import Visualizations


def to_chw(pixels: np.ndarray) -> np.ndarray:
    """H×W (grey) or H×W×C uint8 pixels → float32 C×H×W, values 0–255 (the network's input)."""
    array = pixels.astype(np.float32)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def center_crop(chw: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centered `height`×`width` window of a C×H×W array (unchanged if already that size)."""
    _, h, w = chw.shape
    top, left = (h - height) // 2, (w - width) // 2
    return chw[:, top : top + height, left : left + width]


def preprocess(
    image: bytes,
    width: int,
    height: int,
    channels: int,
    resize_mode: str,
    input_shape: Sequence[int],
) -> np.ndarray:
    """Decode, resize as the dataset did, center-crop to `input_shape`: a 1×C×H×W batch.

    Raises `digits_imaging.ImageLoadError` when the bytes are not a decodable image.
    """
    resized = resize_image(load_image(image, channels), width, height, resize_mode)
    chw = center_crop(to_chw(np.asarray(resized)), input_shape[1], input_shape[2])
    return chw[np.newaxis]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from one sample's logits (float64, shifted by the max for stability)."""
    z = logits.astype(np.float64).ravel()
    e = np.exp(z - z.max())
    return e / e.sum()


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The `k` best `(label, percent)` pairs, best first; outputs without a label are ignored.

    As DIGITS: an index ≥ len(labels) (a net with too many outputs) is skipped, the percent is
    rounded to 2 decimals; ties keep the lower index first.
    """
    order = np.argsort(-probs, kind="stable")
    ranked = [int(i) for i in order if i < len(labels)][:k]
    return [(labels[i], round(100.0 * float(probs[i]), 2)) for i in ranked]


def load_net(symbol_file: Path, params_file: Path) -> gluon.SymbolBlock:
    """Import an exported network on the CPU, hybridized."""
    with warnings.catch_warnings():
        # The exported graph does not record the input's dtype; it is float32, as we feed it.
        warnings.filterwarnings("ignore", message="Cannot decide type", category=UserWarning)
        net = gluon.SymbolBlock.imports(str(symbol_file), ["data"], str(params_file), ctx=mx.cpu())
    net.hybridize()
    return net


class NetCache:
    """Loaded networks in a least-recently-used cache bounded by count.

    Only the predictor's worker thread touches it, so it needs no lock.
    """

    def __init__(self, max_items: int, on_load: Callable[[], None] | None = None):
        self.max_items = max(1, max_items)
        self.on_load = on_load
        self.loads = 0
        self._nets: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The network under `key`, loaded with `load()` on a miss."""
        if key in self._nets:
            self._nets.move_to_end(key)
            return self._nets[key]
        net = load()
        self.loads += 1
        if self.on_load is not None:
            self.on_load()
        self._nets[key] = net
        while len(self._nets) > self.max_items:
            self._nets.popitem(last=False)
        return net

    def __len__(self) -> int:
        return len(self._nets)


class Predictor:
    """Runs decode and forward passes on one dedicated thread, off the event loop.

    One thread serializes every MXNet call (the engine is not meant to be driven from several
    Python threads at once) and keeps NATS heartbeats and other requests flowing meanwhile.
    """

    def __init__(self, cache_size: int, on_load: Callable[[], None] | None = None):
        self.cache = NetCache(cache_size, on_load)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mxnet")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the predictor's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def preprocess(self, image: bytes, **how: Any) -> np.ndarray:
        """`preprocess(image, **how)` on the predictor's thread (decoding is CPU work too)."""
        return await self.run(lambda: preprocess(image, **how))

    async def probabilities(
        self, key: Hashable, symbol_file: Path, params_file: Path, batch: np.ndarray
    ) -> np.ndarray:
        """Softmax over the network's logits, one row per sample of `batch`."""
        return await self.run(self._forward, key, symbol_file, params_file, batch)

    async def explain(
        self,
        key: Hashable,
        symbol_file: Path,
        params_file: Path,
        batch: np.ndarray,
        labels: tuple[str, ...],
    ) -> Visualizations:
        """Every layer's activation and weights, and Grad-CAM of the top class, for one image."""

        def work() -> Visualizations:
            shape = tuple(batch.shape[1:])
            explainer = self.cache.get(
                ("explain", key), lambda: Explainer(symbol_file, params_file, shape)
            )
            return explainer.explain(batch, labels)

        return await self.run(work)

    def forward_here(
        self, key: Hashable, symbol_file: Path, params_file: Path, batch: np.ndarray
    ) -> np.ndarray:
        """Softmax rows for `batch`, on the calling thread: only for work already `run` here."""
        return self._forward(key, symbol_file, params_file, batch)

    def _forward(
        self, key: Hashable, symbol_file: Path, params_file: Path, batch: np.ndarray
    ) -> np.ndarray:
        net = self.cache.get(key, lambda: load_net(symbol_file, params_file))
        logits = net(mx.nd.array(batch, ctx=mx.cpu(), dtype=np.float32)).asnumpy()
        logits = logits.reshape(logits.shape[0], -1)
        return np.stack([softmax(row) for row in logits])

    def close(self) -> None:
        """Stop the worker thread once its current job is done."""
        self._executor.shutdown(wait=True, cancel_futures=True)
