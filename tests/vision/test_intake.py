"""Tests of vision.intake: limits, format detection and decoding to upright RGB."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from server.errors import FailedPreconditionError, InvalidArgumentError
from tests.vision.conftest import edge_case_image
from vision import intake
from vision.intake import DecodedImage, ImageAssembler, ImageLimits, load_image, to_rgb

LIMITS = ImageLimits()


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def load_file(name: str) -> DecodedImage:
    return load_image(edge_case_image(name).read_bytes(), LIMITS)


def raw_image(name: str) -> Image.Image:
    """Open an edge-case file with plain Pillow: no orientation, no conversion."""
    with Image.open(edge_case_image(name)) as opened:
        opened.load()
        return opened.copy()


def png_header_only_bomb(width: int, height: int) -> bytes:
    """Build a valid 1-bit greyscale PNG of one colour; zlib makes it a few kB."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture
def forbid_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any decode of pixel data fail the test, to prove a rejection came first."""

    def fail_load(self):
        raise AssertionError(f"pixels of a {self.size} image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_load)


# --- limits ---------------------------------------------------------------------------


def test_limits_reject_nonpositive_bytes():
    with pytest.raises(InvalidArgumentError) as caught:
        ImageLimits(max_bytes=0)
    assert caught.value.field == "image_limits.max_bytes"


def test_limits_reject_pixels_over_pillow_threshold():
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(InvalidArgumentError) as caught:
        ImageLimits(max_pixels=Image.MAX_IMAGE_PIXELS + 1)
    assert caught.value.field == "image_limits.max_pixels"


def test_empty_upload_rejected():
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(b"", LIMITS, field_name="photo")
    assert caught.value.field == "photo"
    assert caught.value.value == "0 bytes"
    assert "image corrupted" in caught.value.reason


def test_50_mb_upload_rejected_before_parsing(forbid_pixel_decoding):
    data = b"\xff\xd8\xff\xe0" + bytes(50 * 1000 * 1000)
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(data, LIMITS)
    assert time.perf_counter() - started < 0.5
    assert caught.value.value == f"{len(data)} bytes"
    assert "10485760 bytes" in caught.value.reason
    assert "10 MiB" in caught.value.reason


def test_20000_square_png_rejected_without_decoding(forbid_pixel_decoding):
    data = png_header_only_bomb(20_000, 20_000)
    assert len(data) < LIMITS.max_bytes
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(data, LIMITS)
    assert time.perf_counter() - started < 1.0
    assert "pixels" in caught.value.reason


def test_pixel_limit_applies_below_pillow_threshold(forbid_pixel_decoding):
    # 7000 x 6000 = 42 M pixels: over the default 40 M limit, under Pillow's own threshold.
    data = png_header_only_bomb(7_000, 6_000)
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(data, LIMITS)
    assert "7000x6000 = 42000000 pixels" in caught.value.reason
    assert "limit of 40000000 pixels" in caught.value.reason


def test_decompression_bomb_gif_rejected_quickly(forbid_pixel_decoding):
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as caught:
        load_file("decompression_bomb.gif")
    assert time.perf_counter() - started < 1.0
    assert "too many pixels" in caught.value.reason


def test_pillow_globals_unchanged():
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with pytest.raises(InvalidArgumentError):
        load_file("decompression_bomb.gif")
    load_image(encode(Image.new("RGB", (8, 8)), "PNG"), LIMITS)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- damaged and unsupported files ----------------------------------------------------


def test_jpeg_cut_at_60_percent_rejected():
    noise = np.random.default_rng(7).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=90)
    cut = data[: int(len(data) * 0.6)]
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(cut, LIMITS)
    assert caught.value.value == f"{len(cut)} bytes"
    assert caught.value.reason.startswith("image corrupted")


def test_truncated_png_rejected():
    noise = np.random.default_rng(8).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(data[: len(data) // 2], LIMITS)
    assert caught.value.reason.startswith("image corrupted")


def test_random_bytes_rejected():
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(b"this is not an image at all", LIMITS)
    assert "not an image" in caught.value.reason
    assert "JPEG, PNG, WebP" in caught.value.reason


def test_bmp_rejected_as_unsupported():
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(encode(Image.new("RGB", (10, 10)), "BMP"), LIMITS)
    assert caught.value.reason.startswith("unsupported format BMP")


def test_pgm_rejected_as_unsupported():
    with pytest.raises(InvalidArgumentError) as caught:
        load_file("hopper_16bit.pgm")
    assert caught.value.reason.startswith("unsupported format PPM")


def test_png_named_jpg_detected_as_png(tmp_path):
    path = tmp_path / "label.jpg"
    path.write_bytes(encode(Image.new("RGB", (30, 20), (10, 200, 30)), "PNG"))
    decoded = load_image(path.read_bytes(), LIMITS)
    assert decoded.format == "PNG"
    assert decoded.image.getpixel((5, 5)) == (10, 200, 30)


# --- accepted formats and conversions -------------------------------------------------


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_accepted_format_decodes(image_format):
    data = encode(Image.new("RGB", (64, 48), (255, 0, 0)), image_format)
    decoded = load_image(data, LIMITS)
    assert decoded.format == image_format
    assert decoded.image.mode == "RGB"
    assert decoded.size == (64, 48)
    assert decoded.original_size == (64, 48)
    assert decoded.frame_count == 1
    red, green, blue = decoded.image.getpixel((32, 24))
    assert red > 240 and green < 15 and blue < 15


def test_heif_decodes():
    if not intake.heif_available():
        pytest.skip("pillow-heif is not installed: pip install 'kefu[vision]'")
    decoded = load_file("hopper.heif")
    assert decoded.format == "HEIF"
    assert decoded.image.mode == "RGB"
    assert decoded.size == (128, 128)


def test_heif_without_pillow_heif_is_unsupported(monkeypatch):
    monkeypatch.setattr(intake, "_heif_registered", False)
    with pytest.raises(InvalidArgumentError) as caught:
        load_file("hopper.heif")
    assert caught.value.reason.startswith("unsupported format HEIF")
    assert "JPEG, PNG, WebP, GIF (first frame) and HEIC/HEIF" in caught.value.reason
    assert "pip install 'kefu[vision]'" in caught.value.reason


def test_exif_orientation_3_rotated_180():
    decoded = load_file("hopper_orientation_3.jpg")
    expected = raw_image("hopper_orientation_3.jpg").transpose(Image.Transpose.ROTATE_180)
    assert decoded.size == (128, 128)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(expected.convert("RGB")))


def test_exif_orientation_6_rotated_90_clockwise():
    decoded = load_file("hopper_orientation_6.jpg")
    expected = raw_image("hopper_orientation_6.jpg").transpose(Image.Transpose.ROTATE_270)
    assert decoded.size == (128, 128)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(expected.convert("RGB")))


def test_exif_orientation_8_swaps_dimensions():
    decoded = load_file("orientation_rectangle.jpg")
    assert decoded.original_size == (2, 1)
    assert decoded.size == (1, 2)


def test_exif_orientation_6_upright_corner():
    # A landscape photo stored sideways: orientation 6 means "rotate 90° clockwise".
    stored = Image.new("RGB", (80, 40), "white")
    stored.paste((255, 0, 0), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = load_image(encode(stored, "JPEG", quality=95, exif=exif), LIMITS)
    assert decoded.original_size == (80, 40)
    assert decoded.size == (40, 80)
    red, green, blue = decoded.image.getpixel((35, 4))
    assert red > 200 and green < 60 and blue < 60


def test_cmyk_jpeg_becomes_rgb():
    decoded = load_file("pil_sample_cmyk.jpg")
    expected = raw_image("pil_sample_cmyk.jpg").convert("RGB")
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((50, 50)) == expected.getpixel((50, 50))


def test_cmyk_cyan_sample_pixel():
    cyan = Image.new("CMYK", (32, 32), (255, 0, 0, 0))
    decoded = load_image(encode(cyan, "JPEG", quality=95), LIMITS)
    red, green, blue = decoded.image.getpixel((16, 16))
    assert red < 15
    assert green > 240
    assert blue > 240


def test_16bit_grey_png_keeps_full_range():
    samples = np.full((16, 16), 32896, dtype=np.uint16)
    samples[0, 0] = 65535
    data = encode(Image.fromarray(samples), "PNG")
    decoded = load_image(data, LIMITS)
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((8, 8)) == (128, 128, 128)
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_16bit_pgm_converted_by_to_rgb():
    raw = raw_image("hopper_16bit.pgm")
    assert raw.mode in ("I", "I;16")
    value = raw.getpixel((64, 64))
    expected = round(value / 257)
    assert to_rgb(raw).getpixel((64, 64)) == (expected, expected, expected)


def test_animated_gif_first_frame():
    decoded = load_file("iss634.gif")
    assert decoded.format == "GIF"
    assert decoded.frame_count == 42
    assert decoded.size == (245, 245)
    first = raw_image("iss634.gif").convert("RGB")
    assert np.array_equal(np.asarray(decoded.image), np.asarray(first))


def test_apng_16bit_first_frame():
    decoded = load_file("mode_16bit.png")
    assert decoded.format == "PNG"
    assert decoded.frame_count == 3
    assert decoded.image.mode == "RGB"
    assert decoded.size == (128, 64)


@pytest.mark.parametrize("name", ["transparent.png", "pil123rgba.png"])
def test_alpha_composited_on_white(name):
    raw = raw_image(name).convert("RGBA")
    alpha = np.asarray(raw)[:, :, 3]
    decoded = load_file(name)
    assert decoded.image.mode == "RGB"

    transparent = np.argwhere(alpha == 0)
    assert len(transparent), f"{name} has no fully transparent pixel"
    y, x = transparent[0]
    assert decoded.image.getpixel((int(x), int(y))) == (255, 255, 255)

    opaque = np.argwhere(alpha == 255)
    y, x = opaque[len(opaque) // 2]
    assert decoded.image.getpixel((int(x), int(y))) == raw.getpixel((int(x), int(y)))[:3]


def test_partial_alpha_blends_with_white():
    half_red = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    decoded = load_image(encode(half_red, "PNG"), LIMITS)
    red, green, blue = decoded.image.getpixel((1, 1))
    assert red == 255
    assert 125 <= green <= 129
    assert green == blue


def test_palette_transparency_becomes_white():
    palette_image = Image.new("P", (8, 8), 1)
    palette_image.putpalette([0, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    palette_image.paste(0, (0, 0, 4, 8))
    data = encode(palette_image, "PNG", transparency=0)
    decoded = load_image(data, LIMITS)
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((6, 1)) == (0, 0, 255)


def test_grey_alpha_becomes_rgb():
    grey_alpha = Image.new("LA", (4, 4), (0, 0))
    grey_alpha.putpixel((3, 3), (40, 255))
    decoded = load_image(encode(grey_alpha, "PNG"), LIMITS)
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.image.getpixel((3, 3)) == (40, 40, 40)


@pytest.mark.parametrize(
    "name",
    [
        "hopper_orientation_3.jpg",
        "hopper_orientation_6.jpg",
        "orientation_rectangle.jpg",
        "pil_sample_cmyk.jpg",
        "iss634.gif",
        "mode_16bit.png",
        "transparent.png",
        "pil123rgba.png",
        "hopper.heif",
    ],
)
def test_edge_case_decodes_to_rgb(name):
    if name.endswith(".heif") and not intake.heif_available():
        pytest.skip("pillow-heif is not installed: pip install 'kefu[vision]'")
    decoded = load_file(name)
    assert decoded.image.mode == "RGB"
    assert decoded.format in intake.ACCEPTED_FORMATS


# --- chunked assembly -----------------------------------------------------------------


def test_assembler_joins_chunks():
    data = encode(Image.new("RGB", (20, 20), (0, 0, 255)), "PNG")
    assembler = ImageAssembler(LIMITS)
    for start in range(0, len(data), 7):
        assembler.add(data[start : start + 7])
    assert assembler.total_bytes == len(data)
    assert load_image(assembler.finish(), LIMITS).image.getpixel((0, 0)) == (0, 0, 255)


def test_assembler_rejects_mid_stream():
    assembler = ImageAssembler(ImageLimits(max_bytes=1000), field_name="image_chunk")
    assembler.add(b"a" * 400)
    assembler.add(b"b" * 400)
    with pytest.raises(InvalidArgumentError) as caught:
        assembler.add(b"c" * 400)
    assert caught.value.field == "image_chunk"
    assert caught.value.value == "at least 1200 bytes"
    assert "limit of 1000 bytes" in caught.value.reason


def test_assembler_rejects_chunk_after_finish():
    assembler = ImageAssembler(LIMITS)
    assembler.add(b"abc")
    assert assembler.finish() == b"abc"
    with pytest.raises(FailedPreconditionError):
        assembler.add(b"d")
