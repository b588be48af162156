"""Text recognition on customer photos: product labels, order screens, shipping labels.

`OcrEngine` is the interface; `RapidOcrEngine` is the offline default. It runs rapidocr
3.10 on onnxruntime (CPU) with the PP-OCRv6 small detection and recognition models and
the PP-OCR mobile v2.0 direction classifier, all three shipped inside the rapidocr wheel.
The model paths are passed explicitly, so rapidocr never reaches its download code. The
recognition model carries its character list in the ONNX metadata, so no dictionary
download happens either.

Recognized text is normalized with `rag.clean.normalize_text` (NFKC, Traditional to
Simplified with OpenCC t2s, whitespace collapse), the same form the knowledge base is
indexed in, so a model or order number read from a photo matches the stored one.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from rag.clean import normalize_text
from server.errors import ConfigError, InvalidArgumentError
from vision.intake import to_rgb

logger = logging.getLogger(__name__)

Point = tuple[float, float]
Box = tuple[Point, Point, Point, Point]

# Phone photos are 12-50 megapixels. Text that a person can read stays readable at 2048 px
# on the long side, and the detector runs on a smaller copy anyway.
DEFAULT_MAX_SIDE_PX = 2048
# Screenshots cropped to one line can be a few dozen pixels high. Below this long side
# the image is enlarged, because the detector misses characters under about 10 px.
DEFAULT_MIN_SIDE_PX = 640
MAX_UPSCALE_FACTOR = 4.0
# Long side, in pixels, of the copy the text detector runs on. rapidocr's default (short
# side at least 736 px) enlarges wide labels to over 3000 px. On 2 cores that took about
# 3 s per 900x200 label, and 960 px on the long side took about 0.6 s.
DEFAULT_DETECTION_SIDE_PX = 960
DEFAULT_MIN_CONFIDENCE = 0.5

_DETECTION_MODEL = "PP-OCRv6_det_small.onnx"
_RECOGNITION_MODEL = "PP-OCRv6_rec_small.onnx"
_CLASSIFIER_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"


@dataclass(frozen=True)
class OcrLine:
    """One line of recognized text.

    Attributes:
        text: the normalized text of the line (NFKC, Simplified Chinese).
        confidence: the recognizer's score, 0-1.
        box: the four corners (x, y) in pixels of the image passed to `read`, clockwise
            from the top left.
    """

    text: str
    confidence: float
    box: Box

    @property
    def top(self) -> float:
        """Smallest y of the box."""
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        """Largest y of the box."""
        return max(y for _, y in self.box)

    @property
    def left(self) -> float:
        """Smallest x of the box."""
        return min(x for x, _ in self.box)


@dataclass(frozen=True)
class OcrResult:
    """The lines recognized in one image, in reading order."""

    lines: tuple[OcrLine, ...]

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(line.text for line in self.lines)


class OcrEngine(ABC):
    """Reads the text in an image. Implementations are safe to call from several threads."""

    name: str

    @abstractmethod
    def read(self, image: Image.Image) -> OcrResult:
        """Recognize the text lines in `image`.

        Args:
            image: a Pillow image in any mode; it is converted to RGB first.

        Returns:
            The recognized lines, top to bottom and left to right.
        """


@dataclass(frozen=True)
class RapidOcrOptions:
    """Settings of `RapidOcrEngine`.

    Attributes:
        max_side_px: images with a longer side are downscaled to it before OCR.
        min_side_px: images whose long side is shorter are enlarged towards it, by at
            most `MAX_UPSCALE_FACTOR`.
        detection_side_px: long side of the copy the text detector runs on.
        min_confidence: lines scored below this are dropped.
        use_direction_classifier: run the 0°/180° classifier on each line, which reads
            upside-down text at about 10 % more time per image.
        threads: onnxruntime intra-op threads; 0 uses every core.
    """

    max_side_px: int = DEFAULT_MAX_SIDE_PX
    min_side_px: int = DEFAULT_MIN_SIDE_PX
    detection_side_px: int = DEFAULT_DETECTION_SIDE_PX
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    use_direction_classifier: bool = True
    threads: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.min_side_px <= self.max_side_px:
            raise InvalidArgumentError(
                "ocr.min_side_px",
                self.min_side_px,
                f"use a positive size no larger than ocr.max_side_px={self.max_side_px}",
            )
        if not 32 <= self.detection_side_px <= 4096:
            raise InvalidArgumentError(
                "ocr.detection_side_px", self.detection_side_px, "use 32 to 4096 pixels"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidArgumentError("ocr.min_confidence", self.min_confidence, "use 0 to 1")
        if self.threads < 0:
            raise InvalidArgumentError("ocr.threads", self.threads, "use 0 (all cores) or more")


class RapidOcrEngine(OcrEngine):
    """OCR with rapidocr and the PP-OCR models inside its wheel, on the CPU.

    The models load once, in the constructor. Calls are serialized with a lock because
    rapidocr's `RapidOCR.__call__` stores per-call settings on the instance.
    """

    name = "rapidocr"

    def __init__(self, options: RapidOcrOptions | None = None) -> None:
        self.options = options or RapidOcrOptions()
        self._lock = threading.Lock()
        self._ocr = _create_rapidocr(self.options)

    def read(self, image: Image.Image) -> OcrResult:
        """Recognize the text lines in `image`; see `OcrEngine.read`."""
        rgb = to_rgb(image)
        scale = _scale_factor(rgb.size, self.options)
        if scale != 1.0:
            target = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rgb = rgb.resize(target, Image.Resampling.LANCZOS)

        # rapidocr treats a 3-channel array as BGR, like OpenCV.
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        with self._lock:
            output = self._ocr(bgr)

        lines = _lines_from_output(output, scale, self.options.min_confidence)
        return OcrResult(tuple(sort_reading_order(lines)))


def sort_reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Order lines top to bottom, and left to right within one visual row.

    Box centres are first rotated by the median slope of the boxes' top edges, so a photo
    taken a few degrees askew is ordered as if it were level. Without that, a long line
    tilted by 8° moves its centre by about 14 % of its length in y and overtakes the next
    line. Two lines share a row when their levelled centres differ by less than half the
    height of the row's first line, which keeps a price printed beside a product name on
    the same row.
    """
    if not lines:
        return []

    slope_rad = float(np.median([_top_edge_slope(line.box) for line in lines]))
    cos_slope, sin_slope = math.cos(slope_rad), math.sin(slope_rad)

    def levelled(line: OcrLine) -> tuple[float, float, float]:
        # (x, y) of the box centre in the levelled frame, and the box height there.
        x = sum(point[0] for point in line.box) / 4
        y = sum(point[1] for point in line.box) / 4
        height = math.dist(line.box[0], line.box[3])
        return x * cos_slope + y * sin_slope, y * cos_slope - x * sin_slope, height

    placed = sorted(((levelled(line), line) for line in lines), key=lambda item: item[0][1])
    rows: list[list[tuple[tuple[float, float, float], OcrLine]]] = []
    for position, line in placed:
        if rows:
            (_, row_y, row_height), _ = rows[-1][0]
            if abs(position[1] - row_y) < row_height / 2:
                rows[-1].append((position, line))
                continue
        rows.append([(position, line)])

    ordered = []
    for row in rows:
        ordered.extend(line for _, line in sorted(row, key=lambda item: item[0][0]))
    return ordered


