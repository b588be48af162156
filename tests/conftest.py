"""Shared fixtures: real models, real stores, a real gRPC server on port 0."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag.embed import create_embedder
from rag.tokenize import Tokenizer

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"
MODEL_DIR = Path(tempfile.gettempdir()) / "kefu-test-models"


def shared_data(name: str) -> Path:
    """Return a folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data folder {path} is absent; it sits beside the repository")
    return path


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="session")
def embedder():
    return create_embedder("e5-small")


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


def make_settings(data_dir: Path, **overrides):
    """Build Settings for a server on 127.0.0.1, port 0, with its data in `data_dir`."""
    from server.config import Settings

    values = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "workers": 2,
        # One prepared Whisper model for the whole run instead of one per data folder.
        "model_dir": MODEL_DIR,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(tmp_path: Path):
    """Build Settings for a server in a fresh data folder of this test."""
    return lambda **overrides: make_settings(tmp_path / "data", **overrides)


def ingest_samples(address: str, tenant: str) -> None:
    """Upload the sample knowledge base to a running server as `tenant`."""
    from server.client import KefuClient

    client = KefuClient(address)
    try:
        for path in sorted(SAMPLES.iterdir()):
            client.upsert_file(tenant, path)
    finally:
        client.close()


@pytest.fixture(scope="module")
def running_server(tmp_path_factory, tracer_provider) -> Iterator:
    """A kefu server on port 0 with the sample knowledge base ingested as tenant `shop`.

    Shared by the tests of one module: tests that change knowledge use their own tenant.
    """
    from server.app import ServerThread

    server = ServerThread(make_settings(tmp_path_factory.mktemp("server")), tracer_provider)
    try:
        ingest_samples(server.address, "shop")
        yield server
    finally:
        server.stop()
