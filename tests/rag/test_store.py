"""Shared checks run against every vector-store backend, plus backend-specific cases.

Backends: EdgeStore in a temporary folder, QdrantServerStore in qdrant-client's in-memory
mode, and a real Qdrant server when KEFU_TEST_QDRANT_URL is set (for example
`http://127.0.0.1:6333`). Each server test uses its own collection and drops it afterwards.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rag.store import VectorStore
from rag.store_edge import EdgeStore
from rag.store_qdrant import QdrantServerStore
from rag.stores import open_store
from rag.types import KINDS, SparseVector, StoredPoint
from server.errors import (
    ConfigError,
    FailedPreconditionError,
    InvalidArgumentError,
    StoreLockedError,
    UnavailableError,
)

DIM = 8
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_URL = os.environ.get("KEFU_TEST_QDRANT_URL")
LOCK_FIX = "kefu ingest PATH --tenant T --server HOST:PORT"

# Term ids of the hand-made sparse vectors: every point has COMMON_TERM and its own term.
COMMON_TERM = 1
OWN_TERM_BASE = 1000


def unit_vectors(count: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Return `count` random L2-normalized float32 vectors, shape (count, dim)."""
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def point_id(tenant: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kefu-test/{tenant}/{n}"))


def own_term(n: int) -> SparseVector:
    return SparseVector((OWN_TERM_BASE + n,), (1.0,))


def make_points(
    tenant: str, count: int, *, dim: int = DIM, seed: int = 0, sources: int = 3
) -> list[StoredPoint]:
    """Return `count` points for `tenant`. The same seed gives every tenant the same content."""
    vectors = unit_vectors(count, dim, seed)
    return [
        StoredPoint(
            id=point_id(tenant, n),
            dense=vectors[n],
            sparse=SparseVector((COMMON_TERM, OWN_TERM_BASE + n), (1.0, 1.0)),
            payload={
                "tenant": tenant,
                "doc_id": f"doc-{n}",
                "source": f"file-{n % sources}.csv",
                "kind": KINDS[n % len(KINDS)],
                "title": f"标题 {n}",
                "text": f"第 {n} 条知识",
                "content_hash": f"hash-{n}",
                "row": n + 2,
                "fields": {"price": 9.5, "tags": ["a", "b"], "in_stock": True},
            },
        )
        for n in range(count)
    ]


@dataclass
class Backend:
    """How a test opens one backend.

    Attributes:
        name: backend id shown in test ids.
        open: opens the backend's store with a dense dimension and optional store options
            (`vector_index`, `bm25_idf`). Stores that `reopens` return the same data on
            every call.
        reopens: whether a second open() returns the points the first one wrote.
    """

    name: str
    open: Callable[..., VectorStore]
    reopens: bool


@pytest.fixture(params=["edge", "memory", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[VectorStore] = []

    def track(store: VectorStore) -> VectorStore:
        opened.append(store)
        return store

    collection = f"kefu_test_{uuid.uuid4().hex[:12]}"
    if request.param == "edge":
        folder = tmp_path / "qdrant-edge"
        yield Backend(
            "edge", lambda dim, **options: track(EdgeStore(folder, dim, **options)), reopens=True
        )
    elif request.param == "memory":
        yield Backend(
            "memory",
            lambda dim, **options: track(QdrantServerStore(":memory:", dim, **options)),
            reopens=False,
        )
    else:
        if not SERVER_URL:
            pytest.skip("set KEFU_TEST_QDRANT_URL to a Qdrant server URL to run server tests")

        def open_server(dim: int, **options: str) -> VectorStore:
            return track(QdrantServerStore(SERVER_URL, dim, collection=collection, **options))

        yield Backend("server", open_server, reopens=True)

    for store in opened:
        store.close()
    if request.param == "server":
        from qdrant_client import QdrantClient

        QdrantClient(url=SERVER_URL).delete_collection(collection)


@pytest.fixture
def store(backend: Backend) -> VectorStore:
    return backend.open(DIM)


# ---- queries ---------------------------------------------------------------------------


def test_dense_query_ranks_nearest_first(store: VectorStore) -> None:
    points = make_points("acme", 20)
    store.upsert(points)

    hits = store.query("acme", dense=points[5].dense, sparse=None, limit=4, mode="dense")

    assert len(hits) == 4
    assert hits[0].id == points[5].id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].payload["title"] == "标题 5"
    assert hits[0].payload["fields"] == {"price": 9.5, "tags": ["a", "b"], "in_stock": True}


def test_sparse_query_matches_terms(store: VectorStore) -> None:
    points = make_points("acme", 20)
    store.upsert(points)

    own = store.query("acme", dense=None, sparse=own_term(7), limit=5, mode="sparse")
    common = SparseVector((COMMON_TERM,), (1.0,))
    shared = store.query("acme", dense=None, sparse=common, limit=5, mode="sparse")

    assert [h.id for h in own] == [points[7].id]
    assert own[0].score > 0
    assert len(shared) == 5


@pytest.mark.parametrize(
    ("scope", "points_counted", "matches_counted"),
    [("tenant", 4, 1), ("collection", 44, 2)],
)
def test_sparse_idf_scope(
    backend: Backend, scope: str, points_counted: int, matches_counted: int
) -> None:
    store = backend.open(DIM, bm25_idf=scope)
    store.upsert(make_points("acme", 4))
    alone = store.query("acme", dense=None, sparse=own_term(0), limit=1, mode="sparse")
    # The other tenant's points have the same terms, own_term(0) included.
    store.upsert(make_points("other", 40))

    beside_other = store.query("acme", dense=None, sparse=own_term(0), limit=1, mode="sparse")

    # Qdrant's IDF: ln(1 + (N - n + 0.5) / (n + 0.5)) over N points, n of them matching.
    n, big_n = matches_counted, points_counted
    assert alone[0].score == pytest.approx(np.log(1 + 3.5 / 1.5), rel=1e-4)
    assert beside_other[0].score == pytest.approx(
        np.log(1 + (big_n - n + 0.5) / (n + 0.5)), rel=1e-4
    )
    assert [h.payload["tenant"] for h in beside_other] == ["acme"]


def test_query_returns_dense_vectors_when_asked(store: VectorStore) -> None:
    points = make_points("acme", 10)
    store.upsert(points)

    bare = store.query("acme", dense=points[3].dense, sparse=own_term(3), limit=2)
    with_dense = store.query(
        "acme", dense=points[3].dense, sparse=own_term(3), limit=2, with_dense=True
    )

    assert all(hit.dense is None for hit in bare)
    assert with_dense[0].id == points[3].id
    np.testing.assert_allclose(with_dense[0].dense, points[3].dense, atol=1e-6)
    assert [h.id for h in with_dense] == [h.id for h in bare]


@pytest.mark.parametrize("option", [{"vector_index": "ivf"}, {"bm25_idf": "global"}])
def test_unknown_index_option_rejected(backend: Backend, option: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=next(iter(option.values()))):
        backend.open(DIM, **option)


def test_hybrid_query_fuses_both_rankings(store: VectorStore) -> None:
    points = make_points("acme", 20)
    store.upsert(points)

    same = store.query("acme", dense=points[5].dense, sparse=own_term(5), limit=3)
    mixed = store.query("acme", dense=points[5].dense, sparse=own_term(7), limit=3)

    # RRF with k = 2: first place in both prefetches scores 1/2 + 1/2.
    assert same[0].id == points[5].id
    assert same[0].score == pytest.approx(1.0)
    assert [h.score for h in same] == sorted((h.score for h in same), reverse=True)
    assert {h.id for h in mixed[:2]} == {points[5].id, points[7].id}


def test_hybrid_without_sparse_terms(store: VectorStore) -> None:
    points = make_points("acme", 10)
    store.upsert(points)

    no_terms = SparseVector((), ())
    hits = store.query("acme", dense=points[2].dense, sparse=no_terms, limit=3)
    dense_only = store.query("acme", dense=points[2].dense, sparse=None, limit=3)
    sparse_only = store.query("acme", dense=None, sparse=own_term(4), limit=3)

    assert hits[0].id == points[2].id
    assert hits[0].score == pytest.approx(0.5)
    assert [h.id for h in dense_only] == [h.id for h in hits]
    assert sparse_only[0].id == points[4].id
    assert store.query("acme", dense=None, sparse=no_terms, limit=3, mode="sparse") == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"mode": "fuzzy"}, "mode"),
        ({"limit": 0}, "limit"),
        ({"dense": np.ones(DIM + 1, dtype=np.float32)}, "dense"),
        ({"dense": None, "mode": "dense"}, "dense"),
        ({"sparse": None, "mode": "sparse"}, "sparse"),
        ({"dense": None, "sparse": None}, "dense"),
    ],
)
def test_query_rejects_bad_arguments(store: VectorStore, arguments: dict, field: str) -> None:
    query = {"dense": unit_vectors(1)[0], "sparse": own_term(0), "limit": 3} | arguments

    with pytest.raises(InvalidArgumentError) as caught:
        store.query("acme", **query)

    assert caught.value.field == field


