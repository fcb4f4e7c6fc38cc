"""load_image: DIGITS's mode rules, transparency on white, odd formats, broken files."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_imaging import CEILING_PIXELS, MAX_PIXELS, ImageLoadError, ImageTooLarge, load_image
from tests.imaging.bombs import chunk, png_bomb


def _png(image: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **params)
    return buf.getvalue()


def test_rgba_is_composited_on_white() -> None:
    """A fully transparent pixel becomes white, an opaque one keeps its colour."""
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 0))
    rgba.putpixel((3, 1), (0, 0, 255, 255))
    image = load_image(_png(rgba), 3)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((3, 1)) == (0, 0, 255)


def test_half_transparent_rgba_blends_with_white() -> None:
    """A half transparent black pixel comes out mid grey."""
    image = load_image(_png(Image.new("RGBA", (2, 2), (0, 0, 0, 128))), 3)
    assert all(abs(v - 127) <= 1 for v in image.getpixel((0, 0)))


def test_palette_with_transparency_uses_white_for_transparent_entries() -> None:
    """A P image whose index 0 is transparent shows white there and its colour elsewhere."""
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    image = load_image(_png(pal, transparency=0), 3)
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (0, 200, 0)


def test_la_becomes_grayscale_on_white() -> None:
    """LA with a transparent pixel gives a white L pixel when one channel is asked."""
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    image = load_image(_png(la), 1)
    assert image.mode == "L"
    assert list(image.getdata()) == [255, 40]


def test_cmyk_jpeg_becomes_rgb() -> None:
    """A CMYK JPEG loads as RGB with the expected colour (pure cyan)."""
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(buf, "JPEG", quality=95)
    image = load_image(buf.getvalue(), 3)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((4, 4))
    assert r < 30 and g > 225 and b > 225


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    """A 16-bit grayscale PNG keeps its gradient, scaled by 1/256."""
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image(path, 1)
    assert image.mode == "L"
    assert np.array_equal(np.asarray(image).ravel(), np.arange(256))


def test_sixteen_bit_png_as_color_replicates_the_channel(tmp_path: Path) -> None:
    """A 16-bit grayscale PNG asked as colour gives three equal channels."""
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(path)
    assert load_image(path, 3).getpixel((1, 1)) == (255, 255, 255)


def test_color_to_grayscale_and_back() -> None:
    """RGB asked as one channel gives L; L asked as three channels gives equal RGB."""
    assert load_image(_png(Image.new("RGB", (2, 2), (255, 0, 0))), 1).mode == "L"
    assert load_image(_png(Image.new("L", (2, 2), 77)), 3).getpixel((0, 0)) == (77, 77, 77)


def test_truncated_file_raises_image_load_error(tmp_path: Path) -> None:
    """A PNG cut in half is refused with ImageLoadError, not a crash or a half image."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _png(Image.fromarray(noise))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError):
        load_image(path, 3)


def test_truncated_jpeg_raises_image_load_error() -> None:
    """A JPEG cut short is refused with ImageLoadError."""
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG")
    with pytest.raises(ImageLoadError):
        load_image(buf.getvalue()[:300], 3)


def test_text_file_and_missing_file_raise_image_load_error(tmp_path: Path) -> None:
    """Bytes that are no image, and a path that does not exist, both give ImageLoadError."""
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image at all")
    with pytest.raises(ImageLoadError):
        load_image(fake, 3)
    with pytest.raises(ImageLoadError):
        load_image(tmp_path / "missing.png", 3)


def test_decompression_bomb_is_refused_from_its_header_naming_the_limit() -> None:
    """A 194 KB PNG declaring 10000×10000 16-bit pixels is refused, naming count and limit."""
    with pytest.raises(ImageTooLarge, match="100000000 pixels, the limit is 25000000") as e:
        load_image(png_bomb(), 1, max_pixels=25_000_000)
    assert (e.value.pixels, e.value.limit) == (100_000_000, 25_000_000)


