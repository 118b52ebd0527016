"""Reading single image files: conversions, orientation, and refusals with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlcore.data.images import IMAGE_EXTENSIONS, inspect_image, is_ignored, load_rgb
from tlcore.errors import DataError

RED, BLUE = (220, 20, 20), (20, 20, 220)


def noisy_jpeg(path, size=(64, 48), seed=0, **save_args):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90, **save_args)
    return path


def two_halves(size=(80, 40)) -> Image.Image:
    """Left half red, right half blue: orientation shows in the pixels."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 2, size[1]))
    return im


def close(a, b, tol=30):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_extensions_and_ignored_names():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"} <= IMAGE_EXTENSIONS
    for name in ["__MACOSX/ants/a.jpg", ".DS_Store", "ants/Thumbs.db", "._a.jpg", ".hidden/x.png"]:
        assert is_ignored(name), name
    for name in ["ants/a.jpg", "bees/Photo 1.JPG", "x/y.png"]:
        assert not is_ignored(name), name


def test_plain_jpeg_loads_as_rgb(tmp_path):
    info = inspect_image(noisy_jpeg(tmp_path / "a.jpg"))
    assert (info.width, info.height, info.format) == (64, 48, "JPEG")
    assert info.converted_from is None and not info.exif_rotated
    assert len(info.sha256) == 64
    im = load_rgb(tmp_path / "a.jpg")
    assert im.mode == "RGB" and im.size == (64, 48)


def test_zero_byte_file_is_refused(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        inspect_image(tmp_path / "empty.jpg")
    with pytest.raises(DataError, match="empty file"):
        load_rgb(tmp_path / "empty.jpg")


def test_text_file_named_jpg_is_refused(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n" * 20)
    with pytest.raises(DataError, match="not an image"):
        inspect_image(tmp_path / "notes.jpg")


def test_truncated_jpeg_is_refused(tmp_path):
    data = noisy_jpeg(tmp_path / "full.jpg", size=(200, 150)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        inspect_image(tmp_path / "cut.jpg")
    with pytest.raises(DataError, match="truncated"):
        load_rgb(tmp_path / "cut.jpg")


def test_jpeg_with_png_extension_is_read_by_content(tmp_path):
    path = noisy_jpeg(tmp_path / "photo.png")
    info = inspect_image(path)
    assert info.format == "JPEG" and info.extension_mismatch == "JPEG"
    assert load_rgb(path).size == (64, 48)


def test_cmyk_jpeg_is_converted(tmp_path):
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert inspect_image(tmp_path / "cmyk.jpg").converted_from == "CMYK"
    im = load_rgb(tmp_path / "cmyk.jpg")
    assert im.mode == "RGB" and close(im.getpixel((16, 16)), (255, 0, 0))


def test_16_bit_png_is_rescaled_not_clipped(tmp_path):
    arr = np.full((32, 32), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert inspect_image(tmp_path / "deep.png").converted_from == "16-bit"
    im = load_rgb(tmp_path / "deep.png")
    assert im.mode == "RGB" and close(im.getpixel((5, 5)), (128, 128, 128), tol=2)


def test_palette_png_with_transparency_is_flattened_on_white(tmp_path):
    im = Image.new("P", (32, 32), 1)
    im.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    im.paste(0, (0, 0, 16, 32))  # left half uses the transparent index (black in the palette)
    im.save(tmp_path / "pal.png", transparency=0)
    assert inspect_image(tmp_path / "pal.png").converted_from == "palette with transparency"
    rgb = load_rgb(tmp_path / "pal.png")
    assert rgb.getpixel((4, 4)) == (255, 255, 255)
    assert rgb.getpixel((28, 4)) == (200, 0, 0)


def test_rgba_and_grayscale_are_converted(tmp_path):
    Image.new("RGBA", (20, 20), (0, 0, 255, 0)).save(tmp_path / "clear.png")
    Image.new("L", (20, 20), 77).save(tmp_path / "gray.jpg")
    assert inspect_image(tmp_path / "clear.png").converted_from == "RGBA (transparency)"
    assert load_rgb(tmp_path / "clear.png").getpixel((3, 3)) == (255, 255, 255)
    assert inspect_image(tmp_path / "gray.jpg").converted_from == "grayscale"
    assert close(load_rgb(tmp_path / "gray.jpg").getpixel((3, 3)), (77, 77, 77), tol=3)


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (24, 24), RED), Image.new("RGB", (24, 24), BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    assert inspect_image(tmp_path / "anim.gif").n_frames == 2
    assert close(load_rgb(tmp_path / "anim.gif").getpixel((5, 5)), RED)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held sideways: display rotated 90 degrees clockwise
    two_halves((80, 40)).save(tmp_path / "side.jpg", quality=95, exif=exif)
    info = inspect_image(tmp_path / "side.jpg")
    assert info.exif_rotated and (info.width, info.height) == (40, 80)
    im = load_rgb(tmp_path / "side.jpg")
    assert im.size == (40, 80)
    assert close(im.getpixel((20, 10)), RED)  # the left half is now on top
    assert close(im.getpixel((20, 70)), BLUE)


def test_one_pixel_image_is_readable(tmp_path):
    Image.new("RGB", (1, 1), RED).save(tmp_path / "dot.png")
    info = inspect_image(tmp_path / "dot.png")
    assert (info.width, info.height) == (1, 1)
    assert load_rgb(tmp_path / "dot.png").size == (1, 1)


def test_decompression_bombs_become_data_errors(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "warn.png")  # over the limit: a warning in Pillow
    Image.new("RGB", (300, 300)).save(tmp_path / "bomb.png")  # over twice the limit: an error
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    for name in ("warn.png", "bomb.png"):
        with pytest.raises(DataError, match="decompression bomb"):
            inspect_image(tmp_path / name)
        with pytest.raises(DataError, match="decompression bomb"):
            load_rgb(tmp_path / name)


def test_large_photo_is_loaded_reduced(tmp_path):
    noisy_jpeg(tmp_path / "big.jpg", size=(3000, 2000))
    im = load_rgb(tmp_path / "big.jpg", max_side=1000)
    assert im.size == (1000, 667)
    assert load_rgb(tmp_path / "big.jpg", max_side=None).size == (3000, 2000)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_rgb(tmp_path / "nope.jpg")