def test_query_on_empty_store(store: VectorStore) -> None:
    hits = store.query("acme", dense=unit_vectors(1)[0], sparse=own_term(0), limit=3)

    assert hits == []


# ---- tenants -----------------------------------------------------------------------------


def test_tenant_isolation_of_reads(store: VectorStore) -> None:
    acme, other = make_points("acme", 12), make_points("other", 12)
    store.upsert(acme)
    store.upsert(other)
    acme_ids, other_ids = {p.id for p in acme}, {p.id for p in other}

    for mode in ("dense", "sparse", "hybrid"):
        hits = store.query("acme", dense=acme[3].dense, sparse=own_term(3), limit=50, mode=mode)
        assert {h.id for h in hits} <= acme_ids, mode
        assert all(h.payload["tenant"] == "acme" for h in hits), mode
    assert store.count("acme") == 12
    assert set(store.content_hashes("acme")) == acme_ids
    assert set(store.ids_for_docs("other", ["doc-1", "doc-2"])) <= other_ids
    assert store.retrieve("acme", [p.id for p in other]) == []
    assert store.query("nobody", dense=acme[0].dense, sparse=own_term(0), limit=5) == []


def test_delete_never_crosses_tenants(store: VectorStore) -> None:
    acme, other = make_points("acme", 6), make_points("other", 6)
    store.upsert(acme + other)

    deleted = store.delete("other", [p.id for p in acme])

    assert deleted == 0
    assert store.count("acme") == 6
    assert store.delete("other", [other[0].id, acme[0].id]) == 1
    assert store.count("acme") == 6
    assert store.count("other") == 5


