"""A tenant's knowledge base: ingestion into the vector store and hybrid retrieval.

The server, the CLI and the benchmarks all go through `KnowledgeBase`, so a file ingested
over gRPC is parsed, cleaned, chunked and indexed exactly as a local one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.clean import clean_items, normalize_text
from rag.embed import Embedder
from rag.entities import EntityIndex
from rag.injection import HIDDEN_TEXT_KINDS, detect_injection, sanitize_passage
from rag.loaders import load_file
from rag.store import QUERY_MODES, QueryMode, VectorStore
from rag.tokenize import Tokenizer
from rag.types import KINDS, IngestReport, LoadResult, SkippedRow, SourceItem, StoredPoint
from server.errors import InvalidArgumentError, NotFoundError

logger = logging.getLogger(__name__)

TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Namespace of the passage point ids; changing it would orphan every indexed point.
POINT_NAMESPACE = uuid.UUID("6f1c2f4e-5a0b-4c4e-9d61-3b7d0c8f2a10")
# Dense models read at most a few hundred tokens; the head of a record carries its title
# and scalar fields, the tail long lists.
DENSE_TEXT_CHARS = 256
EMBED_BATCH = 32


@dataclass(frozen=True)
class Hit:
    """One retrieved passage.

    Attributes:
        score: the store's score for the query mode (RRF score for hybrid).
        dense_similarity: cosine similarity of query and passage, when known.
        fields: record fields; empty for faq and doc.
    """

    id: str
    doc_id: str
    kind: str
    title: str
    text: str
    source: str
    category: str
    score: float
    question: str = ""
    answer: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    dense_similarity: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """Hits for a query plus the query's own analysis, for answer engines."""

    query: str
    query_terms: tuple[str, ...]
    hits: list[Hit]


ProgressCallback = Callable[[int, int], None]


def validate_tenant(tenant: str, field_name: str = "tenant") -> str:
    """Return the tenant id, or raise InvalidArgumentError naming the accepted form."""
    if not TENANT_PATTERN.fullmatch(tenant or ""):
        raise InvalidArgumentError(
            field_name,
            tenant,
            "a tenant id is 1 to 64 characters of letters, digits, '.', '_' and '-', "
            "starting with a letter or digit",
        )
    return tenant


def point_id(tenant: str, source: str, kind: str, doc_id: str, chunk: int = 0) -> str:
    """Return the stable point id of one passage."""
    return str(
        uuid.uuid5(POINT_NAMESPACE, f"{tenant}\x1f{source}\x1f{kind}\x1f{doc_id}\x1f{chunk}")
    )


