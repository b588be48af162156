"""Typed values passed between the ingestion, store and retrieval stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# faq: a question/answer pair; doc: a chunk of a text or Markdown document;
# record: one structured entity (product, store, venue, policy) with named fields.
Kind = Literal["faq", "doc", "record"]
KINDS: tuple[str, ...] = ("faq", "doc", "record")


@dataclass(frozen=True)
class SourceItem:
    """One logical item read from an input file, before chunking and embedding.

    Attributes:
        kind: faq, doc or record.
        doc_id: the source's own id (FAQ id column, record title, document file name).
        title: display title (FAQ question, record title, document heading path).
        text: the text that is indexed.
        source: file name the item came from (no directories), used to find stale items.
        row: 1-based row or line number in the source file, or None for whole documents.
        category: FAQ category or record type, empty when absent.
        question: FAQ question (faq only).
        answer: FAQ answer (faq only).
        fields: record fields (record only); values are strings, numbers or lists.
    """

    kind: Kind
    doc_id: str
    title: str
    text: str
    source: str
    row: int | None = None
    category: str = ""
    question: str = ""
    answer: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedRow:
    """A row that ingestion did not index, and why."""

    file: str
    row: int | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class LoadResult:
    """Items read from one file plus the rows that were skipped."""

    items: list[SourceItem]
    skipped: list[SkippedRow]


@dataclass(frozen=True)
class SparseVector:
    """A sparse BM25 term vector: hashed term ids and their term-frequency weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError(
                f"sparse vector has {len(self.indices)} indices but {len(self.values)} values"
            )


@dataclass(frozen=True)
class StoredPoint:
    """One point to write to the vector store.

    Attributes:
        id: UUID string, stable for the same tenant, kind, doc_id and chunk.
        dense: float32 array of shape (dim,), L2-normalized.
        sparse: BM25 term weights.
        payload: JSON-compatible dict; always has `tenant`, `doc_id`, `source`, `kind`,
            `title`, `text` and `content_hash`.
    """

    id: str
    dense: np.ndarray
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoreHit:
    """One scored point returned by a store query.

    `dense` is the point's stored dense vector when the query asked for it, else None.
    """

    id: str
    score: float
    payload: dict[str, Any]
    dense: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class IngestReport:
    """Outcome of ingesting one or more files for a tenant."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: tuple[SkippedRow, ...] = ()
    # Seconds spent building the store's search index after the writes; 0 when it had
    # nothing to build.
    index_s: float = 0.0

    def merge(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            added=self.added + other.added,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            deleted=self.deleted + other.deleted,
            skipped=self.skipped + other.skipped,
            index_s=self.index_s + other.index_s,
        )
