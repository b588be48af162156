"""The embedded vector store: one Qdrant Edge shard in a local folder, owned by one process."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as edge

from rag.store import DENSE_VECTOR, SPARSE_VECTOR, IdfScope, QueryMode, VectorIndex
from rag.store_common import (
    HNSW_EF,
    INDEXED_FIELDS,
    PAGE_SIZE,
    RESCORE_OVERSAMPLING,
    RRF_K,
    TENANT_FIELD,
    canonical_ids,
    check_id_owners,
    check_index_options,
    check_points,
    check_tenant,
    dimension_mismatch,
    make_stats,
    parse_id,
    select_query_vectors,
    to_hit,
    to_scored_hit,
)
from rag.types import SparseVector, StoredPoint, StoreHit
from server.errors import (
    ConfigError,
    FailedPreconditionError,
    StoreLockedError,
)

logger = logging.getLogger(__name__)

LOCK_FILE = "kefu.lock"
# Qdrant's default indexing threshold, in KB of vectors per segment: optimize() builds HNSW
# only for larger segments, and smaller ones are searched exactly. 10 000 KB is about 6 500
# vectors of 384 float32.
HNSW_INDEXING_THRESHOLD_KB = 10_000
# Edge writes the shard's configuration here when it creates the shard (qdrant-edge-py 0.9.0).
EDGE_CONFIG_FILE = "edge_config.json"


class EdgeStore:
    """The VectorStore backend over Qdrant Edge (`qdrant-edge-py` 0.9.0).

    Opening takes an exclusive lock on `kefu.lock` in the folder, so a second process gets
    StoreLockedError instead of a corrupt shard. Writes are serialized by a thread lock and
    flushed before they return. Queries take no lock, because Edge serves reads while one
    writer updates the shard.

    With `vector_index="hnsw"` (the default) the shard is configured for one HNSW graph per
    tenant (`m=0`, `payload_m=16` on the `tenant` field) over int8-quantized copies of the
    dense vectors, and optimize() builds it for segments above the indexing threshold.
    Smaller segments, such as the one that takes new writes, are searched exactly. Edge
    builds indexes only in optimize(), which blocks and holds the GIL: the knowledge base
    calls it at the end of each ingestion. `vector_index="exact"` keeps every segment on
    exact search.

    `bm25_idf` sets the corpus of the BM25 IDF statistics: "collection" (every point in the
    shard) or "tenant" (the querying tenant's points, counted at query time, which costs
    about 2 ms per query at 100k passages per tenant; see docs/benchmarks.md).
    """

    def __init__(
        self,
        path: Path,
        dense_dim: int,
        *,
        vector_index: VectorIndex = "hnsw",
        bm25_idf: IdfScope = "collection",
        indexing_threshold_kb: int = HNSW_INDEXING_THRESHOLD_KB,
        hnsw_ef: int = HNSW_EF,
    ) -> None:
        """Open the shard in `path`, or create it there.

        Args:
            path: folder of the shard. It is created when missing.
            dense_dim: dimension of the dense vectors, fixed by the embedding model.
            vector_index: "hnsw" or "exact", see the class docstring.
            bm25_idf: "collection" or "tenant", see the class docstring.
            indexing_threshold_kb: segments with more vectors than this, in KB, get the HNSW
                index when optimize() runs, and a tenant with more gets its own graph there.
                A tenant with fewer is searched exactly.
            hnsw_ef: candidates an HNSW search keeps; more find more true neighbours and
                take longer.

        Raises:
            StoreLockedError: another process, or another EdgeStore, has the folder open.
            ConfigError: `dense_dim` is below 1, the shard stores another dimension, or
                `vector_index` or `bm25_idf` is not one of its values.
            FailedPreconditionError: Edge cannot open the shard files.
        """
        if dense_dim < 1:
            raise ConfigError(f"invalid dense_dim={dense_dim}: it must be at least 1")
        check_index_options(vector_index, bm25_idf)
        self.path = Path(path)
        self.dense_dim = dense_dim
        # The three query settings below are read on each query.
        self.vector_index = vector_index
        self.bm25_idf = bm25_idf
        self.hnsw_ef = hnsw_ef
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = _acquire_folder_lock(self.path)
        try:
            config = _edge_config(dense_dim, vector_index, indexing_threshold_kb)
            self._shard: edge.EdgeShard | None = _open_shard(self.path, dense_dim, config)
            _ensure_payload_indexes(self._shard)
        except BaseException:
            _release_folder_lock(self._lock_fd)
            self._lock_fd = None
            raise
        logger.info(
            "opened Qdrant Edge store %s (dense_dim=%d, vector_index=%s, hnsw_ef=%d, bm25_idf=%s)",
            self.path,
            dense_dim,
            vector_index,
            hnsw_ef,
            bm25_idf,
        )

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points by id, then flush them to disk.

        Raises:
            InvalidArgumentError: a point is malformed, or its id belongs to another tenant.
        """
        if not points:
            return
        check_points(points, self.dense_dim)

        with self._write_lock:
            shard = self._require_open()
            stored = shard.retrieve([parse_id(p.id) for p in points], [TENANT_FIELD], False)
            check_id_owners(points, stored)
            for start in range(0, len(points), PAGE_SIZE):
                batch = [_to_edge_point(p) for p in points[start : start + PAGE_SIZE]]
                shard.update(edge.UpdateOperation.upsert_points(batch))
            shard.flush()

    def delete(self, tenant: str, ids: Sequence[str]) -> int:
        """Delete the tenant's points with these ids and return how many existed."""
        check_tenant(tenant)
        with self._write_lock:
            shard = self._require_open()
            existing = [hit.id for hit in self._retrieve(shard, tenant, ids)]
            if not existing:
                return 0
            # The tenant condition keeps another tenant's point with a matching id.
            doomed = edge.Filter(
                must=[_match(TENANT_FIELD, tenant), edge.HasIdCondition(set(existing))]
            )
            shard.update(edge.UpdateOperation.delete_points_by_filter(doomed))
            shard.flush()
        return len(existing)

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]:
        """Map point id to `content_hash` for the tenant, optionally for one source file."""
        check_tenant(tenant)
        conditions = [] if source is None else [_match("source", source)]
        records = self._scroll(_tenant_filter(tenant, *conditions), ["content_hash"])
        return {str(r.id): str((r.payload or {}).get("content_hash", "")) for r in records}

    def titles(self, tenant: str, kind: str) -> dict[str, str]:
        """Map point id to `title` for the tenant's points of one kind."""
        check_tenant(tenant)
        records = self._scroll(_tenant_filter(tenant, _match("kind", kind)), ["title"])
        return {str(r.id): str((r.payload or {}).get("title", "")) for r in records}

    def ids_for_docs(self, tenant: str, doc_ids: Sequence[str]) -> list[str]:
        """Return the ids of the tenant's points whose `doc_id` is in `doc_ids`."""
        check_tenant(tenant)
        if not doc_ids:
            return []
        in_docs = edge.FieldCondition("doc_id", match=edge.MatchAny(list(doc_ids)))
        return [str(r.id) for r in self._scroll(_tenant_filter(tenant, in_docs), False)]

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

        Hybrid mode fuses a dense and a sparse prefetch of max(prefetch_limit, limit) points
        each with RRF (k=2), and skips the prefetch whose vector is missing or empty. BM25
        IDF statistics come from the corpus `bm25_idf` names. With `with_dense`, each hit
        carries its stored dense vector.

        Raises:
            InvalidArgumentError: see `select_query_vectors`.
        """
        check_tenant(tenant)
        dense, sparse = select_query_vectors(
            dense, sparse, mode=mode, limit=limit, dense_dim=self.dense_dim
        )
        if dense is None and sparse is None:
            return []

        tenant_filter = _tenant_filter(tenant)
        idf_corpus = tenant_filter if self.bm25_idf == "tenant" else None
        searches = _searches(dense, sparse, idf_corpus, self._dense_params())
        vectors = [DENSE_VECTOR] if with_dense else None
        if mode == "hybrid":
            width = max(prefetch_limit, limit)
            prefetches = [
                edge.Prefetch(width, query=search, params=params, filter=tenant_filter)
                for search, params in searches
            ]
            fusion = edge.Fusion.Rrf(k=RRF_K)
            request = edge.QueryRequest(
                limit,
                query=fusion,
                prefetches=prefetches,
                filter=tenant_filter,
                with_payload=True,
                with_vector=vectors,
            )
        else:
            [(search, params)] = searches
            request = edge.QueryRequest(
                limit,
                query=search,
                params=params,
                filter=tenant_filter,
                with_payload=True,
                with_vector=vectors,
            )
        points = self._require_open().query(request)
        return [to_scored_hit(p, with_dense) for p in points]

    def retrieve(self, tenant: str, ids: Sequence[str]) -> list[StoreHit]:
        """Return the tenant's points with these ids, with score 0. Unknown ids are left out."""
        check_tenant(tenant)
        return self._retrieve(self._require_open(), tenant, ids)

    def count(self, tenant: str) -> int:
        """Return the number of points the tenant has."""
        check_tenant(tenant)
        request = edge.CountRequest(exact=True, filter=_tenant_filter(tenant))
        return self._require_open().count(request)

    def stats(self, tenant: str) -> dict[str, int]:
        """Return point counts per kind, `points` (all kinds) and `sources` (source files)."""
        points = self.count(tenant)
        if points == 0:
            return make_stats(0, {}, 0)

        shard = self._require_open()
        tenant_filter = _tenant_filter(tenant)
        kinds = _facet_counts(shard, "kind", points, tenant_filter)
        sources = _facet_counts(shard, "source", points, tenant_filter)
        return make_stats(points, kinds, len(sources))

    def tenants(self) -> list[str]:
        """Return every tenant that has at least one point, sorted."""
        shard = self._require_open()
        total = shard.count(edge.CountRequest(exact=True))
        if total == 0:
            return []
        return sorted(_facet_counts(shard, TENANT_FIELD, total, None))

    def flush(self) -> None:
        """Persist pending writes to disk."""
        with self._write_lock:
            self._require_open().flush()

    def optimize(self) -> bool:
        """Run Edge's segment optimizers and block until they finish.

        They merge small segments, drop deleted points and, with `vector_index="hnsw"`,
        build the HNSW index of segments above the indexing threshold: 43 s for 180k new
        points of 384 dimensions on a 2-core machine. With nothing to do they return
        at once. Edge holds the GIL meanwhile, so every other thread of the process waits.

        Returns:
            True when a segment changed, False when the shard was already optimal.
        """
        with self._write_lock:
            return self._require_open().optimize()

    def close(self) -> None:
        """Flush and close the shard, then release the folder lock. Later calls do nothing."""
        with self._write_lock:
            shard, self._shard = self._shard, None
            try:
                if shard is not None:
                    shard.flush()
                    shard.close()
            finally:
                if self._lock_fd is not None:
                    _release_folder_lock(self._lock_fd)
                    self._lock_fd = None
                    logger.info("closed Qdrant Edge store %s", self.path)

    def _dense_params(self) -> edge.SearchParams:
        if self.vector_index == "exact":
            # Score the float vectors of every point, even in segments that have an index.
            ignore_int8 = edge.QuantizationSearchParams(ignore=True)
            return edge.SearchParams(exact=True, quantization=ignore_int8)
        rescore = edge.QuantizationSearchParams(rescore=True, oversampling=RESCORE_OVERSAMPLING)
        return edge.SearchParams(hnsw_ef=self.hnsw_ef, quantization=rescore)

    def _require_open(self) -> edge.EdgeShard:
        shard = self._shard
        if shard is None:
            raise FailedPreconditionError(f"vector store {self.path} is closed")
        return shard

    def _retrieve(self, shard: edge.EdgeShard, tenant: str, ids: Sequence[str]) -> list[StoreHit]:
        requested = canonical_ids(ids)
        if not requested:
            return []
        records = shard.retrieve(requested, True, False)
        found = {str(r.id): r for r in records if (r.payload or {}).get(TENANT_FIELD) == tenant}
        return [to_hit(i, 0.0, found[i].payload) for i in requested if i in found]

    def _scroll(self, scroll_filter: edge.Filter, payload: Any) -> Iterator[edge.Record]:
        shard = self._require_open()
        offset = None
        while True:
            request = edge.ScrollRequest(
                offset=offset,
                limit=PAGE_SIZE,
                filter=scroll_filter,
                with_payload=payload,
                with_vector=False,
            )
            records, offset = shard.scroll(request)
            yield from records
            if offset is None:
                return


