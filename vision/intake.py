"""Image intake: size limits, format detection and decoding of customer photos to RGB.

Customers send product labels, order screens and parcel photos from phones, so the
accepted formats are the ones phones and chat apps produce: JPEG, PNG, WebP, GIF and
HEIC/HEIF. The format comes from the bytes alone, through Pillow's own detection; a file
name or a declared MIME type is never consulted.

Every check that bounds work runs before the pixels are decoded:

1. the byte count against `ImageLimits.max_bytes`, before any parsing;
2. the width × height declared in the header against `ImageLimits.max_pixels`, after
   `Image.open` has read the header and before `load()` decodes anything.

Pillow's own decompression-bomb check also runs inside `Image.open`. It raises
`DecompressionBombError` for more than `2 * Image.MAX_IMAGE_PIXELS` pixels, and that error
becomes the same `InvalidArgumentError`. This module never changes `Image.MAX_IMAGE_PIXELS`
or `ImageFile.LOAD_TRUNCATED_IMAGES`, so a truncated file stays an error.

NOTE: for a header between `Image.MAX_IMAGE_PIXELS` and twice that, Pillow emits
`DecompressionBombWarning` inside `Image.open`. The image is then rejected by the
`max_pixels` check, which may not exceed that threshold, so the warning is only a log line.
Silencing it would need `warnings.catch_warnings`, which is not thread-safe before Python
3.14, so it is left alone.

Animated GIF, WebP and APNG files are reduced to their first frame: a photo of a product
or a screen is a still image, and the first frame is the one chat apps show as a preview.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import FailedPreconditionError, InvalidArgumentError

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 10 * MIB
DEFAULT_MAX_PIXELS = 40_000_000

# Pillow format names, as `Image.format` reports them.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")
_ACCEPTED_FOR_HUMANS = "JPEG, PNG, WebP, GIF (first frame) and HEIC/HEIF"

# HEIF brands in the `ftyp` box at byte 4. They only name the format in an error when
# pillow-heif is not installed.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")

# Exceptions Pillow raises for a damaged or truncated file while reading a header or pixels.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError)

# Modes whose samples are 16-bit integers (PNG 16-bit greyscale, PGM with maxval > 255).
_WIDE_INTEGER_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")

_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ImageLimits:
    """Size limits applied to every uploaded image before it is decoded.

    Attributes:
        max_bytes: maximum size of the encoded file, in bytes.
        max_pixels: maximum width × height declared by the file header. It may not exceed
            Pillow's `Image.MAX_IMAGE_PIXELS` (89 478 485 in Pillow 13), above which Pillow
            itself warns about a decompression bomb while opening the file.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not isinstance(self.max_bytes, int) or self.max_bytes <= 0:
            raise InvalidArgumentError(
                "image_limits.max_bytes", self.max_bytes, "use a positive number of bytes"
            )
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if not isinstance(self.max_pixels, int) or self.max_pixels <= 0:
            raise InvalidArgumentError(
                "image_limits.max_pixels", self.max_pixels, "use a positive number of pixels"
            )
        if pillow_limit is not None and self.max_pixels > pillow_limit:
            raise InvalidArgumentError(
                "image_limits.max_pixels",
                self.max_pixels,
                f"use at most {pillow_limit}, Pillow's decompression-bomb threshold",
            )


@dataclass(frozen=True)
class DecodedImage:
    """An uploaded image decoded to upright 8-bit RGB.

    Attributes:
        image: the decoded pixels, mode "RGB", with the EXIF orientation applied.
        format: the format Pillow detected from the bytes: one of `ACCEPTED_FORMATS`.
        original_size: (width, height) as stored in the file, before the EXIF rotation.
        frame_count: frames in the file; only the first one is decoded.
    """

    image: Image.Image
    format: str
    original_size: tuple[int, int]
    frame_count: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image."""
        return self.image.size


def load_image(data: bytes, limits: ImageLimits, field_name: str = "image") -> DecodedImage:
    """Check and decode one uploaded image to upright RGB.

    Args:
        data: the encoded file exactly as uploaded.
        limits: byte and pixel limits, checked before the pixels are decoded.
        field_name: the request field named in errors.

    Returns:
        The first frame as an RGB image, with its format, stored size and frame count.

    Raises:
        InvalidArgumentError: the file is empty, over a limit, damaged, truncated or in a
            format outside `ACCEPTED_FORMATS`.
    """
    size_text = f"{len(data)} bytes"
    if not data:
        raise InvalidArgumentError(field_name, size_text, "image corrupted: the upload is empty")
    if len(data) > limits.max_bytes:
        raise InvalidArgumentError(
            field_name,
            size_text,
            f"image larger than the limit of {limits.max_bytes} bytes "
            f"({limits.max_bytes / MIB:g} MiB); send a smaller or more compressed image",
        )

    _register_heif_opener()
    with _open_header(data, field_name) as opened:
        image_format = opened.format or "unknown"
        original_size = opened.size
        _check_pixels(opened.size, limits, field_name, size_text)
        frame_count = getattr(opened, "n_frames", 1)
        image = _decode_first_frame(opened, field_name, size_text)

    logger.debug(
        "decoded %s image %dx%d, %d frame(s), %d bytes",
        image_format,
        original_size[0],
        original_size[1],
        frame_count,
        len(data),
    )
    return DecodedImage(image, image_format, original_size, frame_count)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB.

    Transparent pixels are composited on white, because labels and screenshots with an
    alpha channel are meant to be seen on a light background. 16-bit and 32-bit integer
    greyscale (modes I;16 and I) keeps its full range scaled to 0-255, where Pillow's
    plain `convert("L")` would clip every value above 255 to white.

    Args:
        image: a loaded image in any mode.

    Returns:
        An image in mode "RGB"; `image` itself when it is already RGB without transparency.
    """
    if image.mode in _WIDE_INTEGER_MODES:
        return _wide_grey_to_rgb(image)
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


