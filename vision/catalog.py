"""The tenant's catalog photos as image vectors in Qdrant, for matching shoppers' photos.

Catalog images live in their own store, apart from the text passages, because their vectors
have another dimension: the embedded backend uses the folder `data_dir/qdrant-edge-images`
and the server backend the collection `kefu_images`. Each point is one photo. Its payload
carries `tenant`, `doc_id` (the product's id, which is the record's title or doc_id in the
text knowledge base), `title`, `source` (the image file name), `kind` "image", an empty
`text` and `content_hash` (the SHA-256 of the image file).

A folder maps to products by file name: `teapot.jpg`, `teapot_1.jpg` and `teapot-2.png` are
three photos of the product `teapot`. A manifest (CSV or JSON) maps file names to product
ids explicitly and takes precedence for the files it lists.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.knowledge import validate_tenant
from rag.store import VectorStore
from rag.types import IngestReport, SkippedRow, SparseVector, StoredPoint, StoreHit
from server.errors import InvalidArgumentError
from vision.embed import ImageEmbedder
from vision.intake import ImageLimits, load_image

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

IMAGE_EDGE_FOLDER = "qdrant-edge-images"
IMAGE_COLLECTION = "kefu_images"
IMAGE_KIND = "image"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MANIFEST_SUFFIXES = frozenset({".csv", ".json"})
# A trailing `_N` or `-N` of one or two digits numbers several photos of one product.
PHOTO_NUMBER = re.compile(r"^(?P<product>.+?)[_-]\d{1,2}$")
# Images decoded and embedded per step, which bounds the memory of one ingestion.
INGEST_BATCH = 32

IMAGE_NAMESPACE = uuid.UUID("0b6f5e0c-3f7a-4d0e-b1b4-6a2d8f9e7c31")
EMPTY_SPARSE = SparseVector(indices=(), values=())

# Decodes image file bytes to an upright RGB image, or raises InvalidArgumentError.
ImageDecoder = Callable[[bytes], "Image.Image"]


@dataclass(frozen=True)
class CatalogEntry:
    """One photo to index: its file, the product it shows and the product's display title."""

    path: Path
    doc_id: str
    title: str


def open_image_store(
    *,
    data_dir: Path,
    dim: int,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
) -> VectorStore:
    """Open the image store: the Qdrant server when a URL is set, else the embedded store.

    Args:
        data_dir: kefu's data directory; the embedded store lives in `qdrant-edge-images`.
        dim: dimension of the image embedder's vectors.
        qdrant_url: Qdrant server URL, or ":memory:" for qdrant-client's in-process mode.
        qdrant_api_key: API key for the Qdrant server.

    Raises:
        StoreLockedError: another process has the embedded image store open.
        ConfigError: the store contains vectors of another dimension.
        UnavailableError: the Qdrant server cannot be reached.
    """
    if qdrant_url:
        from rag.store_qdrant import QdrantServerStore

        return QdrantServerStore(
            qdrant_url, dim, api_key=qdrant_api_key, collection=IMAGE_COLLECTION
        )

    from rag.store_edge import EdgeStore

    return EdgeStore(Path(data_dir) / IMAGE_EDGE_FOLDER, dim)


def image_point_id(tenant: str, file_name: str) -> str:
    """Return the stable point id of one catalog photo of a tenant."""
    return str(uuid.uuid5(IMAGE_NAMESPACE, f"{tenant}\x1f{IMAGE_KIND}\x1f{file_name}"))


def product_id_from_file(file_name: str) -> str:
    """Return the product id of an image file name: its stem without a photo number.

    `teapot_1.jpg` and `teapot-2.png` both give `teapot`. A product id that itself ends in
    `_` or `-` and one or two digits (such as `cable-10`) needs a manifest.
    """
    stem = Path(file_name).stem.strip()
    match = PHOTO_NUMBER.match(stem)
    return match.group("product") if match else stem


