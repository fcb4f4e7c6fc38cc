"""Preprocessing, postprocessing and the network cache, without NATS."""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from digits_imaging import RESIZE_MODES, ImageLoadError
from digits_inference.predictor import (
    NetCache,
    Predictor,
    center_crop,
    load_net,
    preprocess,
    softmax,
    to_chw,
    top_k,
)
from tests.inference.nets import export_net


def png(mode: str, size: tuple[int, int], color: int | tuple[int, int, int]) -> bytes:
    """A solid-colour PNG."""
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("channels", [1, 3])
def test_preprocess_gives_a_float_batch_of_the_dataset_size_for_every_mode(mode, channels) -> None:
    """Any source image becomes a 1×C×H×W float32 batch at the dataset's size, in 0–255."""
    image = png("RGB", (40, 30), (200, 100, 50))
    batch = preprocess(image, 20, 16, channels, mode, (channels, 16, 20))
    assert batch.shape == (1, channels, 16, 20)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 255.0


def test_preprocess_keeps_rgb_order_and_raw_pixel_values() -> None:
    """A pure red image gives 255 in channel 0 and 0 in the others (RGB, not BGR; no scaling)."""
    batch = preprocess(png("RGB", (8, 8), (255, 0, 0)), 8, 8, 3, "squash", (3, 8, 8))
    assert batch[0, 0].min() == 255.0
    assert batch[0, 1:].max() == 0.0


def test_preprocess_converts_colour_to_grey_for_one_channel_datasets() -> None:
    """A colour image on a 1-channel dataset becomes its luminance, one channel."""
    batch = preprocess(png("RGB", (8, 8), (255, 255, 255)), 8, 8, 1, "squash", (1, 8, 8))
    assert batch.shape == (1, 1, 8, 8) and batch.min() == 255.0


def test_preprocess_center_crops_to_the_network_input() -> None:
    """When the network takes a crop, the batch is the centered window of the resized image."""
    batch = preprocess(png("L", (16, 16), 7), 16, 16, 1, "squash", (1, 12, 10))
    assert batch.shape == (1, 1, 12, 10)


def test_preprocess_refuses_bytes_that_are_not_an_image() -> None:
    """Undecodable bytes raise ImageLoadError, which the handler reports as image_file."""
    with pytest.raises(ImageLoadError):
        preprocess(b"not an image at all", 8, 8, 3, "squash", (3, 8, 8))


def test_center_crop_takes_the_middle_window() -> None:
    """Cropping 2×2 out of 4×4 keeps rows and columns 1..2."""
    chw = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert center_crop(chw, 2, 2).tolist() == [[[5.0, 6.0], [9.0, 10.0]]]
    assert center_crop(chw, 4, 4).shape == (1, 4, 4)


def test_to_chw_moves_channels_first() -> None:
    """H×W×C becomes C×H×W and H×W becomes 1×H×W."""
    assert to_chw(np.zeros((5, 7, 3), np.uint8)).shape == (3, 5, 7)
    assert to_chw(np.zeros((5, 7), np.uint8)).shape == (1, 5, 7)


def test_softmax_is_a_distribution_even_for_huge_logits() -> None:
    """Probabilities sum to 1 and large logits do not overflow."""
    probs = softmax(np.array([1000.0, 1001.0, 999.0], np.float32))
    assert probs.sum() == pytest.approx(1.0)
    assert probs.argmax() == 1


def test_top_k_sorts_descending_and_rounds_percent_to_two_decimals() -> None:
    """Best first, `(label, round(100·p, 2))`, at most k entries."""
    probs = np.array([0.123456, 0.654321, 0.222223])
    assert top_k(probs, ["a", "b", "c"], 5) == [("b", 65.43), ("c", 22.22), ("a", 12.35)]
    assert top_k(probs, ["a", "b", "c"], 1) == [("b", 65.43)]


def test_top_k_ignores_outputs_beyond_the_labels() -> None:
    """An output index with no label (a net with too many outputs) is skipped, as DIGITS does."""
    probs = np.array([0.05, 0.15, 0.8])
    assert top_k(probs, ["a", "b"], 5) == [("b", 15.0), ("a", 5.0)]


def test_top_k_keeps_the_lower_index_first_on_ties() -> None:
    """Equal probabilities come out in label order."""
    assert [label for label, _ in top_k(np.array([0.25] * 4), list("abcd"), 3)] == list("abc")


def test_net_cache_loads_once_and_evicts_the_least_recently_used() -> None:
    """A hit does not load again; past the bound the least recently used entry goes."""
    loads: list[str] = []
    cache = NetCache(2, on_load=lambda: loads.append("x"))
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get(key, lambda key=key: key.upper())
    assert cache.loads == 4 and len(loads) == 4  # a, b, c, then b again (evicted by c)
    assert len(cache) == 2


async def test_predictor_runs_the_network_on_its_own_thread(tmp_path) -> None:
    """Forward passes happen off the event loop, and the softmax rows sum to one."""
    symbol, params = export_net(tmp_path, [0.0, 0.5, 1.0], (1, 4, 4))
    predictor = Predictor(2)
    try:
        name = await predictor.run(lambda: threading.current_thread().name)
        assert name.startswith("mxnet")
        probs = await predictor.probabilities("k", symbol, params, np.full((1, 1, 4, 4), 255.0))
        assert probs.shape == (1, 3) and probs[0].argmax() == 2
        assert probs.sum() == pytest.approx(1.0)
    finally:
        predictor.close()


def test_load_net_imports_an_exported_network_without_warnings(tmp_path) -> None:
    """The 'Cannot decide type' warning of SymbolBlock.imports is suppressed locally."""
    symbol, params = export_net(tmp_path, [0.0, 1.0], (3, 4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = load_net(symbol, params)
    assert net is not None
