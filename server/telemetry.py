"""OpenTelemetry tracing: one span per stage of a turn, carrying tenant and session ids."""

from __future__ import annotations

import logging

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

logger = logging.getLogger(__name__)

SERVICE_NAME = "kefu"

# Span attribute names, shared by every stage.
ATTR_TENANT = "kefu.tenant"
ATTR_SESSION = "kefu.session_id"
ATTR_TURN = "kefu.turn"


def create_tracer_provider(otlp_endpoint: str | None) -> TracerProvider:
    """Return a tracer provider that exports over OTLP/gRPC when an endpoint is set.

    Without an endpoint spans are still created (their ids appear nowhere else) but not
    exported, which keeps the instrumentation on one code path.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        logger.info("exporting traces over OTLP to %s", otlp_endpoint)
    return provider
