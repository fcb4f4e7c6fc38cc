"""Inference decodes an image exactly as the datasets packer did when it built the training set."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digits_datasets.packing import EncodeSpec, process_chunk
from digits_inference.predictor import preprocess


def photo_jpeg(width: int, height: int) -> bytes:
    """A smooth, photo-like JPEG (large enough for reduced-scale DCT decoding to apply)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], axis=-1
    ).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.mark.parametrize(
    ("channels", "mode"), [(3, "squash"), (1, "squash"), (3, "crop"), (1, "crop")]
)
def test_an_uploaded_copy_of_a_training_jpeg_gives_the_packed_pixels(
    tmp_path, channels: int, mode: str
) -> None:
    """The packer's raw record and inference's input array are byte-identical for one JPEG."""
    data = photo_jpeg(1200, 700)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    spec = EncodeSpec(width=64, height=48, channels=channels, resize_mode=mode, encoding="none")
    chunk = process_chunk([(str(path), 0)], spec, want_sum=False, seed=0)
    assert not chunk.errors
    packed = np.frombuffer(chunk.records[0][1], np.uint8).reshape(48, 64, channels)
    batch = preprocess(data, 64, 48, channels, mode, [channels, 48, 64])
    ours = batch[0].transpose(1, 2, 0)
    assert batch.dtype == np.float32 and batch.shape == (1, channels, 48, 64)
    np.testing.assert_array_equal(ours, packed.astype(np.float32))


def test_a_large_jpeg_is_decoded_at_the_packers_reduced_scale(tmp_path) -> None:
    """Without the packer's min_size rule the pixels differ: the test above is not vacuous."""
    from digits_imaging import load_image, resize_image

    data = photo_jpeg(1200, 900)
    full = np.asarray(resize_image(load_image(data, 3), 64, 48, "squash"), np.float32)
    ours = preprocess(data, 64, 48, 3, "squash", [3, 48, 64])[0].transpose(1, 2, 0)
    assert not np.array_equal(full, ours)
