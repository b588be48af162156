"""Photos in a turn: intake checks, OCR and product matching, loaded once per process.

What a photo contributes to a turn is an `ImageReading`: the text on it, the model numbers
and order numbers in that text, and the catalog products it resembles. The assistant adds
these to the retrieval query, to the slots and to the entities in focus, and its reply
says what was read so the caller can correct it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from server.dialogue import Slots, extract_slots
from server.errors import ConfigError, InvalidArgumentError

if TYPE_CHECKING:
    from server.config import Settings
    from vision.intake import ImageLimits
    from vision.matching import ProductMatch, ProductMatcher
    from vision.ocr import OcrEngine

logger = logging.getLogger(__name__)

# Text read from a photo that goes into the retrieval query, in characters.
MAX_QUERY_CHARS_FROM_IMAGE = 200
# Text read from a photo that the reply repeats when it found no code or product.
PREFIX_TEXT_CHARS = 40


@dataclass(frozen=True)
class ImageReading:
    """What one photo showed.

    Attributes:
        text: the recognized lines joined with newlines; empty when none.
        slots: order numbers, phone numbers and product codes found in `text`.
        matches: catalog products the photo resembles, best first.
        format: the detected image format (JPEG, PNG, WEBP, GIF, HEIF).
    """

    text: str
    slots: Slots
    matches: tuple[ProductMatch, ...] = ()
    format: str = ""
    # The decoded RGB photo, for a VLM engine.
    image: object = field(default=None, repr=False, compare=False)
    # Milliseconds spent in intake, OCR and matching.
    latency_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def product(self) -> ProductMatch | None:
        """The best catalog match above the matcher's threshold, or None."""
        if self.matches and self.matches[0].above_threshold:
            return self.matches[0]
        return None

    def query_text(self) -> str:
        """Return what the photo adds to the retrieval query."""
        parts = [self.product.title] if self.product else []
        parts.append(self.text.replace("\n", " ")[:MAX_QUERY_CHARS_FROM_IMAGE])
        return " ".join(p for p in parts if p)


def image_prefix(reading: ImageReading, locale: str) -> str:
    """Return the sentences that tell the caller what the photo showed.

    A model number or else an order number that was read, then the matched catalog
    product; the start of the text when neither was found. The caller can then correct
    a misreading.
    """
    from rag.phrases import phrase

    sentences = []
    if reading.slots.product_codes:
        sentences.append(phrase("image_code", locale, value=reading.slots.product_codes[0]))
    elif reading.slots.order_numbers:
        sentences.append(phrase("image_order", locale, value=reading.slots.order_numbers[0]))
    if reading.product is not None:
        sentences.append(phrase("image_product", locale, value=reading.product.title))
    if not sentences and reading.text:
        first = reading.text.replace("\n", " ")[:PREFIX_TEXT_CHARS]
        sentences.append(phrase("image_text", locale, value=first))
    return "".join(sentences)


@dataclass
class VisionEngines:
    """The process's OCR engine and product matcher; either may be None when disabled."""

    limits: ImageLimits
    ocr: OcrEngine | None = None
    matcher: ProductMatcher | None = None
    # Answers photo turns when set; otherwise the text answer engine answers them.
    vlm: object | None = None
    catalog_close: list = field(default_factory=list)

    def read(self, tenant: str, data: bytes, field_name: str = "image") -> ImageReading:
        """Check, decode and understand one photo.

        Raises:
            InvalidArgumentError: the photo is empty, corrupted, too large or of an
                unsupported format, or image input is disabled on this server.
        """
        if self.ocr is None and self.matcher is None:
            raise InvalidArgumentError(
                field_name, f"{len(data)} bytes", "image input is disabled on this server"
            )
        from vision.intake import load_image

        latency: dict[str, float] = {}
        started = time.perf_counter()
        decoded = load_image(data, self.limits, field_name)
        latency["image_intake"] = _ms_since(started)

        started = time.perf_counter()
        text = self.ocr.read(decoded.image).text if self.ocr is not None else ""
        latency["ocr"] = _ms_since(started)

        started = time.perf_counter()
        matches: tuple = ()
        if self.matcher is not None and self.matcher.catalog.count(tenant):
            matches = tuple(self.matcher.match(tenant, decoded.image))
        latency["image_match"] = _ms_since(started)
        return ImageReading(
            text, extract_slots(text), matches, decoded.format, decoded.image, latency
        )

    def close(self) -> None:
        for close in self.catalog_close:
            close()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def build_vision_engines(
    ocr_engine: str,
    image_match: str,
    *,
    data_dir: Path,
    qdrant_url: str | None,
    qdrant_api_key: str | None,
    max_image_bytes: int,
    max_image_pixels: int,
    match_threshold: float | None,
    ocr: OcrEngine | None = None,
) -> VisionEngines:
    """Load the configured engines; `none` disables one.

    Raises:
        ConfigError: an unknown engine or a missing package, with the install command.
    """
    try:
        from vision.intake import ImageLimits
    except ImportError as exc:
        raise ConfigError(
            f"image input needs the vision extra: pip install 'kefu[vision]' ({exc})"
        ) from exc
    engines = VisionEngines(ImageLimits(max_bytes=max_image_bytes, max_pixels=max_image_pixels))
    if ocr_engine == "rapidocr":
        from vision.ocr import RapidOcrEngine

        engines.ocr = ocr or RapidOcrEngine()
    elif ocr_engine != "none":
        raise ConfigError(f"invalid ocr_engine={ocr_engine!r}: accepted values are rapidocr, none")

    if image_match == "efficientnet":
        engines.matcher = _build_matcher(
            data_dir, qdrant_url, qdrant_api_key, engines.limits, match_threshold
        )
        engines.catalog_close.append(engines.matcher.catalog.close)
    elif image_match != "none":
        raise ConfigError(
            f"invalid image_match={image_match!r}: accepted values are efficientnet, none"
        )
    return engines