def test_upsert_rejects_other_tenants_id(store: VectorStore) -> None:
    acme = make_points("acme", 3)
    store.upsert(acme)
    stolen = StoredPoint(acme[0].id, acme[0].dense, acme[0].sparse, {"tenant": "other"})

    with pytest.raises(InvalidArgumentError, match="another tenant"):
        store.upsert([stolen])

    assert store.retrieve("acme", [acme[0].id])[0].payload["tenant"] == "acme"
    assert store.count("other") == 0


def test_tenants_lists_tenants_with_points(store: VectorStore) -> None:
    assert store.tenants() == []
    store.upsert(make_points("zeta", 3) + make_points("acme", 2))

    assert store.tenants() == ["acme", "zeta"]
    store.delete("acme", [point_id("acme", n) for n in range(2)])
    assert store.tenants() == ["zeta"]


# ---- writes and lookups ------------------------------------------------------------------


def test_reupsert_replaces_point(store: VectorStore) -> None:
    points = make_points("acme", 5)
    store.upsert(points)
    moved = unit_vectors(1, seed=99)[0]
    replacement = StoredPoint(
        points[1].id, moved, own_term(42), points[1].payload | {"content_hash": "new"}
    )

    store.upsert([replacement])

    assert store.count("acme") == 5
    assert store.content_hashes("acme")[points[1].id] == "new"
    assert store.query("acme", dense=moved, sparse=None, limit=1, mode="dense")[0].id == (
        points[1].id
    )
    assert store.query("acme", dense=None, sparse=own_term(1), limit=1, mode="sparse") == []
    assert store.query("acme", dense=None, sparse=own_term(42), limit=1, mode="sparse")[0].id == (
        points[1].id
    )


def test_delete_counts_existing_ids(store: VectorStore) -> None:
    points = make_points("acme", 5)
    store.upsert(points)
    ids = [points[0].id, points[1].id, points[1].id.upper(), point_id("acme", 99), "not-a-uuid"]

    assert store.delete("acme", ids) == 2
    assert store.count("acme") == 3
    assert store.delete("acme", ids) == 0
    assert store.delete("acme", []) == 0


def test_content_hashes_pages_through_all(store: VectorStore) -> None:
    points = make_points("acme", 300, sources=2)
    store.upsert(points)

    every = store.content_hashes("acme")
    first_file = store.content_hashes("acme", "file-0.csv")

    assert len(every) == 300
    assert every[points[299].id] == "hash-299"
    assert len(first_file) == 150
    assert first_file == {p.id: f"hash-{n}" for n, p in enumerate(points) if n % 2 == 0}
    assert store.content_hashes("acme", "missing.csv") == {}