def _acquire_folder_lock(folder: Path) -> int:
    """Take the folder's exclusive lock and write this process id into the lock file."""
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_FILE
    # O_CREAT without O_TRUNC, so a failed attempt keeps the holder's pid in the file.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreLockedError(
            f"vector store {folder} is already open in process {holder} (lock file "
            f"{lock_path}), and only one process may open the embedded store. While `kefu "
            "serve` runs, go through the server: kefu ingest PATH --tenant T --server "
            "HOST:PORT, or kefu ask TEXT --tenant T --server HOST:PORT"
        ) from exc

    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_folder_lock(fd: int) -> None:
    os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _open_shard(path: Path, dense_dim: int, config: edge.EdgeConfig) -> edge.EdgeShard:
    """Load the shard in `path` with this configuration, or create it when there is none."""
    config_file = path / EDGE_CONFIG_FILE
    if not config_file.exists():
        return edge.EdgeShard.create(str(path), config)

    stored_dim = _stored_dense_dim(config_file)
    if stored_dim is not None and stored_dim != dense_dim:
        raise dimension_mismatch(path, stored_dim, dense_dim)
    try:
        return edge.EdgeShard.load(str(path), config)
    except Exception as exc:  # qdrant-edge-py raises plain Exception for its failures.
        if "incompatible" in str(exc).lower():
            raise ConfigError(
                f"vector store {path} was created with another configuration ({exc}). "
                "Delete the folder and ingest the knowledge base again."
            ) from exc
        raise FailedPreconditionError(f"cannot open vector store {path}: {exc}") from exc