class ImageCatalog:
    """Ingests a tenant's product photos and searches them by image vector."""

    def __init__(
        self,
        store: VectorStore,
        embedder: ImageEmbedder,
        *,
        limits: ImageLimits | None = None,
        decoder: ImageDecoder | None = None,
    ) -> None:
        """Use `store` (opened with the embedder's dimension) for the catalog's vectors.

        Args:
            store: the image store, see `open_image_store`.
            embedder: the image embedder that produces both catalog and query vectors.
            limits: size limits of one catalog image; the intake defaults when None.
            decoder: turns file bytes into an RGB image and raises InvalidArgumentError
                for a file that must be skipped. By default `vision.intake.load_image`
                with `limits`, the same checks an uploaded photo gets.
        """
        self.store = store
        self.embedder = embedder
        self.decoder = decoder or functools.partial(_decode, limits=limits or ImageLimits())

    def ingest_images(
        self, tenant: str, folder: Path, manifest: Path | None = None
    ) -> IngestReport:
        """Index the images directly inside `folder` for the tenant.

        Re-ingesting is idempotent: a photo whose bytes, product id and title are unchanged
        is left alone, and the tenant's photos whose files left the folder are deleted.

        Args:
            tenant: the tenant id.
            folder: folder of product photos; subfolders are ignored.
            manifest: CSV or JSON file mapping file names to product ids (see
                `read_manifest`); files it does not list are mapped by file name.

        Returns:
            Counts of added, updated, unchanged and deleted photos, and the skipped files
            with the reason.

        Raises:
            InvalidArgumentError: the tenant is invalid, the folder is missing, or the
                manifest cannot be read.
        """
        validate_tenant(tenant)
        folder = Path(folder)
        if not folder.is_dir():
            raise InvalidArgumentError("folder", str(folder), "the image folder does not exist")

        mapping = read_manifest(manifest) if manifest is not None else {}
        entries, skipped = _catalog_entries(folder, mapping)

        report = IngestReport(skipped=tuple(skipped))
        for start in range(0, len(entries), INGEST_BATCH):
            report = report.merge(self._ingest_batch(tenant, entries[start : start + INGEST_BATCH]))

        # A file that became unreadable is dropped too, so the store mirrors the folder.
        unreadable = {row.file for row in report.skipped}
        remaining = {
            image_point_id(tenant, entry.path.name)
            for entry in entries
            if entry.path.name not in unreadable
        }
        stale = [pid for pid in self.store.content_hashes(tenant) if pid not in remaining]
        deleted = self.store.delete(tenant, stale) if stale else 0
        report = report.merge(IngestReport(deleted=deleted))
        logger.info(
            "ingested images for tenant %s from %s: %d added, %d updated, %d unchanged, "
            "%d deleted, %d skipped",
            tenant, folder, report.added, report.updated, report.unchanged, report.deleted,
            len(report.skipped),
        )  # fmt: skip
        return report

    def _ingest_batch(self, tenant: str, entries: Sequence[CatalogEntry]) -> IngestReport:
        """Decode, embed and store the photos of one batch that are new or changed."""
        ids = [image_point_id(tenant, entry.path.name) for entry in entries]
        stored = {hit.id: hit.payload for hit in self.store.retrieve(tenant, ids)}

        pending: list[tuple[str, CatalogEntry, str, Image.Image]] = []
        skipped: list[SkippedRow] = []
        unchanged = 0
        for point_id, entry in zip(ids, entries, strict=True):
            try:
                data = entry.path.read_bytes()
            except OSError as exc:
                skipped.append(SkippedRow(entry.path.name, None, f"cannot read the file: {exc}"))
                continue
            content_hash = hashlib.sha256(data).hexdigest()
            if _is_unchanged(stored.get(point_id), entry, content_hash):
                unchanged += 1
                continue
            try:
                image = self.decoder(data)
            except InvalidArgumentError as exc:
                skipped.append(SkippedRow(entry.path.name, None, exc.reason))
                continue
            pending.append((point_id, entry, content_hash, image))

        if pending:
            vectors = self.embedder.embed([image for *_, image in pending])
            points = [
                _to_point(tenant, point_id, entry, content_hash, vector)
                for (point_id, entry, content_hash, _), vector in zip(pending, vectors, strict=True)
            ]
            self.store.upsert(points)
        added = sum(1 for point_id, *_ in pending if point_id not in stored)
        return IngestReport(
            added=added,
            updated=len(pending) - added,
            unchanged=unchanged,
            skipped=tuple(skipped),
        )

    def search(self, tenant: str, vector: np.ndarray, limit: int) -> list[StoreHit]:
        """Return the tenant's photos nearest to an image vector, best first.

        Args:
            tenant: the tenant id.
            vector: float32 array of shape (dim,), L2-normalized.
            limit: number of photos to return, at least 1.

        Returns:
            Hits whose score is the cosine similarity.
        """
        validate_tenant(tenant)
        return self.store.query(tenant, dense=vector, sparse=None, limit=limit, mode="dense")

    def count(self, tenant: str) -> int:
        """Return the number of photos the tenant has."""
        return self.store.count(tenant)

    def close(self) -> None:
        """Close the image store."""
        self.store.close()