def test_ids_for_docs(store: VectorStore) -> None:
    points = make_points("acme", 10)
    store.upsert(points)

    found = store.ids_for_docs("acme", ["doc-2", "doc-5", "doc-missing"])

    assert sorted(found) == sorted([points[2].id, points[5].id])
    assert store.ids_for_docs("acme", []) == []


def test_titles_by_kind(store: VectorStore) -> None:
    points = make_points("acme", 9)
    store.upsert(points)
    store.upsert(make_points("other", 9, seed=1))

    records = store.titles("acme", "record")

    expected = {
        p.id: f"标题 {n}" for n, p in enumerate(points) if KINDS[n % len(KINDS)] == "record"
    }
    assert records == expected
    assert store.titles("nobody", "record") == {}


def test_retrieve_keeps_order_skips_unknown(store: VectorStore) -> None:
    points = make_points("acme", 5)
    store.upsert(points)

    hits = store.retrieve("acme", [points[3].id, point_id("acme", 77), "junk", points[0].id])

    assert [h.id for h in hits] == [points[3].id, points[0].id]
    assert [h.score for h in hits] == [0.0, 0.0]
    assert hits[0].payload["content_hash"] == "hash-3"


def test_stats_counts_kinds_and_sources(store: VectorStore) -> None:
    store.upsert(make_points("acme", 10, sources=4))
    store.upsert(make_points("other", 2, sources=1))

    stats = store.stats("acme")

    assert stats == {"faq": 4, "doc": 3, "record": 3, "points": 10, "sources": 4}
    assert store.stats("other")["sources"] == 1
    assert store.stats("nobody") == {"faq": 0, "doc": 0, "record": 0, "points": 0, "sources": 0}


def test_stats_after_deleting_a_source(store: VectorStore) -> None:
    points = make_points("acme", 9, sources=3)
    store.upsert(points)

    store.delete("acme", [p.id for p in points if p.payload["source"] == "file-1.csv"])

    # Kinds cycle with sources here, so file-1.csv held every doc point.
    assert store.stats("acme") == {"faq": 3, "doc": 0, "record": 3, "points": 6, "sources": 2}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "point-1"}, "id"),
        ({"dense": np.ones(DIM + 2, dtype=np.float32)}, "dense"),
        ({"dense": np.full(DIM, np.nan, dtype=np.float32)}, "dense"),
        ({"payload": {"text": "no tenant"}}, "payload.tenant"),
        ({"payload": {"tenant": "other"}}, "id"),
    ],
)
def test_upsert_rejects_bad_points(store: VectorStore, change: dict, field: str) -> None:
    good = make_points("acme", 1)[0]
    fields = {"id": good.id, "dense": good.dense, "sparse": good.sparse, "payload": good.payload}

    with pytest.raises(InvalidArgumentError) as caught:
        store.upsert([good, StoredPoint(**(fields | change))])

    assert caught.value.field == field
    assert store.count("acme") == 0


# ---- lifecycle ---------------------------------------------------------------------------


def test_reopen_keeps_points(backend: Backend) -> None:
    if not backend.reopens:
        pytest.skip(f"{backend.name}: a new store starts empty")
    points = make_points("acme", 30)
    first = backend.open(DIM)
    first.upsert(points)
    first.close()

    second = backend.open(DIM)

    assert second.count("acme") == 30
    assert second.content_hashes("acme") == {p.id: f"hash-{n}" for n, p in enumerate(points)}
    assert second.query("acme", dense=points[4].dense, sparse=None, limit=1)[0].id == (points[4].id)


def test_reopen_with_other_dim_raises(backend: Backend) -> None:
    if not backend.reopens:
        pytest.skip(f"{backend.name}: a new store starts empty")
    backend.open(DIM).close()

    with pytest.raises(ConfigError) as caught:
        backend.open(DIM * 2)

    message = str(caught.value)
    assert f"{DIM}-dimensional" in message
    assert f"produces {DIM * 2} dimensions" in message
    assert "rebuilt" in message