class ImageAssembler:
    """Collects an image that arrives in chunks and enforces the byte limit on the way.

    The limit is checked on every chunk, so an oversized upload is rejected as soon as it
    passes `limits.max_bytes` instead of after it has been buffered in full.
    """

    def __init__(self, limits: ImageLimits, field_name: str = "image") -> None:
        self.limits = limits
        self.field_name = field_name
        self._chunks: list[bytes] = []
        self._total_bytes = 0
        self._finished = False

    @property
    def total_bytes(self) -> int:
        """Bytes received so far."""
        return self._total_bytes

    def add(self, chunk: bytes) -> None:
        """Append one chunk.

        Raises:
            InvalidArgumentError: the total passes `limits.max_bytes`.
            FailedPreconditionError: `finish()` was already called.
        """
        if self._finished:
            raise FailedPreconditionError("the image is already complete; start a new one")
        total = self._total_bytes + len(chunk)
        if total > self.limits.max_bytes:
            self._chunks.clear()
            raise InvalidArgumentError(
                self.field_name,
                f"at least {total} bytes",
                f"image larger than the limit of {self.limits.max_bytes} bytes "
                f"({self.limits.max_bytes / MIB:g} MiB); send a smaller or more "
                "compressed image",
            )
        self._chunks.append(bytes(chunk))
        self._total_bytes = total

    def finish(self) -> bytes:
        """Return the whole file and close the assembler to further chunks."""
        self._finished = True
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


_heif_lock = threading.Lock()
_heif_registered: bool | None = None


def heif_available() -> bool:
    """Return whether pillow-heif is installed and its opener is registered with Pillow."""
    return _register_heif_opener()


def _register_heif_opener() -> bool:
    # pillow-heif registers a plugin in Pillow's global registry, so it happens once, on
    # the first decode, and only if the package is installed.
    global _heif_registered
    with _heif_lock:
        if _heif_registered is None:
            try:
                import pillow_heif
            except ImportError:
                logger.info("pillow-heif is not installed; HEIC/HEIF images are rejected")
                _heif_registered = False
            else:
                pillow_heif.register_heif_opener()
                _heif_registered = True
        return _heif_registered


def _accepted_formats() -> tuple[str, ...]:
    if heif_available():
        return ACCEPTED_FORMATS
    return tuple(name for name in ACCEPTED_FORMATS if name != "HEIF")


def _open_header(data: bytes, field_name: str) -> Image.Image:
    # Image.open reads only the header; the pixels are decoded later by load().
    size_text = f"{len(data)} bytes"
    try:
        return Image.open(io.BytesIO(data), formats=_accepted_formats())
    except Image.DecompressionBombError as error:
        raise InvalidArgumentError(
            field_name, size_text, f"image has too many pixels to decode safely: {error}"
        ) from error
    except UnidentifiedImageError as error:
        raise _unidentified_error(data, field_name) from error
    except _DECODE_ERRORS as error:
        raise InvalidArgumentError(
            field_name, size_text, f"image corrupted: the header cannot be read ({error})"
        ) from error


def _unidentified_error(data: bytes, field_name: str) -> InvalidArgumentError:
    size_text = f"{len(data)} bytes"
    detected = _detect_other_format(data)
    if detected is None:
        return InvalidArgumentError(
            field_name,
            size_text,
            f"image corrupted or not an image: no accepted format recognised; "
            f"send {_ACCEPTED_FOR_HUMANS}",
        )
    remedy = f"send {_ACCEPTED_FOR_HUMANS}"
    if detected == "HEIF":
        remedy += "; HEIC/HEIF needs pillow-heif: pip install 'kefu[vision]'"
    return InvalidArgumentError(field_name, size_text, f"unsupported format {detected}; {remedy}")


def _detect_other_format(data: bytes) -> str | None:
    # Only names the format for the error message. Every Pillow plugin may read the header
    # here, but nothing is decoded and the image is discarded.
    try:
        with Image.open(io.BytesIO(data)) as other:
            if other.format:
                return other.format
    except Exception:  # noqa: BLE001 - any failure only means "format unknown"
        pass
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def _check_pixels(
    size: tuple[int, int], limits: ImageLimits, field_name: str, size_text: str
) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidArgumentError(
            field_name, size_text, f"image corrupted: the header declares {width}x{height} pixels"
        )
    if width * height > limits.max_pixels:
        raise InvalidArgumentError(
            field_name,
            size_text,
            f"image of {width}x{height} = {width * height} pixels is over the limit of "
            f"{limits.max_pixels} pixels; send a smaller image",
        )


def _decode_first_frame(opened: Image.Image, field_name: str, size_text: str) -> Image.Image:
    try:
        opened.seek(0)
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        return to_rgb(upright)
    except Image.DecompressionBombError as error:
        raise InvalidArgumentError(
            field_name, size_text, f"image has too many pixels to decode safely: {error}"
        ) from error
    except _DECODE_ERRORS as error:
        raise InvalidArgumentError(field_name, size_text, f"image corrupted: {error}") from error


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    # Samples of I;16* and of I decoded from 16-bit files span 0-65535, so dividing by 257
    # maps 65535 to 255 exactly.
    samples = np.asarray(image, dtype=np.int64)
    grey = np.clip(np.rint(samples / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")
