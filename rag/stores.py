"""Selection of the vector-store backend from the settings."""

from __future__ import annotations

from pathlib import Path

from rag.store import IdfScope, VectorIndex, VectorStore
from rag.store_common import HNSW_EF

# Folder of the embedded store inside the data directory.
EDGE_FOLDER = "qdrant-edge"


def open_store(
    *,
    data_dir: Path,
    dense_dim: int,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    vector_index: VectorIndex = "hnsw",
    bm25_idf: IdfScope = "collection",
    hnsw_ef: int = HNSW_EF,
) -> VectorStore:
    """Open the Qdrant server store when a URL is set, else the embedded Edge store.

    Each backend module is imported here, so a process that uses one never loads the other's
    client library (qdrant-client brings in grpc).

    Args:
        data_dir: kefu's data directory. The embedded store lives in `data_dir/qdrant-edge`.
        dense_dim: dimension of the embedding model's dense vectors.
        qdrant_url: Qdrant server URL, or ":memory:" for qdrant-client's in-process mode.
        qdrant_api_key: API key for the Qdrant server.
        vector_index: "hnsw" (one HNSW graph per tenant) or "exact" (score every vector).
        bm25_idf: "collection" or "tenant", the points BM25 IDF statistics are counted over.
        hnsw_ef: candidates an HNSW search keeps.

    Raises:
        StoreLockedError: another process has the embedded store open.
        ConfigError: the store contains vectors of another dimension, or an option is not
            one of its values.
        UnavailableError: the Qdrant server cannot be reached.
    """
    if qdrant_url:
        from rag.store_qdrant import QdrantServerStore

        return QdrantServerStore(
            qdrant_url,
            dense_dim,
            api_key=qdrant_api_key,
            vector_index=vector_index,
            bm25_idf=bm25_idf,
            hnsw_ef=hnsw_ef,
        )

    from rag.store_edge import EdgeStore

    folder = Path(data_dir) / EDGE_FOLDER
    return EdgeStore(
        folder, dense_dim, vector_index=vector_index, bm25_idf=bm25_idf, hnsw_ef=hnsw_ef
    )