def test_concurrent_readers_and_writer(store: VectorStore) -> None:
    batches = [make_points("acme", 200, seed=1)[i : i + 20] for i in range(0, 200, 20)]
    store.upsert(batches[0])
    probe = batches[0][0]
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()
    reads = [0] * 4

    def read(slot: int) -> None:
        try:
            while writing.is_set() or reads[slot] < 5:
                store.query("acme", dense=probe.dense, sparse=own_term(0), limit=5)
                store.content_hashes("acme")
                reads[slot] += 1
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    def write() -> None:
        try:
            for batch in batches[1:]:
                store.upsert(batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            writing.clear()

    threads = [threading.Thread(target=read, args=(slot,)) for slot in range(4)]
    threads.append(threading.Thread(target=write))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert min(reads) >= 5
    assert store.count("acme") == 200


# ---- backends against each other --------------------------------------------------------


def test_edge_and_memory_results_agree(tmp_path: Path) -> None:
    points = make_points("acme", 40) + make_points("other", 10, seed=3)
    # Own terms only, because points tied on the common term may come back in any order.
    sparse = SparseVector((OWN_TERM_BASE + 8, OWN_TERM_BASE + 11), (1.0, 2.0))
    query = {"dense": points[8].dense, "sparse": sparse}

    with EdgeStore(tmp_path / "edge", DIM) as edge, QdrantServerStore(":memory:", DIM) as memory:
        edge.upsert(points)
        memory.upsert(points)
        for mode in ("dense", "sparse", "hybrid"):
            expected = memory.query("acme", limit=10, mode=mode, **query)
            actual = edge.query("acme", limit=10, mode=mode, **query)
            assert [h.id for h in actual] == [h.id for h in expected], mode
            assert [h.score for h in actual] == pytest.approx([h.score for h in expected]), mode


# ---- Edge only ---------------------------------------------------------------------------

HOLD_STORE = """
import sys
from pathlib import Path
from rag.store_edge import EdgeStore

store = EdgeStore(Path(sys.argv[1]), int(sys.argv[2]))
print("open", flush=True)
sys.stdin.readline()
store.close()
"""

WRITE_AND_DIE = """
import os, signal, sys
from pathlib import Path
from rag.store_edge import EdgeStore
from tests.rag.test_store import make_points

store = EdgeStore(Path(sys.argv[1]), int(sys.argv[2]))
store.upsert(make_points("acme", 50))
os.kill(os.getpid(), signal.SIGKILL)
"""


def run_python(script: str, *args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", script, *args]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, text=True, **popen)


def test_edge_lock_in_same_process(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with EdgeStore(folder, DIM):
        with pytest.raises(StoreLockedError) as caught:
            EdgeStore(folder, DIM)

    message = str(caught.value)
    assert str(folder) in message
    assert f"process {os.getpid()}" in message
    assert "while `kefu serve` runs, go through the server" in message.lower()
    assert "kefu ask text --tenant t --server host:port" in message.lower()
    assert LOCK_FIX in message
    with EdgeStore(folder, DIM) as reopened:
        assert reopened.count("acme") == 0


def test_edge_lock_held_by_other_process(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    holder = run_python(
        HOLD_STORE, str(folder), str(DIM), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(StoreLockedError) as caught:
            EdgeStore(folder, DIM)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    assert f"process {holder.pid}" in str(caught.value)
    assert LOCK_FIX in str(caught.value)
    assert holder.returncode == 0
    with EdgeStore(folder, DIM) as reopened:
        assert reopened.count("acme") == 0


def test_edge_survives_kill_of_owner(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    writer = run_python(WRITE_AND_DIE, str(folder), str(DIM))
    writer.wait(timeout=120)

    assert writer.returncode == -9
    with EdgeStore(folder, DIM) as reopened:
        assert reopened.count("acme") == 50
        assert reopened.stats("acme")["sources"] == 3


def test_edge_lock_released_after_failed_open(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    EdgeStore(folder, DIM).close()

    with pytest.raises(ConfigError, match="delete it and ingest"):
        EdgeStore(folder, DIM * 2)

    with EdgeStore(folder, DIM) as reopened:
        assert reopened.tenants() == []


def test_edge_closed_store_raises(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "store", DIM)
    store.close()
    store.close()

    with pytest.raises(FailedPreconditionError, match="closed"):
        store.count("acme")
    with pytest.raises(FailedPreconditionError, match="closed"):
        store.upsert(make_points("acme", 1))


def _exact_top(points: list[StoredPoint], query: np.ndarray) -> str:
    return points[int(np.argmax(np.stack([p.dense for p in points]) @ query))].id


def test_edge_hnsw_index_built_per_tenant(tmp_path: Path) -> None:
    # 3000 vectors of 64 float32 per tenant (750 KB) exceed the 200 KB thresholds, so
    # optimize() builds one graph per tenant. The queries are perturbed copies of points.
    dim = 64
    acme = make_points("acme", 3000, dim=dim, seed=1)
    other = make_points("other", 3000, dim=dim, seed=2)
    queries = unit_vectors(40, dim, seed=3) * 0.3 + np.stack([p.dense for p in acme[:40]])
    with EdgeStore(tmp_path / "hnsw", dim, indexing_threshold_kb=200) as indexed:
        indexed.upsert(acme + other)
        built = indexed.optimize()
        again = indexed.optimize()
        tops = [indexed.query("acme", dense=q, sparse=None, limit=3, mode="dense") for q in queries]
    with EdgeStore(
        tmp_path / "exact", dim, vector_index="exact", indexing_threshold_kb=200
    ) as plain:
        plain.upsert(acme + other)
        plain_changed = plain.optimize()

    assert built is True
    assert again is False
    assert plain_changed is False
    assert all(hit.payload["tenant"] == "acme" for hits in tops for hit in hits)
    found = [hits[0].id for hits in tops]
    expected = [_exact_top(acme, q / np.linalg.norm(q)) for q in queries]
    assert sum(f == e for f, e in zip(found, expected, strict=True)) >= 38


def test_edge_reopens_with_other_index_setting(tmp_path: Path) -> None:
    dim = 64
    points = make_points("acme", 3000, dim=dim)
    with EdgeStore(tmp_path / "s", dim, vector_index="exact", indexing_threshold_kb=200) as first:
        first.upsert(points)
        assert first.optimize() is False
    with EdgeStore(tmp_path / "s", dim, indexing_threshold_kb=200) as second:
        assert second.optimize() is True
        hits = second.query("acme", dense=points[7].dense, sparse=own_term(7), limit=1)
    with EdgeStore(tmp_path / "s", dim, vector_index="exact") as third:
        exact = third.query("acme", dense=points[7].dense, sparse=None, limit=1, mode="dense")

    assert hits[0].id == points[7].id
    assert exact[0].id == points[7].id


def test_edge_replaces_old_payload_indexes(tmp_path: Path) -> None:
    import qdrant_edge as edge

    with EdgeStore(tmp_path / "s", DIM) as old:
        old.upsert(make_points("acme", 5))
        # Shards from before the per-tenant layout indexed doc_id with HNSW graphs.
        shard = old._shard
        shard.update(edge.UpdateOperation.delete_field_index("doc_id"))
        shard.update(edge.UpdateOperation.create_field_index("doc_id", edge.KeywordIndexParams()))
    with EdgeStore(tmp_path / "s", DIM) as reopened:
        schema = reopened._shard.info().payload_schema
        found = reopened.ids_for_docs("acme", ["doc-1"])

    assert schema["doc_id"].params.enable_hnsw is False
    assert schema["doc_id"].points == 5
    assert schema["tenant"].params.enable_hnsw is True
    assert schema["tenant"].params.is_tenant is True
    assert found == [point_id("acme", 1)]


# ---- server only -------------------------------------------------------------------------


def test_server_unreachable_raises_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    with pytest.raises(UnavailableError) as caught:
        QdrantServerStore(url, DIM)

    assert url in str(caught.value)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (401, ConfigError, "API key"),
        (403, ConfigError, "API key"),
        (503, UnavailableError, "HTTP 503"),
        (400, FailedPreconditionError, "HTTP 400"),
    ],
)
def test_server_http_errors_mapped(status: int, error: type, text: str) -> None:
    class Reject(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": {"error": "stub"}}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Reject)
    serving = threading.Thread(target=stub.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    try:
        with pytest.raises(error) as caught:
            QdrantServerStore(url, DIM, api_key="wrong")
    finally:
        stub.shutdown()
        stub.server_close()

    assert url in str(caught.value)
    assert text in str(caught.value)


# ---- backend selection -------------------------------------------------------------------


def test_open_store_chooses_backend(tmp_path: Path) -> None:
    with open_store(data_dir=tmp_path, dense_dim=DIM) as embedded:
        assert isinstance(embedded, EdgeStore)
        assert embedded.path == tmp_path / "qdrant-edge"

    with open_store(data_dir=tmp_path, dense_dim=DIM, qdrant_url=":memory:") as server:
        assert isinstance(server, QdrantServerStore)