class KnowledgeBase:
    """Ingests files into a vector store and searches them, per tenant."""

    def __init__(self, store: VectorStore, embedder: Embedder, tokenizer: Tokenizer) -> None:
        self.store = store
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.entities = EntityIndex(lambda tenant: list(store.titles(tenant, "record").values()))
        self._known_tenants: set[str] = set()

    # ingestion

    def ingest_file(
        self,
        tenant: str,
        path: Path,
        *,
        content: bytes | None = None,
        title_field: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Parse, clean and index one file; passages the file no longer has are deleted.

        Args:
            path: the file; only its name is used when `content` is given.
            content: the file's bytes, for files received over the network.
            progress: called with (passages done, passages total) after each batch.
        """
        validate_tenant(tenant)
        source = path.name
        loaded = load_file(path, title_field=title_field, content=content, source_name=source)
        screened = screen_items(loaded.items)
        cleaned = clean_items(screened.items)
        report = self.upsert_items(tenant, cleaned.items, replace_source=source, progress=progress)
        skipped = tuple(loaded.skipped) + tuple(screened.skipped) + tuple(cleaned.skipped)
        for row in skipped:
            logger.info("tenant %s: skipped %s", tenant, row)
        return report.merge(IngestReport(skipped=skipped))

    def upsert_items(
        self,
        tenant: str,
        items: Sequence[SourceItem],
        *,
        replace_source: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Index items; with `replace_source`, delete that source's points not among them.

        New points are written before stale ones are deleted, so a crash in between leaves
        the old passages searchable next to the new ones, never a hole.
        """
        validate_tenant(tenant)
        existing: dict[str, str] = {}
        sources = {replace_source} if replace_source else {item.source for item in items}
        for source in sources:
            existing.update(self.store.content_hashes(tenant, source))

        payloads = {}
        for item in items:
            payload = _payload(tenant, item)
            payloads[point_id(tenant, item.source, item.kind, item.doc_id)] = payload
        changed = {pid: p for pid, p in payloads.items() if existing.get(pid) != p["content_hash"]}

        self._write_points(changed, progress, total=len(payloads))
        stale = [pid for pid in existing if pid not in payloads] if replace_source else []
        deleted = self.store.delete(tenant, stale) if stale else 0
        self.store.flush()
        self.entities.invalidate(tenant)
        self._known_tenants.discard(tenant)
        # Also after an unchanged ingestion: a store reopened with vector_index=hnsw builds
        # the graphs its segments lack, and with nothing to build this returns at once.
        index_s = self.build_index()

        added = sum(1 for pid in changed if pid not in existing)
        report = IngestReport(
            added=added,
            updated=len(changed) - added,
            unchanged=len(payloads) - len(changed),
            deleted=deleted,
            index_s=index_s,
        )
        logger.info(
            "tenant %s: %d added, %d updated, %d unchanged, %d deleted",
            tenant, report.added, report.updated, report.unchanged, report.deleted,
        )  # fmt: skip
        return report

    def _write_points(
        self, payloads: dict[str, dict[str, Any]], progress: ProgressCallback | None, total: int
    ) -> None:
        done = total - len(payloads)
        ids = list(payloads)
        for start in range(0, len(ids), EMBED_BATCH):
            batch = ids[start : start + EMBED_BATCH]
            texts = [_dense_text(payloads[pid]) for pid in batch]
            dense = self.embedder.embed_passages(texts)
            points = [
                StoredPoint(
                    id=pid,
                    dense=dense[i],
                    sparse=self.tokenizer.document_vector(
                        payloads[pid]["text"], title=payloads[pid]["title"]
                    ),
                    payload=payloads[pid],
                )
                for i, pid in enumerate(batch)
            ]
            self.store.upsert(points)
            done += len(batch)
            if progress:
                progress(done, total)

    def delete(self, tenant: str, *, doc_ids: Iterable[str] = (), source: str = "") -> int:
        """Delete passages by document id and/or by source file; return how many."""
        validate_tenant(tenant)
        doc_ids = [d for d in doc_ids if d]
        if not doc_ids and not source:
            raise InvalidArgumentError("doc_ids", doc_ids, "give document ids or a source name")
        ids = set(self.store.ids_for_docs(tenant, doc_ids)) if doc_ids else set()
        if source:
            ids.update(self.store.content_hashes(tenant, source))
        deleted = self.store.delete(tenant, sorted(ids)) if ids else 0
        self.store.flush()
        self.entities.invalidate(tenant)
        self._known_tenants.discard(tenant)
        if deleted:
            self.build_index()
        logger.info("tenant %s: deleted %d passages", tenant, deleted)
        return deleted

    def build_index(self) -> float:
        """Let the store build its pending search indexes; return the seconds it took.

        The embedded store indexes only here, blocking the whole process (see
        EdgeStore.optimize); with nothing to build it returns at once. A Qdrant server
        indexes in the background, so this returns 0 at once.
        """
        started = time.perf_counter()
        changed = self.store.optimize()
        took = time.perf_counter() - started if changed else 0.0
        if changed:
            logger.info("built the search index in %.1f s", took)
        return took

    # retrieval

    def search(
        self, tenant: str, query: str, *, top_k: int = 5, mode: QueryMode = "hybrid"
    ) -> SearchResult:
        """Return the tenant's best passages for a query, best first.

        Raises:
            InvalidArgumentError: bad tenant id, empty query, top_k or mode out of range.
            NotFoundError: the tenant has no passages.
        """
        validate_tenant(tenant)
        if mode not in QUERY_MODES:
            raise InvalidArgumentError("mode", mode, f"accepted modes are {', '.join(QUERY_MODES)}")
        if not 1 <= top_k <= 100:
            raise InvalidArgumentError("top_k", top_k, "top_k must be within 1..100")
        text = normalize_text(query)
        if not text:
            raise InvalidArgumentError("query", query, "the query is empty after trimming")
        if not self._has_knowledge(tenant):
            raise NotFoundError(
                f"tenant {tenant!r} has no knowledge: ingest files first "
                f"(kefu ingest PATH --tenant {tenant})"
            )

        terms = tuple(self.tokenizer.tokens(text))
        dense = self.embedder.embed_queries([text])[0] if mode != "sparse" else None
        sparse = self.tokenizer.query_vector(text) if mode != "dense" else None
        found = self.store.query(
            tenant, dense=dense, sparse=sparse, limit=top_k, mode=mode, with_dense=dense is not None
        )
        hits = [_hit(h.id, h.score, h.payload, _cosine(dense, h.dense)) for h in found]
        return SearchResult(query=text, query_terms=terms, hits=hits)

    def _has_knowledge(self, tenant: str) -> bool:
        """Return whether the tenant has passages; a positive answer is cached, because an
        exact count costs tens of milliseconds at 100k passages."""
        if tenant in self._known_tenants:
            return True
        if self.store.count(tenant) == 0:
            return False
        self._known_tenants.add(tenant)
        return True

    def stats(self, tenant: str) -> dict[str, int]:
        """Return passage counts per kind, `passages` and `sources` for a tenant."""
        validate_tenant(tenant)
        counts = self.store.stats(tenant)
        result = {kind: int(counts.get(kind, 0)) for kind in KINDS}
        result["passages"] = sum(result[kind] for kind in KINDS)
        result["sources"] = int(counts.get("sources", 0))
        return result


def screen_items(items: Sequence[SourceItem]) -> LoadResult:
    """Remove hidden text from items and hold back those that give the model instructions.

    HTML comments, zero-width characters and bidi controls are stripped (and logged); an
    item whose visible text still tells the model what to do ("忽略之前的所有指令", asks for
    the system prompt or for JSON output) is skipped with the reason, because an answer
    engine could follow it.
    """
    kept, skipped = [], []
    for item in items:
        text = item.text
        flags = detect_injection(text)
        if flags:
            item = _sanitized(item)
            remaining = [f for f in detect_injection(item.text) if f.kind not in HIDDEN_TEXT_KINDS]
            hidden = [f for f in flags if f.kind in HIDDEN_TEXT_KINDS]
            if hidden:
                logger.warning(
                    "%s:%s: removed hidden text (%s)",
                    item.source, item.row, ", ".join(sorted({f.kind for f in hidden})),
                )  # fmt: skip
            if remaining:
                kinds = ", ".join(sorted({f.kind for f in remaining}))
                reason = f"possible prompt injection ({kinds}): {remaining[0].excerpt}"
                skipped.append(SkippedRow(item.source, item.row, reason))
                continue
        kept.append(item)
    return LoadResult(kept, skipped)


def _sanitized(item: SourceItem) -> SourceItem:
    fields = {k: sanitize_passage(v) if isinstance(v, str) else v for k, v in item.fields.items()}
    return replace(
        item,
        title=sanitize_passage(item.title),
        text=sanitize_passage(item.text),
        question=sanitize_passage(item.question),
        answer=sanitize_passage(item.answer),
        fields=fields,
    )


def _payload(tenant: str, item: SourceItem) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "tenant": tenant,
        "doc_id": item.doc_id,
        "kind": item.kind,
        "title": item.title,
        "text": item.text,
        "source": item.source,
        "category": item.category,
        "row": item.row,
        "question": item.question,
        "answer": item.answer,
        "fields": item.fields,
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    payload["content_hash"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    return payload


def _dense_text(payload: dict[str, Any]) -> str:
    return payload["text"][:DENSE_TEXT_CHARS]


def _cosine(query: np.ndarray | None, passage: np.ndarray | None) -> float | None:
    """Cosine similarity of the query to a hit, for answer confidence; None without vectors.

    Both vectors are L2-normalized by the embedders, so the dot product is the cosine.
    """
    if query is None or passage is None:
        return None
    return float(np.dot(query, passage))


def _hit(pid: str, score: float, payload: dict[str, Any], similarity: float | None) -> Hit:
    return Hit(
        id=pid,
        doc_id=str(payload.get("doc_id", "")),
        kind=str(payload.get("kind", "")),
        title=str(payload.get("title", "")),
        text=str(payload.get("text", "")),
        source=str(payload.get("source", "")),
        category=str(payload.get("category", "")),
        score=float(score),
        question=str(payload.get("question") or ""),
        answer=str(payload.get("answer") or ""),
        fields=dict(payload.get("fields") or {}),
        dense_similarity=similarity,
    )
