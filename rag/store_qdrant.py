"""The server vector store: one collection on a Qdrant server, reached through qdrant-client.

NOTE: importing this module imports grpc, because qdrant-client 1.20 imports it at load time.
`rag.stores.open_store` imports this module only when a server URL is configured.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag.store import COLLECTION, DENSE_VECTOR, SPARSE_VECTOR, IdfScope, QueryMode, VectorIndex
from rag.store_common import (
    HNSW_EF,
    INDEXED_FIELDS,
    PAGE_SIZE,
    RESCORE_OVERSAMPLING,
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
    UnavailableError,
)

logger = logging.getLogger(__name__)

# qdrant-client's in-process mode, for unit tests only, because it has no payload indexes
# and searches every point in Python.
IN_MEMORY = ":memory:"


class QdrantServerStore:
    """The VectorStore backend over a Qdrant server, with tenants separated by payload.

    The collection, its vectors and its payload indexes are created on first use, with the
    same index layout as the embedded store: one HNSW graph per tenant over int8-quantized
    dense vectors, which the server builds in the background. Calls to a server run
    concurrently. In-memory mode serializes every call, because qdrant-client's local mode
    raises IndexError when a query runs while another thread writes.
    """

    def __init__(
        self,
        url: str,
        dense_dim: int,
        *,
        api_key: str | None = None,
        collection: str = COLLECTION,
        vector_index: VectorIndex = "hnsw",
        bm25_idf: IdfScope = "collection",
        hnsw_ef: int = HNSW_EF,
    ) -> None:
        """Connect to the server and create or check the collection.

        Args:
            url: server URL such as `http://127.0.0.1:6333`, or ":memory:" for qdrant-client's
                in-process mode.
            dense_dim: dimension of the dense vectors, fixed by the embedding model.
            api_key: the server's API key, if it requires one.
            collection: collection name. Tests pass a name of their own.
            vector_index: "hnsw", or "exact" to score every vector of the tenant in queries.
                The collection's index layout is set when kefu creates it.
            bm25_idf: "collection" or "tenant", the points BM25 IDF is counted over.
            hnsw_ef: candidates an HNSW search keeps; more find more true neighbours and
                take longer.

        Raises:
            ConfigError: `dense_dim` is below 1, the collection has another dense dimension
                or lacks kefu's vectors, the server rejects the API key, or `vector_index` or
                `bm25_idf` is not one of its values.
            UnavailableError: the server cannot be reached.
        """
        if dense_dim < 1:
            raise ConfigError(f"invalid dense_dim={dense_dim}: it must be at least 1")
        check_index_options(vector_index, bm25_idf)
        self.url = url
        self.dense_dim = dense_dim
        self.collection = collection
        self.vector_index = vector_index
        self.bm25_idf = bm25_idf
        self.hnsw_ef = hnsw_ef
        self._in_memory = url == IN_MEMORY
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self._in_memory else contextlib.nullcontext()
        )
        if self._in_memory:
            self._client = QdrantClient(location=IN_MEMORY)
        else:
            # The client's version check runs in a background thread and only warns, also
            # when the server is down, which the first request below reports anyway.
            self._client = QdrantClient(url=url, api_key=api_key, check_compatibility=False)

        with self._call():
            self._ensure_collection()
        logger.info("using Qdrant collection %s at %s (dense_dim=%d)", collection, url, dense_dim)

    def __enter__(self) -> QdrantServerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points by id and wait until the server has applied them.

        Raises:
            InvalidArgumentError: a point is malformed, or its id belongs to another tenant.
        """
        if not points:
            return
        check_points(points, self.dense_dim)

        with self._call():
            # NOTE: the owner check and the write are two requests, so two processes writing
            # one id for two tenants can interleave. Ids derived from the tenant never collide.
            self._check_id_owners(points)
            for start in range(0, len(points), PAGE_SIZE):
                batch = [_to_point_struct(p) for p in points[start : start + PAGE_SIZE]]
                self._client.upsert(self.collection, batch, wait=True)

    def delete(self, tenant: str, ids: Sequence[str]) -> int:
        """Delete the tenant's points with these ids and return how many existed."""
        check_tenant(tenant)
        with self._call():
            existing = [hit.id for hit in self._retrieve(tenant, ids)]
            if not existing:
                return 0
            # The tenant condition keeps another tenant's point with a matching id.
            owned = qm.HasIdCondition(has_id=existing)
            doomed = qm.Filter(must=[_match(TENANT_FIELD, tenant), owned])
            self._client.delete(self.collection, qm.FilterSelector(filter=doomed), wait=True)
        return len(existing)

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]:
        """Map point id to `content_hash` for the tenant, optionally for one source file."""
        check_tenant(tenant)
        conditions = [] if source is None else [_match("source", source)]
        with self._call():
            records = self._scroll(_tenant_filter(tenant, *conditions), ["content_hash"])
            return {str(r.id): str((r.payload or {}).get("content_hash", "")) for r in records}

    def titles(self, tenant: str, kind: str) -> dict[str, str]:
        """Map point id to `title` for the tenant's points of one kind."""
        check_tenant(tenant)
        with self._call():
            records = self._scroll(_tenant_filter(tenant, _match("kind", kind)), ["title"])
            return {str(r.id): str((r.payload or {}).get("title", "")) for r in records}

    def ids_for_docs(self, tenant: str, doc_ids: Sequence[str]) -> list[str]:
        """Return the ids of the tenant's points whose `doc_id` is in `doc_ids`."""
        check_tenant(tenant)
        if not doc_ids:
            return []
        in_docs = qm.FieldCondition(key="doc_id", match=qm.MatchAny(any=list(doc_ids)))
        with self._call():
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
        each with the server's RRF, and skips the prefetch whose vector is missing or empty.
        BM25 IDF statistics come from the corpus `bm25_idf` names. With `with_dense`, each
        hit carries its stored dense vector.

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
        if mode == "hybrid":
            width = max(prefetch_limit, limit)
            prefetch = [
                qm.Prefetch(
                    query=search, using=using, params=params, filter=tenant_filter, limit=width
                )
                for search, using, params in searches
            ]
            request: dict[str, Any] = {
                "query": qm.FusionQuery(fusion=qm.Fusion.RRF),
                "prefetch": prefetch,
            }
        else:
            [(search, using, params)] = searches
            request = {"query": search, "using": using, "search_params": params}

        with self._call():
            response = self._client.query_points(
                self.collection,
                query_filter=tenant_filter,
                limit=limit,
                with_vectors=[DENSE_VECTOR] if with_dense else False,
                **request,
            )
        return [to_scored_hit(p, with_dense) for p in response.points]

    def retrieve(self, tenant: str, ids: Sequence[str]) -> list[StoreHit]:
        """Return the tenant's points with these ids, with score 0. Unknown ids are left out."""
        check_tenant(tenant)
        with self._call():
            return self._retrieve(tenant, ids)

    def count(self, tenant: str) -> int:
        """Return the number of points the tenant has."""
        check_tenant(tenant)
        with self._call():
            return self._count(_tenant_filter(tenant))

    def stats(self, tenant: str) -> dict[str, int]:
        """Return point counts per kind, `points` (all kinds) and `sources` (source files)."""
        check_tenant(tenant)
        tenant_filter = _tenant_filter(tenant)
        with self._call():
            points = self._count(tenant_filter)
            if points == 0:
                return make_stats(0, {}, 0)
            kinds = self._facet_counts("kind", points, tenant_filter)
            sources = self._facet_counts("source", points, tenant_filter)
        return make_stats(points, kinds, len(sources))

    def tenants(self) -> list[str]:
        """Return every tenant that has at least one point, sorted."""
        with self._call():
            total = self._count(None)
            if total == 0:
                return []
            return sorted(self._facet_counts(TENANT_FIELD, total, None))

    def flush(self) -> None:
        """Do nothing: the server persists each write before upsert() returns."""

    def optimize(self) -> bool:
        """Do nothing and return False: the server optimizes and indexes in the background."""
        return False

    def close(self) -> None:
        """Close the client's connections."""
        with self._lock:
            self._client.close()

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        """Serialize in-memory calls and turn client errors into kefu errors."""
        with self._lock:
            try:
                yield
            except ResponseHandlingException as exc:
                raise UnavailableError(
                    f"Qdrant server {self.url} cannot be reached ({exc}). Check that it runs "
                    "and that the Qdrant URL setting points to it."
                ) from exc
            except UnexpectedResponse as exc:
                raise _response_error(self.url, exc) from exc

    def _ensure_collection(self) -> None:
        if self._client.collection_exists(self.collection):
            self._check_collection()
            return

        quantization = qm.ScalarQuantization(
            scalar=qm.ScalarQuantizationConfig(
                type=qm.ScalarType.INT8, quantile=0.99, always_ram=True
            )
        )
        self._client.create_collection(
            self.collection,
            vectors_config={
                DENSE_VECTOR: qm.VectorParams(size=self.dense_dim, distance=qm.Distance.COSINE)
            },
            sparse_vectors_config={SPARSE_VECTOR: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            # One graph per tenant and none over the whole collection, as in the Edge store.
            # NOTE: untested on a real server, because local mode ignores index settings.
            hnsw_config=qm.HnswConfigDiff(m=0, payload_m=16),
            quantization_config=quantization,
        )
        # Local mode ignores payload indexes and warns on each one.
        if self._in_memory:
            return
        for name in INDEXED_FIELDS:
            is_tenant = name == TENANT_FIELD
            schema = qm.KeywordIndexParams(
                type=qm.KeywordIndexType.KEYWORD, is_tenant=is_tenant, enable_hnsw=is_tenant
            )
            self._client.create_payload_index(self.collection, name, schema, wait=True)
        logger.info("created Qdrant collection %s at %s", self.collection, self.url)

    def _check_collection(self) -> None:
        params = self._client.get_collection(self.collection).config.params
        where = f"{self.url} collection {self.collection}"
        dense = params.vectors.get(DENSE_VECTOR) if isinstance(params.vectors, dict) else None
        sparse = (params.sparse_vectors or {}).get(SPARSE_VECTOR)
        if dense is None or sparse is None:
            raise ConfigError(
                f"Qdrant {where} has no `{DENSE_VECTOR}` dense and `{SPARSE_VECTOR}` sparse "
                "vectors, so kefu did not create it. Delete it or choose another server."
            )
        if dense.size != self.dense_dim:
            raise dimension_mismatch(f"{where}", dense.size, self.dense_dim)

    def _dense_params(self) -> qm.SearchParams | None:
        # Local mode always searches exactly and warns about any search parameter.
        if self._in_memory:
            return None
        if self.vector_index == "exact":
            return qm.SearchParams(exact=True)
        rescore = qm.QuantizationSearchParams(rescore=True, oversampling=RESCORE_OVERSAMPLING)
        return qm.SearchParams(hnsw_ef=self.hnsw_ef, quantization=rescore)

    def _check_id_owners(self, points: Sequence[StoredPoint]) -> None:
        ids = [parse_id(p.id) for p in points]
        stored = self._client.retrieve(
            self.collection, ids, with_payload=[TENANT_FIELD], with_vectors=False
        )
        check_id_owners(points, stored)

    def _retrieve(self, tenant: str, ids: Sequence[str]) -> list[StoreHit]:
        requested = canonical_ids(ids)
        if not requested:
            return []
        records = self._client.retrieve(self.collection, requested, with_payload=True)
        found = {str(r.id): r for r in records if (r.payload or {}).get(TENANT_FIELD) == tenant}
        return [to_hit(i, 0.0, found[i].payload) for i in requested if i in found]

    def _count(self, count_filter: qm.Filter | None) -> int:
        return self._client.count(self.collection, count_filter=count_filter, exact=True).count

    def _facet_counts(self, key: str, limit: int, facet_filter: qm.Filter | None) -> dict[str, int]:
        """Return the point count per value of a keyword field, leaving out zero counts.

        `limit` must be at least the number of distinct values, and the number of points
        that match the filter is a safe bound.
        """
        response = self._client.facet(
            self.collection, key, facet_filter=facet_filter, limit=limit, exact=True
        )
        return {str(hit.value): hit.count for hit in response.hits if hit.count > 0}

    def _scroll(self, scroll_filter: qm.Filter, payload: Any) -> Iterator[qm.Record]:
        offset = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                scroll_filter=scroll_filter,
                limit=PAGE_SIZE,
                offset=offset,
                with_payload=payload,
                with_vectors=False,
            )
            yield from records
            if offset is None:
                return


