"""resize_image: exact output sizes for every mode, and content kept where DIGITS keeps it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digits_imaging import RESIZE_MODES, resize_image

SIZES = [(10, 20), (20, 10), (33, 7), (16, 16), (1, 50), (1, 1), (10_000, 40), (40, 10_000)]
TARGETS = [(16, 16), (7, 30), (40, 9)]


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("source", SIZES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("image_mode", ["L", "RGB"])
def test_every_mode_gives_exactly_the_asked_size(
    mode: str, source: tuple[int, int], target: tuple[int, int], image_mode: str
) -> None:
    """Whatever the input's shape, the output is exactly width×height in the input's mode."""
    out = resize_image(Image.new(image_mode, source, 90), *target, mode)
    assert out.size == target and out.mode == image_mode


def test_same_size_is_returned_untouched() -> None:
    """An image already at the target size is not resampled."""
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    assert resize_image(image, 8, 8, "crop") is image


def test_unknown_mode_is_refused() -> None:
    """A mode outside the four of DIGITS raises ValueError."""
    with pytest.raises(ValueError, match="resize mode"):
        resize_image(Image.new("L", (4, 4)), 2, 2, "stretch")


def _halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 2] = (255, 0, 0)
    a[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(a)


def test_squash_keeps_everything_and_distorts() -> None:
    """Squash maps the whole input onto the output: left half red, right half blue."""
    out = np.asarray(resize_image(_halves(40, 10), 16, 16, "squash"))
    assert (out[:, :6] == (255, 0, 0)).all() and (out[:, -6:] == (0, 0, 255)).all()


def test_crop_keeps_the_center_and_cuts_the_sides() -> None:
    """Crop of a wide image keeps the central square: a centered green bar stays, edges go."""
    a = np.zeros((10, 40, 3), np.uint8)
    a[:, :10] = (255, 0, 0)  # cut away
    a[:, 15:25] = (0, 255, 0)  # the centre
    out = np.asarray(resize_image(Image.fromarray(a), 10, 10, "crop"))
    assert (out[:, 3:7] == (0, 255, 0)).all()
    assert not (out == (255, 0, 0)).all(axis=2).any()


def test_fill_keeps_the_whole_image_centered_between_noise_bands() -> None:
    """Fill of a wide image keeps it whole in the middle rows and pads above and below."""
    source = Image.new("RGB", (40, 10), (0, 255, 0))
    rng = np.random.default_rng(0)
    out = np.asarray(resize_image(source, 20, 20, "fill", rng=rng))
    assert (out[8:12] == (0, 255, 0)).all()  # the 20×5 image, centred
    assert not (out[:3] == (0, 255, 0)).all()  # noise bands, not image


def test_fill_noise_is_reproducible_with_a_seeded_generator() -> None:
    """The same seed gives the same padding (builds are deterministic)."""
    source = Image.new("L", (30, 10), 128)
    a = resize_image(source, 12, 12, "fill", rng=np.random.default_rng(5))
    b = resize_image(source, 12, 12, "fill", rng=np.random.default_rng(5))
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_half_crop_crops_the_long_side_and_pads_the_short_one() -> None:
    """Half crop of a 4:1 image to a square: the middle survives, rows above and below are noise."""
    source = Image.new("RGB", (40, 10), (0, 0, 255))
    out = np.asarray(resize_image(source, 16, 16, "half_crop", rng=np.random.default_rng(1)))
    # scale = (40/16 + 10/16) / 2 → 25.6×6.4 → 26×6, cropped to 16 wide, padded to 16 high
    assert (out[6:10] == (0, 0, 255)).all()
    assert not (out[:4] == (0, 0, 255)).all()


def test_same_aspect_is_a_plain_resize_in_every_mode() -> None:
    """When the aspect ratio already matches, no crop or padding happens."""
    source = _halves(32, 16)
    expected = np.asarray(resize_image(source, 16, 8, "squash"))
    for mode in RESIZE_MODES:
        assert np.array_equal(np.asarray(resize_image(source, 16, 8, mode)), expected)