def _edge_config(
    dense_dim: int, vector_index: VectorIndex, indexing_threshold_kb: int
) -> edge.EdgeConfig:
    # The HNSW search runs on int8 copies of the dense vectors, kept in RAM, and the float
    # originals rescore its candidates. With 200k points on 2 cores this cut the build
    # from 190 s to 101 s and a dense search from 1.83 ms to 1.25 ms p50.
    quantization = edge.ScalarQuantizationConfig(
        edge.ScalarType.Int8, quantile=0.99, always_ram=True
    )
    dense = edge.EdgeVectorParams(
        size=dense_dim, distance=edge.Distance.Cosine, quantization_config=quantization
    )
    sparse = edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)
    # m=0 with payload_m: no graph over the whole shard, one graph per value of the payload
    # fields indexed with enable_hnsw (only `tenant`), as Qdrant advises for multitenancy.
    # full_scan_threshold is in KB of vectors: a tenant with fewer is searched exactly.
    index = edge.HnswIndexConfig(
        m=0,
        ef_construct=100,
        full_scan_threshold=indexing_threshold_kb,
        payload_m=16,
        max_indexing_threads=0,
    )
    # The indexing threshold is always set, because a field left as None keeps the value
    # persisted in the shard, and a reopened shard would keep its old index setting. A
    # threshold of 0 keeps every segment on exact search, even when optimize() runs to merge
    # segments or drop deleted points.
    threshold_kb = indexing_threshold_kb if vector_index == "hnsw" else 0
    return edge.EdgeConfig(
        vectors={DENSE_VECTOR: dense},
        sparse_vectors={SPARSE_VECTOR: sparse},
        hnsw_config=index,
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=threshold_kb),
    )