def _response_error(url: str, exc: UnexpectedResponse) -> Exception:
    """Map an HTTP error status from the server to a kefu error."""
    detail = exc.content.decode(errors="replace")[:300] if exc.content else exc.reason_phrase
    if exc.status_code in (401, 403):
        return ConfigError(
            f"Qdrant server {url} rejected the API key (HTTP {exc.status_code}). Set the API "
            "key the server expects."
        )
    if exc.status_code >= 500:
        return UnavailableError(f"Qdrant server {url} failed (HTTP {exc.status_code}): {detail}")
    return FailedPreconditionError(
        f"Qdrant server {url} rejected a request (HTTP {exc.status_code}): {detail}. "
        "kefu uses qdrant-client 1.20, and an older server may lack a feature it needs, such as "
        "the per-query IDF corpus."
    )


def _searches(
    dense: np.ndarray | None,
    sparse: SparseVector | None,
    idf_corpus: qm.Filter | None,
    dense_params: qm.SearchParams | None,
) -> list[tuple[Any, str, qm.SearchParams | None]]:
    """Return one (query, vector name, search params) triple per vector that is given.

    `idf_corpus` restricts the points the BM25 IDF is counted over; None counts them all.
    """
    searches: list[tuple[Any, str, qm.SearchParams | None]] = []
    if dense is not None:
        searches.append((dense.tolist(), DENSE_VECTOR, dense_params))
    if sparse is not None:
        vector = qm.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
        idf = (
            None
            if idf_corpus is None
            else qm.SearchParams(idf=qm.IdfCorpusParams(corpus=idf_corpus))
        )
        searches.append((vector, SPARSE_VECTOR, idf))
    return searches


def _match(field: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=field, match=qm.MatchValue(value=value))


def _tenant_filter(tenant: str, *conditions: qm.FieldCondition) -> qm.Filter:
    return qm.Filter(must=[_match(TENANT_FIELD, tenant), *conditions])


def _to_point_struct(point: StoredPoint) -> qm.PointStruct:
    sparse = qm.SparseVector(indices=list(point.sparse.indices), values=list(point.sparse.values))
    vectors = {DENSE_VECTOR: point.dense.tolist(), SPARSE_VECTOR: sparse}
    return qm.PointStruct(id=parse_id(point.id), vector=vectors, payload=point.payload)