def read_manifest(path: Path) -> dict[str, tuple[str, str]]:
    """Read a manifest that maps image file names to product ids and optional titles.

    A CSV manifest has a header with the columns `file` and `product_id`, and optionally
    `title`. A JSON manifest is either an object `{"file": "product_id"}` or a list of
    objects with the keys `file`, `product_id` and optionally `title`.

    Returns:
        File name to (product id, title); the title is empty when the manifest has none.

    Raises:
        InvalidArgumentError: the file is missing, has another suffix, or a row lacks a
            file name or product id.
    """
    path = Path(path)
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise InvalidArgumentError("manifest", str(path), "a manifest must be a .csv or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidArgumentError("manifest", str(path), f"cannot read it: {exc}") from exc

    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _json_rows(path, text)
    mapping: dict[str, tuple[str, str]] = {}
    for number, (file_name, product_id, title) in enumerate(rows, start=1):
        if not file_name or not product_id:
            raise InvalidArgumentError(
                f"{path.name}:{number}",
                (file_name, product_id),
                "each manifest row needs a file name and a product id",
            )
        mapping[Path(file_name).name] = (product_id, title)
    return mapping


def _csv_rows(path: Path, text: str) -> list[tuple[str, str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if not {"file", "product_id"} <= columns:
        raise InvalidArgumentError(
            "manifest",
            str(path),
            f"the CSV header needs the columns file and product_id, found {sorted(columns)}",
        )
    return [
        (
            (row.get("file") or "").strip(),
            (row.get("product_id") or "").strip(),
            (row.get("title") or "").strip(),
        )
        for row in reader
    ]


def _json_rows(path: Path, text: str) -> list[tuple[str, str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError("manifest", str(path), f"invalid JSON: {exc}") from exc
    if isinstance(data, dict):
        return [(str(k).strip(), str(v).strip(), "") for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return [
            (
                str(row.get("file", "")).strip(),
                str(row.get("product_id", "")).strip(),
                str(row.get("title", "")).strip(),
            )
            for row in data
        ]
    raise InvalidArgumentError(
        "manifest",
        str(path),
        'a JSON manifest is an object {"file": "product_id"} or a list of objects with '
        "file, product_id and title",
    )


def _decode(data: bytes, limits: ImageLimits) -> Image.Image:
    return load_image(data, limits, field_name="catalog image").image


def _catalog_entries(
    folder: Path, mapping: dict[str, tuple[str, str]]
) -> tuple[list[CatalogEntry], list[SkippedRow]]:
    """List the folder's image files with their products, and the manifest's missing files."""
    entries = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        product_id, title = mapping.get(path.name, (product_id_from_file(path.name), ""))
        entries.append(CatalogEntry(path=path, doc_id=product_id, title=title or product_id))

    present = {entry.path.name for entry in entries}
    skipped = [
        SkippedRow(name, None, "listed in the manifest, but no such image is in the folder")
        for name in sorted(mapping)
        if name not in present
    ]
    return entries, skipped


def _is_unchanged(payload: dict | None, entry: CatalogEntry, content_hash: str) -> bool:
    if payload is None:
        return False
    return (
        payload.get("content_hash") == content_hash
        and payload.get("doc_id") == entry.doc_id
        and payload.get("title") == entry.title
    )


def _to_point(
    tenant: str, point_id: str, entry: CatalogEntry, content_hash: str, vector: np.ndarray
) -> StoredPoint:
    payload = {
        "tenant": tenant,
        "doc_id": entry.doc_id,
        "title": entry.title,
        "source": entry.path.name,
        "kind": IMAGE_KIND,
        "text": "",
        "content_hash": content_hash,
    }
    return StoredPoint(
        id=point_id, dense=np.asarray(vector, dtype=np.float32), sparse=EMPTY_SPARSE,
        payload=payload,
    )  # fmt: skip
