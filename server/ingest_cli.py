"""`kefu ingest`: in-process against the embedded store, or through a running server."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from rag.types import IngestReport
from server.client import KefuClient
from server.config import Settings
from server.errors import InvalidArgumentError


def ingest_local(
    settings: Settings, tenant: str, files: list[Path], title_field: str | None
) -> IngestReport:
    """Ingest files into the store this process opens.

    Raises:
        StoreLockedError: a running `kefu serve` owns the store; the message says to use
            `--server`.
    """
    from server.app import build_knowledge

    knowledge = build_knowledge(settings)
    report = IngestReport()
    try:
        for path in files:
            with tqdm(desc=path.name, unit="passage", leave=False) as bar:

                def progress(done: int, total: int, bar=bar) -> None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                report = report.merge(
                    knowledge.ingest_file(tenant, path, title_field=title_field, progress=progress)
                )
    finally:
        knowledge.store.close()
    return report


def ingest_remote(
    address: str, tenant: str, files: list[Path], title_field: str | None
) -> IngestReport:
    """Send each file to the server's Knowledge.Upsert, which parses it as a local ingest."""
    client = KefuClient(address)
    report = IngestReport()
    try:
        for path in tqdm(files, desc="files", unit="file", leave=False):
            report = report.merge(client.upsert_file(tenant, path, title_field))
    finally:
        client.close()
    return report


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif")


def ingest_images(
    settings: Settings,
    tenant: str,
    folder: Path,
    manifest: Path | None,
    server: str | None,
) -> IngestReport:
    """Sync the tenant's catalog photos with a folder, in-process or through a server.

    Raises:
        InvalidArgumentError: the folder does not exist.
        StoreLockedError: a running `kefu serve` owns the image store; use --server.
    """
    if not folder.is_dir():
        raise InvalidArgumentError("folder", str(folder), "not a folder of product photos")
    if server:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        client = KefuClient(server)
        try:
            return client.upsert_images(tenant, files, manifest)
        finally:
            client.close()

    from server.images import vision_engines_from_settings

    vision = vision_engines_from_settings(settings, ocr_engine="none")
    try:
        if vision.matcher is None:
            raise InvalidArgumentError("image_match", "none", "image matching is disabled")
        return vision.matcher.catalog.ingest_images(tenant, folder, manifest)
    finally:
        vision.close()
