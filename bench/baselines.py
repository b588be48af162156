"""Hybrid-retrieval baselines without a vector store: a BM25 library plus numpy cosine.

Each baseline ranks the tenant's documents by BM25 over the same jieba tokens kefu
indexes and by brute-force cosine over the same dense vectors, takes the top
PREFETCH_LIMIT of each and fuses them with reciprocal rank fusion,
score = sum of 1 / (RRF_K + rank) with ranks from 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
from rank_bm25 import BM25Okapi

RRF_K = 60
# Candidates taken from each ranking before fusion, as kefu's store does.
PREFETCH_LIMIT = 50


class DenseIndex:
    """Brute-force cosine search over L2-normalized float32 vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        """Args:
        vectors: float32 array of shape (documents, dim), L2-normalized.
        """
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def top(self, query: np.ndarray, limit: int) -> np.ndarray:
        """Return the indices of the `limit` most similar documents, best first."""
        return _top_indices(self.vectors @ query, limit)


class RankBm25Baseline:
    """rank-bm25's BM25Okapi (k1=1.5, b=0.75) fused with numpy cosine."""

    name = "rank-bm25 + numpy"

    def __init__(self, tokens: Sequence[list[str]], vectors: np.ndarray) -> None:
        self.bm25 = BM25Okapi(list(tokens))
        self.dense = DenseIndex(vectors)

    def search(self, query_tokens: list[str], query_vector: np.ndarray, limit: int) -> list[int]:
        """Return document indices, best first."""
        scores = self.bm25.get_scores(query_tokens)
        sparse = _top_indices(scores, PREFETCH_LIMIT)
        sparse = sparse[scores[sparse] > 0]
        dense = self.dense.top(query_vector, PREFETCH_LIMIT)
        return rrf_fuse([sparse, dense], limit)


class Bm25sBaseline:
    """bm25s's BM25 (Lucene variant, k1=1.5, b=0.75) fused with numpy cosine."""

    name = "bm25s + numpy"

    def __init__(self, tokens: Sequence[list[str]], vectors: np.ndarray) -> None:
        self.bm25 = bm25s.BM25()
        self.bm25.index(list(tokens), show_progress=False)
        self.documents = len(tokens)
        self.dense = DenseIndex(vectors)

    def search(self, query_tokens: list[str], query_vector: np.ndarray, limit: int) -> list[int]:
        """Return document indices, best first."""
        width = min(PREFETCH_LIMIT, self.documents)
        found, scores = self.bm25.retrieve([query_tokens or [""]], k=width, show_progress=False)
        sparse = found[0][scores[0] > 0]
        dense = self.dense.top(query_vector, PREFETCH_LIMIT)
        return rrf_fuse([sparse, dense], limit)


def rrf_fuse(rankings: Sequence[np.ndarray], limit: int) -> list[int]:
    """Fuse rankings of document indices with reciprocal rank fusion, best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, index in enumerate(ranking.tolist(), start=1):
            scores[index] = scores.get(index, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=scores.__getitem__, reverse=True)[:limit]


def _top_indices(scores: np.ndarray, limit: int) -> np.ndarray:
    limit = min(limit, len(scores))
    candidates = np.argpartition(-scores, limit - 1)[:limit]
    return candidates[np.argsort(-scores[candidates], kind="stable")]
