"""Constants, input checks and result helpers shared by the vector-store backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import DENSE_VECTOR, IDF_SCOPES, QUERY_MODES, VECTOR_INDEXES
from rag.types import KINDS, SparseVector, StoredPoint, StoreHit
from server.errors import ConfigError, InvalidArgumentError

# Qdrant server's default k for Fusion.RRF (qdrant-client 1.20 local mode uses the same), so
# both backends score alike. A point ranked first by both prefetches scores 1/2 + 1/2 = 1.0.
RRF_K = 2

# Keyword-indexed payload fields: `tenant` filters every call, `doc_id` and `source` select
# stale points during ingestion, and `kind` and `source` are counted by stats().
TENANT_FIELD = "tenant"
INDEXED_FIELDS: tuple[str, ...] = (TENANT_FIELD, "doc_id", "source", "kind")

# Points per scroll page and per upsert request.
PAGE_SIZE = 256

# Candidates an HNSW search keeps, the `hnsw_ef` setting's default. The benchmark padded
# a tenant to 100k passages with near-copies of real vectors, which is hard on HNSW. There
# ef 128 found the right venue first for 0.91 of the turns, ef 256 for 0.93 and exact search
# for 0.94, and ef 256 cost about 0.6 ms more per query on 2 cores (docs/benchmarks.md).
HNSW_EF = 128
# The HNSW search ranks by the int8 vectors and rescores this many times the requested
# points with the float vectors; 2 cost nothing measurable and found slightly more.
RESCORE_OVERSAMPLING = 2.0


def check_tenant(tenant: str) -> None:
    """Raise InvalidArgumentError unless `tenant` is a non-empty string."""
    if not isinstance(tenant, str) or not tenant:
        raise InvalidArgumentError("tenant", tenant, "a tenant must be a non-empty string")


def check_index_options(vector_index: str, bm25_idf: str) -> None:
    """Raise ConfigError unless both are among their accepted values."""
    if vector_index not in VECTOR_INDEXES:
        raise ConfigError(
            f"invalid vector_index={vector_index!r}: expected one of {', '.join(VECTOR_INDEXES)}"
        )
    if bm25_idf not in IDF_SCOPES:
        raise ConfigError(f"invalid bm25_idf={bm25_idf!r}: expected one of {', '.join(IDF_SCOPES)}")


def check_points(points: Sequence[StoredPoint], dense_dim: int) -> None:
    """Check ids, vectors and payloads before anything is written.

    Raises:
        InvalidArgumentError: an id is not a UUID string, a dense vector is not a finite
            float array of shape (dense_dim,), a payload lacks a string `tenant`, or one id
            comes twice with two tenants.
    """
    tenants: dict[str, object] = {}
    for point in points:
        canonical = parse_id(point.id)
        if canonical is None:
            raise InvalidArgumentError("id", point.id, "point ids must be UUID strings")
        if point.dense.shape != (dense_dim,):
            raise InvalidArgumentError(
                "dense",
                point.dense.shape,
                f"point {point.id} needs a dense vector of shape ({dense_dim},)",
            )
        if not np.isfinite(point.dense).all():
            raise InvalidArgumentError("dense", point.id, "the dense vector has NaN or inf")
        tenant = point.payload.get(TENANT_FIELD)
        if not isinstance(tenant, str) or not tenant:
            raise InvalidArgumentError(
                "payload.tenant", tenant, f"point {point.id} needs a non-empty tenant string"
            )
        if tenants.setdefault(canonical, tenant) != tenant:
            raise _foreign_id_error(point.id)


def check_id_owners(points: Sequence[StoredPoint], stored: Iterable[Any]) -> None:
    """Raise when an upsert would move a stored point to another tenant.

    Args:
        points: points about to be written, already checked by check_points().
        stored: the records already stored under these ids, each with `id` and `payload`
            attributes (Edge and qdrant-client records both have them).

    Raises:
        InvalidArgumentError: a point's id belongs to another tenant's stored point.
    """
    owners = {str(record.id): (record.payload or {}).get(TENANT_FIELD) for record in stored}
    for point in points:
        canonical = parse_id(point.id)
        if canonical in owners and owners[canonical] != point.payload[TENANT_FIELD]:
            raise _foreign_id_error(point.id)


def _foreign_id_error(point_id: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "id",
        point_id,
        "the id belongs to another tenant's point. Derive point ids from the tenant, so "
        "that tenants never share one",
    )


def parse_id(point_id: object) -> str | None:
    """Return the canonical (lowercase, hyphenated) form of a UUID string, or None."""
    if not isinstance(point_id, str):
        return None
    try:
        return str(uuid.UUID(point_id))
    except ValueError:
        return None


def canonical_ids(ids: Sequence[str]) -> list[str]:
    """Return the UUID ids in canonical form, in order, without repeats.

    Strings that are not UUIDs are left out, because no stored point can have them.
    """
    seen: dict[str, None] = {}
    for point_id in ids:
        parsed = parse_id(point_id)
        if parsed is not None:
            seen[parsed] = None
    return list(seen)


def select_query_vectors(
    dense: np.ndarray | None,
    sparse: SparseVector | None,
    *,
    mode: str,
    limit: int,
    dense_dim: int,
) -> tuple[np.ndarray | None, SparseVector | None]:
    """Check a query's arguments and return the dense and sparse vectors it searches with.

    A sparse vector without terms (a query with no indexed words) is returned as None, so
    sparse mode finds nothing and hybrid mode ranks by the dense vector alone.

    Raises:
        InvalidArgumentError: the mode is unknown, the limit is below 1, the dense vector has
            the wrong shape, or the vector the mode needs is missing.
    """
    if mode not in QUERY_MODES:
        raise InvalidArgumentError("mode", mode, f"expected one of {', '.join(QUERY_MODES)}")
    if limit < 1:
        raise InvalidArgumentError("limit", limit, "the limit must be at least 1")
    if dense is not None and dense.shape != (dense_dim,):
        raise InvalidArgumentError("dense", dense.shape, f"expected shape ({dense_dim},)")

    if mode == "dense" and dense is None:
        raise InvalidArgumentError("dense", None, "dense mode needs a dense query vector")
    if mode == "sparse" and sparse is None:
        raise InvalidArgumentError("sparse", None, "sparse mode needs a sparse query vector")
    if mode == "hybrid" and dense is None and sparse is None:
        raise InvalidArgumentError("dense", None, "hybrid mode needs a dense or sparse vector")

    if sparse is not None and not sparse.indices:
        sparse = None
    if mode == "dense":
        return dense, None
    if mode == "sparse":
        return None, sparse
    return dense, sparse


def to_hit(point_id: object, score: float, payload: dict[str, Any] | None) -> StoreHit:
    """Return a StoreHit from a point of either client, without its vector."""
    # Both clients may return UUID ids as uuid.UUID; str() gives the canonical form.
    return StoreHit(id=str(point_id), score=float(score), payload=dict(payload or {}))


def to_scored_hit(point: Any, with_dense: bool) -> StoreHit:
    """Return a StoreHit from a scored point of either client, with its dense vector when
    `with_dense` and the point carries one (both clients return named vectors as a dict)."""
    hit = to_hit(point.id, point.score, point.payload)
    vectors = point.vector if with_dense else None
    if isinstance(vectors, dict) and DENSE_VECTOR in vectors:
        return replace(hit, dense=np.asarray(vectors[DENSE_VECTOR], dtype=np.float32))
    return hit


def make_stats(points: int, kind_counts: Mapping[str, int], sources: int) -> dict[str, int]:
    """Return the stats() dict: a count per kind, `points` (all kinds) and `sources`."""
    stats = {kind: int(kind_counts.get(kind, 0)) for kind in KINDS}
    stats["points"] = points
    stats["sources"] = sources
    return stats


def dimension_mismatch(where: str | Path, stored_dim: int, requested_dim: int) -> ConfigError:
    """Return the ConfigError for a store built with another embedding model."""
    return ConfigError(
        f"vector store {where} stores {stored_dim}-dimensional dense vectors, but the "
        f"embedding model produces {requested_dim} dimensions. The store must be rebuilt "
        "when the embedding model changes: delete it and ingest the knowledge base again."
    )
