"""`kefu ingest`: in-process against the embedded store, or through a running server."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from rag.types import IngestReport
from server.client import KefuClient
from server.config import Settings


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
