"""Load exported networks, preprocess an image as the dataset did, forward, postprocess."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import gluon

from digits_imaging import MAX_PIXELS, load_image, resize_image
from digits_inference.netcache import NetCache
from digits_inference.placement import Placement
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
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode, resize as the dataset did, center-crop to `input_shape`: a 1×C×H×W batch.

    Raises `digits_imaging.ImageLoadError` when the bytes are not a decodable image
    (`ImageTooLarge`, before decoding, when its header declares over `max_pixels`).
    """
    chw = pixels(image, width, height, channels, resize_mode, input_shape, max_pixels)
    return chw[np.newaxis].astype(np.float32)


def pixels(
    image: bytes,
    width: int,
    height: int,
    channels: int,
    resize_mode: str,
    input_shape: Sequence[int],
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """`preprocess` before the float conversion: uint8 C×H×W (a view), for batching many
    images into one array that is converted once."""
    # min_size as the datasets packer passes it: a large JPEG is decoded at the same reduced
    # scale there and here, so a training image and an uploaded copy give identical pixels.
    loaded = load_image(image, channels, min_size=(width, height), max_pixels=max_pixels)
    array = np.asarray(resize_image(loaded, width, height, resize_mode))
    chw = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
    return center_crop(chw, input_shape[1], input_shape[2])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from one sample's logits (float64, shifted by the max for stability)."""
    z = logits.astype(np.float64).ravel()
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """`softmax` of every row at once (float64): one NumPy call per batch, not per image."""
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The `k` best `(label, percent)` pairs, best first; outputs without a label are ignored.

    As DIGITS: an index ≥ len(labels) (a net with too many outputs) is skipped, the percent is
    rounded to 2 decimals; ties keep the lower index first.
    """
    order = np.argsort(-probs, kind="stable")
    ranked = [int(i) for i in order if i < len(labels)][:k]
    return [(labels[i], round(100.0 * float(probs[i]), 2)) for i in ranked]


def load_net(
    symbol_file: Path, params_file: Path, ctx: mx.Context | None = None
) -> gluon.SymbolBlock:
    """Import an exported network on `ctx` (the CPU by default), hybridized."""
    with warnings.catch_warnings():
        # The exported graph does not record the input's dtype; it is float32, as we feed it.
        warnings.filterwarnings("ignore", message="Cannot decide type", category=UserWarning)
        net = gluon.SymbolBlock.imports(
            str(symbol_file), ["data"], str(params_file), ctx=ctx or mx.cpu()
        )
    net.hybridize()
    return net


class Predictor:
    """Runs decode and forward passes on one dedicated thread, off the event loop.

    One thread serializes every MXNet call (the engine is not meant to be driven from several
    Python threads at once) and keeps NATS heartbeats and other requests flowing meanwhile.
    """

    def __init__(
        self,
        cache_size: int,
        on_load: Callable[[], None] | None = None,
        *,
        cache_bytes: int = 0,
        placement: Placement | None = None,
        decode_threads: int = 1,
    ):
        self.cache = NetCache(cache_size, on_load, max_bytes=cache_bytes)
        self.placement = placement
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mxnet")
        # Reading and decoding (Pillow releases the GIL) overlap the forward passes.
        threads = max(1, decode_threads)
        self._decoder = ThreadPoolExecutor(threads, thread_name_prefix="decode")
        # Batches a classify-many request keeps queued for decoding: one more than the
        # threads, so that none idles between two batches (and memory stays bounded).
        self.decode_ahead = threads + 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the predictor's thread."""
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queue `fn(*args)` on the predictor's thread now; await the future for its result."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def decode(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Start `fn(*args)` on a decode thread; await the returned future for its result."""
        return asyncio.get_running_loop().run_in_executor(self._decoder, fn, *args)

    def context(self) -> mx.Context:
        """Where the next forward pass runs (call on the event loop: it may start a lease)."""
        return self.placement.context() if self.placement is not None else mx.cpu()

    def forget_context(self, ctx: mx.Context) -> None:
        """Drop the networks loaded on `ctx` (its lease is gone), on the predictor's thread."""
        self._executor.submit(self.cache.drop, lambda key: key[-1] == str(ctx))

    async def preprocess(self, image: bytes, **how: Any) -> np.ndarray:
        """`preprocess(image, **how)` on the predictor's thread (decoding is CPU work too)."""
        return await self.run(lambda: preprocess(image, **how))

    async def probabilities(
        self, key: Hashable, symbol_file: Path, params_file: Path, batch: np.ndarray
    ) -> np.ndarray:
        """Softmax over the network's logits, one row per sample of `batch`."""
        ctx = self.context()
        return await self.run(self._forward, key, symbol_file, params_file, batch, ctx)

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
        self,
        key: Hashable,
        symbol_file: Path,
        params_file: Path,
        batch: np.ndarray,
        ctx: mx.Context | None = None,
    ) -> np.ndarray:
        """Softmax rows for `batch` (float32, or uint8 pixels converted on the way in), on the
        calling thread: only for work already `run` here."""
        return self._forward(key, symbol_file, params_file, batch, ctx or mx.cpu())

    def _forward(
        self,
        key: Hashable,
        symbol_file: Path,
        params_file: Path,
        batch: np.ndarray,
        ctx: mx.Context,
    ) -> np.ndarray:
        net = self.cache.get((key, str(ctx)), lambda: load_net(symbol_file, params_file, ctx))
        logits = net(mx.nd.array(batch, ctx=ctx, dtype=np.float32)).asnumpy()
        logits = logits.reshape(logits.shape[0], -1)
        return softmax_rows(logits)

    def close(self) -> None:
        """Stop the worker thread once its current job is done."""
        self._decoder.shutdown(wait=True, cancel_futures=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