def _stored_dense_dim(config_file: Path) -> int | None:
    """Return the dense dimension recorded in Edge's config file, or None if unreadable."""
    try:
        stored = json.loads(config_file.read_text(encoding="utf-8"))
        return int(stored["vectors"][DENSE_VECTOR]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        # EdgeShard.load() still checks the configuration against the segments.
        return None


def _ensure_payload_indexes(shard: edge.EdgeShard) -> None:
    """Create the keyword indexes, and recreate those with other parameters.

    Only `tenant` gets HNSW graphs of its own (see _edge_config). Shards created before
    that layout indexed every field with HNSW graphs, which made the build several times
    slower, so their indexes are replaced.
    """
    existing = shard.info().payload_schema
    changed = False
    for name in INDEXED_FIELDS:
        is_tenant = name == TENANT_FIELD
        info = existing.get(name)
        if info is not None:
            if _index_matches(info.params, is_tenant):
                continue
            shard.update(edge.UpdateOperation.delete_field_index(name))
        params = edge.KeywordIndexParams(is_tenant=is_tenant, enable_hnsw=is_tenant)
        shard.update(edge.UpdateOperation.create_field_index(name, params))
        changed = True
    if changed:
        shard.flush()


def _index_matches(params: Any, is_tenant: bool) -> bool:
    # Edge reports None for a flag that was never set; enable_hnsw defaults to true.
    enable_hnsw = params.enable_hnsw if params.enable_hnsw is not None else True
    return bool(params.is_tenant) == is_tenant and enable_hnsw == is_tenant


def _searches(
    dense: np.ndarray | None,
    sparse: SparseVector | None,
    idf_corpus: edge.Filter | None,
    dense_params: edge.SearchParams,
) -> list[tuple[edge.Query, edge.SearchParams | None]]:
    """Return one (query, search params) pair per vector that is given.

    `idf_corpus` restricts the points the BM25 IDF is counted over; None counts them all.
    """
    searches: list[tuple[edge.Query, edge.SearchParams | None]] = []
    if dense is not None:
        searches.append((edge.Query.Nearest(dense.tolist(), using=DENSE_VECTOR), dense_params))
    if sparse is not None:
        vector = edge.SparseVector(list(sparse.indices), list(sparse.values))
        idf = (
            None if idf_corpus is None else edge.SearchParams(idf=edge.IdfParams(corpus=idf_corpus))
        )
        searches.append((edge.Query.Nearest(vector, using=SPARSE_VECTOR), idf))
    return searches


def _facet_counts(
    shard: edge.EdgeShard, key: str, limit: int, facet_filter: edge.Filter | None
) -> dict[str, int]:
    """Return the point count per value of a keyword field, leaving out zero counts.

    `limit` must be at least the number of distinct values, and the number of points that
    match the filter is a safe bound. An exact facet in qdrant-edge-py 0.9.0 keeps listing
    a value with count 0 after its last point is deleted, until the shard is reopened.
    """
    facet = shard.facet(edge.FacetRequest(key, limit, exact=True, filter=facet_filter))
    return {str(hit.value): hit.count for hit in facet.hits if hit.count > 0}


def _match(field: str, value: str) -> edge.FieldCondition:
    return edge.FieldCondition(field, match=edge.MatchValue(value))


def _tenant_filter(tenant: str, *conditions: edge.FieldCondition) -> edge.Filter:
    return edge.Filter(must=[_match(TENANT_FIELD, tenant), *conditions])


def _to_edge_point(point: StoredPoint) -> edge.Point:
    sparse = edge.SparseVector(list(point.sparse.indices), list(point.sparse.values))
    vectors = {DENSE_VECTOR: point.dense.tolist(), SPARSE_VECTOR: sparse}
    return edge.Point(parse_id(point.id), vectors, point.payload)