def _top_edge_slope(box: Box) -> float:
    (left_x, left_y), (right_x, right_y) = box[0], box[1]
    if right_x <= left_x:
        return 0.0
    return math.atan2(right_y - left_y, right_x - left_x)


def bundled_model_paths() -> dict[str, Path]:
    """Return the paths of the three ONNX models shipped inside the rapidocr wheel.

    Raises:
        ConfigError: rapidocr is not installed or a model file is missing from it.
    """
    try:
        import rapidocr
    except ImportError as error:
        raise ConfigError("rapidocr is not installed: pip install 'kefu[vision]'") from error

    model_dir = Path(rapidocr.__file__).parent / "models"
    paths = {
        "Det": model_dir / _DETECTION_MODEL,
        "Cls": model_dir / _CLASSIFIER_MODEL,
        "Rec": model_dir / _RECOGNITION_MODEL,
    }
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise ConfigError(
            f"rapidocr models missing: {', '.join(missing)}; install rapidocr==3.10.0, "
            "whose wheel contains them"
        )
    return paths


def _create_rapidocr(options: RapidOcrOptions):
    from rapidocr import RapidOCR

    paths = bundled_model_paths()
    params: dict[str, object] = {
        # rapidocr logs a warning for every image without text, which is a normal case here.
        "Global.log_level": "error",
        "Global.text_score": options.min_confidence,
        "Global.use_cls": options.use_direction_classifier,
        # rapidocr's own resize step; ours runs first, so this only guards its limits.
        "Global.max_side_len": options.max_side_px,
        "Det.limit_type": "max",
        "Det.limit_side_len": options.detection_side_px,
        "EngineConfig.onnxruntime.intra_op_num_threads": options.threads or -1,
    }
    for stage, path in paths.items():
        params[f"{stage}.model_path"] = str(path)
        params[f"{stage}.model_root_dir"] = str(path.parent)

    ocr = RapidOCR(params=params)
    # rapidocr 3.10 loads each model on its first use; loading them here keeps the first
    # customer photo from paying about 1.5 s. The loaders are private, hence getattr.
    for loader_name in ("_load_det_model", "_load_cls_model", "_load_rec_model"):
        loader = getattr(ocr, loader_name, None)
        if loader is not None:
            loader()
    logger.info("rapidocr loaded with models from %s", paths["Det"].parent)
    return ocr


def _scale_factor(size: tuple[int, int], options: RapidOcrOptions) -> float:
    long_side = max(size)
    if long_side > options.max_side_px:
        return options.max_side_px / long_side
    if long_side < options.min_side_px:
        return min(options.min_side_px / long_side, MAX_UPSCALE_FACTOR)
    return 1.0


def _lines_from_output(output, scale: float, min_confidence: float) -> list[OcrLine]:
    if output.boxes is None or output.txts is None or output.scores is None:
        return []

    lines = []
    for points, raw_text, score in zip(output.boxes, output.txts, output.scores, strict=True):
        text = normalize_text(raw_text)
        confidence = float(score)
        if not text or confidence < min_confidence or math.isnan(confidence):
            continue
        corners = tuple((float(x) / scale, float(y) / scale) for x, y in points[:4])
        lines.append(OcrLine(text, confidence, corners))
    return lines
