"""Wrappers that let the benchmark reuse what ingestion computes, and a two-tenant store.

The baselines need the same tokens and dense vectors that kefu indexes. Recomputing them
would double the run time, so the tokenizer and the embedder keep what ingestion asked
them for, in call order. A fresh ingestion builds one sparse and one dense vector per
point and writes the points in the same order, so the n-th entries of the tokenizer, the
embedder and TwinTenantStore.written belong to the same point.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import Embedder
from rag.store import VectorStore
from rag.tokenize import Tokenizer
from rag.types import SparseVector, StoredPoint

# Namespace of the second tenant's point ids, derived from the first tenant's ids.
TWIN_NAMESPACE = uuid.UUID("0b8f5a52-93c1-4c8e-8a4e-2f0d6b3c9e71")
# Points buffered before one store write; Edge flushes on every upsert call.
WRITE_BATCH = 4096


class RecordingTokenizer(Tokenizer):
    """A Tokenizer that keeps the terms of every document vector it builds.

    `documents` gets one entry per document_vector() call: every term the call produced,
    title terms included. The caller takes entries off the front.
    """

    def __init__(self) -> None:
        super().__init__()
        self.documents: list[list[str]] = []
        self._current: list[str] | None = None

    def document_vector(self, text: str, *args: Any, **kwargs: Any) -> SparseVector:
        self._current = []
        try:
            vector = super().document_vector(text, *args, **kwargs)
            self.documents.append(self._current)
            return vector
        finally:
            self._current = None

    def tokens(self, text: str) -> list[str]:
        terms = super().tokens(text)
        if self._current is not None:
            self._current.extend(terms)
        return terms


class RecordingEmbedder:
    """An Embedder that keeps passage vectors in call order and caches and times queries.

    Args:
        passages: the model that embeds passages.
        queries: the model that embeds queries (the server's single-threaded instance);
            None when queries are never embedded.
        cache_dir: folder of a vector file kept between runs, or None.
    """

    def __init__(
        self, passages: Embedder, queries: Embedder | None, cache_dir: Path | None
    ) -> None:
        self.name = passages.name
        self.dim = passages.dim
        self._passages = passages
        self._queries = queries
        self.passages: list[np.ndarray] = []
        self.query_times_ms: list[float] = []
        self._query_vectors: dict[str, np.ndarray] = {}
        self._cache_file = cache_dir / f"{passages.name}.npz" if cache_dir else None
        self._cache = _read_cache(self._cache_file)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_text_key(text) for text in texts]
        missing = [text for text, key in zip(texts, keys, strict=True) if key not in self._cache]
        if missing:
            computed = self._passages.embed_passages(missing)
            self._cache.update(zip(map(_text_key, missing), computed, strict=True))
        vectors = np.vstack([self._cache[key] for key in keys])
        self.passages.extend(vectors)
        return vectors

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self._queries is None:
            raise ValueError(f"{self.name}: this embedder has no query model")
        for text in texts:
            if text not in self._query_vectors:
                started = time.perf_counter()
                self._query_vectors[text] = self._queries.embed_queries([text])[0]
                self.query_times_ms.append((time.perf_counter() - started) * 1000)
        return np.vstack([self._query_vectors[text] for text in texts])

    def save_cache(self) -> None:
        """Write the passage vectors to the cache file, when there is one."""
        if self._cache_file is None:
            return
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._cache))
        vectors = np.vstack(list(self._cache.values())) if self._cache else np.empty((0, self.dim))
        np.savez(self._cache_file, keys=keys, vectors=vectors)


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _read_cache(path: Path | None) -> dict[str, np.ndarray]:
    if path is None or not path.exists():
        return {}
    with np.load(path) as stored:
        return dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))


class TwinTenantStore:
    """A VectorStore that writes every point twice: for its tenant and for a twin tenant.

    The twin has the same vectors and payload under other ids, so a query filtered by
    tenant scans a collection twice the tenant's size and must drop exactly half of it.
    Writes are buffered up to WRITE_BATCH points and land on `flush()`, which
    KnowledgeBase calls at the end of every ingestion.

    `written` gets the (source, doc_id) of each of the tenant's points in write order; the
    caller takes entries off the front.
    """

    def __init__(self, store: VectorStore, tenant: str, twin: str) -> None:
        self.inner = store
        self._tenant = tenant
        self._twin = twin
        self._pending: list[StoredPoint] = []
        self.written: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        for point in points:
            if point.payload["tenant"] != self._tenant:
                raise ValueError(f"TwinTenantStore writes tenant {self._tenant!r} only")
            self._pending.append(point)
            self._pending.append(self._twin_of(point))
            self.written.append((point.payload["source"], point.payload["doc_id"]))
        if len(self._pending) >= WRITE_BATCH:
            self._write()

    def flush(self) -> None:
        self._write()
        self.inner.flush()

    def _write(self) -> None:
        if self._pending:
            self.inner.upsert(self._pending)
            self._pending = []

    def _twin_of(self, point: StoredPoint) -> StoredPoint:
        return StoredPoint(
            id=str(uuid.uuid5(TWIN_NAMESPACE, point.id)),
            dense=point.dense,
            sparse=point.sparse,
            payload={**point.payload, "tenant": self._twin},
        )