def vision_engines_from_settings(
    settings: Settings, ocr_engine: str | None = None, ocr: OcrEngine | None = None
) -> VisionEngines:
    """Build the vision engines that `settings` name; `ocr_engine` overrides the setting."""
    return build_vision_engines(
        ocr_engine or settings.ocr_engine,
        settings.image_match,
        data_dir=settings.data_dir,
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        match_threshold=settings.image_match_threshold,
        ocr=ocr,
    )


def _build_matcher(data_dir, qdrant_url, qdrant_api_key, limits, threshold) -> ProductMatcher:
    from vision.catalog import ImageCatalog, open_image_store
    from vision.embed import EfficientNetLite0Embedder
    from vision.matching import DEFAULT_THRESHOLD, ProductMatcher

    embedder = EfficientNetLite0Embedder.shared()
    store = open_image_store(
        data_dir=data_dir, dim=embedder.dim, qdrant_url=qdrant_url, qdrant_api_key=qdrant_api_key
    )
    catalog = ImageCatalog(store, embedder, limits=limits)
    return ProductMatcher(
        catalog, embedder, threshold if threshold is not None else DEFAULT_THRESHOLD
    )


class PhotoAnswerEngine:
    """Adapts a VLM engine to the answer-engine interface for one photo turn.

    The VLM sees the photo, the question and the retrieved passages; the citations are
    the passages it was given.
    """

    name = "vlm"

    def __init__(self, vlm, image, context_passages: int = 3) -> None:
        self.vlm = vlm
        self.image = image
        self.context_passages = context_passages

    def stream(self, request):
        from dataclasses import replace

        from rag.answer import FinalAnswer, citation_of
        from vision.vlm import VlmRequest

        hits = request.retrieval.hits[: self.context_passages]
        vlm_request = VlmRequest(
            question=request.question,
            image=self.image,
            context_passages=tuple(h.text for h in hits),
            locale=request.locale,
            cancel=request.cancel,
        )
        for event in self.vlm.stream(vlm_request):
            if isinstance(event, FinalAnswer):
                yield replace(event, citations=tuple(citation_of(h) for h in hits))
            else:
                yield event


def build_vlm(engine: str, triton_url: str, triton_model: str, model_dir: Path | None):
    """Create the configured VLM engine, or None for `none`.

    Raises:
        ConfigError: an unknown engine or missing settings, package or folder.
        UnavailableError: the Triton server cannot be reached.
    """
    if engine == "none":
        return None
    if engine == "triton":
        if not triton_url or not triton_model:
            raise ConfigError("vlm_engine='triton' needs vlm_triton_url and vlm_triton_model")
        from vision.vlm import TritonVlmEngine

        return TritonVlmEngine(triton_url, triton_model)
    if engine == "transformers":
        if model_dir is None:
            raise ConfigError("vlm_engine='transformers' needs vlm_model_dir, a Qwen-VL folder")
        from vision.vlm import TransformersVlmEngine

        return TransformersVlmEngine(model_dir)
    raise ConfigError(
        f"invalid vlm_engine={engine!r}: accepted values are none, triton, transformers"
    )
