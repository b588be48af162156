"""Selection of the vector-store backend from the settings."""

from __future__ import annotations

from pathlib import Path

from rag.store import VectorStore

# Folder of the embedded store inside the data directory.
EDGE_FOLDER = "qdrant-edge"


def open_store(
    *,
    data_dir: Path,
    dense_dim: int,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    edge_hnsw: bool = False,
) -> VectorStore:
    """Open the Qdrant server store when a URL is set, else the embedded Edge store.

    Each backend module is imported here, so a process that uses one never loads the other's
    client library (qdrant-client brings in grpc).

    Args:
        data_dir: kefu's data directory. The embedded store lives in `data_dir/qdrant-edge`.
        dense_dim: dimension of the embedding model's dense vectors.
        qdrant_url: Qdrant server URL, or ":memory:" for qdrant-client's in-process mode.
        qdrant_api_key: API key for the Qdrant server.
        edge_hnsw: give the embedded store an HNSW index configuration (see EdgeStore).

    Raises:
        StoreLockedError: another process has the embedded store open.
        ConfigError: the store contains vectors of another dimension.
        UnavailableError: the Qdrant server cannot be reached.
    """
    if qdrant_url:
        from rag.store_qdrant import QdrantServerStore

        return QdrantServerStore(qdrant_url, dense_dim, api_key=qdrant_api_key)

    from rag.store_edge import EdgeStore

    return EdgeStore(Path(data_dir) / EDGE_FOLDER, dense_dim, hnsw=edge_hnsw)