def test_pixel_limit_is_a_parameter_and_defaults_to_25_megapixels() -> None:
    """The caller's limit applies (an image at the limit loads, one pixel over does not)."""
    assert MAX_PIXELS == 25_000_000
    assert load_image(_png(Image.new("L", (10, 10))), 1, max_pixels=100).size == (10, 10)
    with pytest.raises(ImageTooLarge, match="10×11 = 110 pixels, the limit is 100"):
        load_image(_png(Image.new("L", (10, 11))), 1, max_pixels=100)


def test_an_image_over_pillows_ceiling_is_refused_as_too_large() -> None:
    """A header past Pillow's own guard (its DecompressionBombError) is still ImageTooLarge."""
    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge, match="the limit is"):
        load_image(png, 1, max_pixels=10 * CEILING_PIXELS)


def test_pillows_warning_past_its_ceiling_is_too_large_whether_or_not_it_raises() -> None:
    """Between Pillow's ceiling and twice it Pillow only warns: as an error (pytest, strict
    deployments) it is ImageTooLarge; ignored, our own header check still refuses."""
    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge, match=f"over {CEILING_PIXELS} pixels"):
            load_image(png, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge, match="40000×40000 = 1600000000 pixels"):
            load_image(png, 1)


MEASURE = """
import resource, sys
from tests.imaging.bombs import chunk, png_bomb
from digits_imaging import ImageTooLarge, load_image
bomb = png_bomb()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(bomb, 1)
except ImageTooLarge:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_decompression_bomb_is_never_decoded() -> None:
    """Refusing the bomb costs no memory: a fresh process's peak RSS grows by under 20 MB
    (decoding it would take over 200 MB)."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], cwd=root, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) < 20 * 1024, out.stdout  # ru_maxrss is in KiB on Linux


def test_exif_orientation_is_applied() -> None:
    """A JPEG tagged 'rotate 90' comes out with width and height swapped."""
    image = Image.new("RGB", (8, 4), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue(), 3).size == (4, 8)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_wide_integer_modes_keep_the_high_byte(mode: str) -> None:
    """16-bit pixels in any byte order (and 32-bit I) load as L with value v // 256."""
    image = Image.new(mode, (2, 2), 0x1234)
    loaded = load_image(_tiff(image), 1)
    assert loaded.mode == "L" and loaded.getpixel((0, 0)) == 0x12


def _tiff(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "TIFF")
    return buf.getvalue()


def test_broken_exif_does_not_stop_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """If reading EXIF orientation fails, the image still loads as stored."""
    from PIL import ImageOps

    def broken(image):
        raise SyntaxError("bad exif")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_image(_png(Image.new("RGB", (3, 2))), 3).size == (3, 2)


def test_jpeg_draft_decodes_at_reduced_scale_but_never_below_the_asked_size() -> None:
    """A large JPEG with min_size is decoded smaller, each side still at least the asked size."""
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (10, 200, 30)).save(buf, "JPEG")
    full = load_image(buf.getvalue(), 3)
    small = load_image(buf.getvalue(), 3, min_size=(256, 100))
    assert full.size == (1600, 1200)
    assert small.size == (400, 300)  # 1/4 scale: the smaller side stays >= 256
    assert small.mode == "RGB" and small.getpixel((5, 5))[1] > 180
    gray = load_image(buf.getvalue(), 1, min_size=(32, 32))
    assert gray.mode == "L" and gray.size == (200, 150)  # 1/8 is the smallest DCT scale


def test_min_size_leaves_png_untouched() -> None:
    """Only JPEG has a reduced-scale decoder; other formats decode at full size."""
    buf = io.BytesIO()
    Image.new("RGB", (640, 480)).save(buf, "PNG")
    assert load_image(buf.getvalue(), 3, min_size=(32, 32)).size == (640, 480)
