"""gRPC services, session orchestration, configuration, telemetry and the `kefu` CLI."""
