"""The one place where kefu errors become gRPC status codes."""

from __future__ import annotations

import grpc

from server.errors import (
    ConfigError,
    FailedPreconditionError,
    InvalidArgumentError,
    KefuError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
    UnimplementedError,
)

_CODES: tuple[tuple[type[KefuError], grpc.StatusCode], ...] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (UnimplementedError, grpc.StatusCode.UNIMPLEMENTED),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_code_of(error: BaseException) -> grpc.StatusCode:
    """Return the status code for an error; unexpected errors are INTERNAL."""
    for error_type, code in _CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def field_of(error: BaseException) -> str:
    """Return the request field an error names, or an empty string."""
    return getattr(error, "field", "") or ""
