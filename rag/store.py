"""The vector store interface shared by the embedded and the server backends.

Both backends keep one collection of passages with a named dense vector (`dense`, cosine)
and a named sparse vector (`bm25`, with Qdrant's IDF modifier), and a payload with at least
`tenant`, `doc_id`, `source`, `kind`, `title`, `text` and `content_hash`. Every read and
delete is filtered by tenant, so one tenant never sees another's points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from rag.types import SparseVector, StoredPoint, StoreHit

COLLECTION = "kefu_passages"
DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"

# hybrid: dense and sparse prefetch fused with reciprocal rank fusion (RRF).
QueryMode = Literal["hybrid", "dense", "sparse"]
QUERY_MODES: tuple[str, ...] = ("hybrid", "dense", "sparse")

# hnsw: approximate search over one HNSW graph per tenant; exact: every vector is scored.
VectorIndex = Literal["hnsw", "exact"]
VECTOR_INDEXES: tuple[str, ...] = ("hnsw", "exact")
# The points BM25 IDF statistics are counted over: the whole collection, or only the
# querying tenant's points (at query time, which costs more).
IdfScope = Literal["collection", "tenant"]
IDF_SCOPES: tuple[str, ...] = ("collection", "tenant")


class VectorStore(Protocol):
    """Operations kefu needs from a vector store."""

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points by id."""

    def delete(self, tenant: str, ids: Sequence[str]) -> int:
        """Delete the tenant's points with these ids; return how many existed."""

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]:
        """Map point id to `content_hash` for the tenant, optionally for one source file."""

    def titles(self, tenant: str, kind: str) -> dict[str, str]:
        """Map point id to `title` for the tenant's points of one kind."""

    def ids_for_docs(self, tenant: str, doc_ids: Sequence[str]) -> list[str]:
        """Return the ids of the tenant's points whose `doc_id` is in `doc_ids`."""

    def query(
        self,
        tenant: str,
        *,
        dense: np.ndarray | None,
        sparse: SparseVector | None,
        limit: int,
        mode: QueryMode = "hybrid",
        prefetch_limit: int = 50,
        with_dense: bool = False,
    ) -> list[StoreHit]:
        """Return the tenant's best points, best first.

        In hybrid mode the score is the RRF score; in dense mode the cosine similarity;
        in sparse mode the BM25 score. With `with_dense`, each hit carries its dense vector.
        """

    def retrieve(self, tenant: str, ids: Sequence[str]) -> list[StoreHit]:
        """Return the tenant's points with these ids (score 0); unknown ids are left out."""

    def count(self, tenant: str) -> int:
        """Return the number of points the tenant has."""

    def stats(self, tenant: str) -> dict[str, int]:
        """Return point counts per kind, plus `sources` (distinct source files)."""

    def tenants(self) -> list[str]:
        """Return every tenant that has at least one point."""

    def flush(self) -> None:
        """Persist pending writes to disk (no-op for a server)."""

    def optimize(self) -> bool:
        """Build pending indexes and merge segments, blocking until done; return whether
        anything changed. A Qdrant server does this in the background, so it returns False."""

    def close(self) -> None:
        """Release files, locks and connections."""
