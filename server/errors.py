"""The project's exception hierarchy.

Core packages (`rag`, `asr_tts`, `vision`) raise these; the gRPC layer maps each class to
one status code in `server.status`. This module imports nothing from grpc.
"""

from __future__ import annotations

from typing import Any


class KefuError(Exception):
    """Base class of every error kefu raises on purpose."""


class InvalidArgumentError(KefuError):
    """A request or input file carries a value that cannot be used.

    Attributes:
        field: the request field, file name or `file:line` location that is wrong.
        value: the rejected value, shortened for display.
    """

    def __init__(self, field: str, value: Any, message: str) -> None:
        self.field = field
        self.value = value
        self.reason = message
        shown = _shorten(value)
        super().__init__(f"invalid {field}={shown}: {message}")

    def with_prefix(self, prefix: str) -> InvalidArgumentError:
        """Return the same error with its field inside `prefix` (e.g. `config.`)."""
        return InvalidArgumentError(prefix + self.field, self.value, self.reason)


class NotFoundError(KefuError):
    """A tenant, document or answer id does not exist."""


class FailedPreconditionError(KefuError):
    """The system is not in a state that allows the operation."""


class StoreLockedError(FailedPreconditionError):
    """Another process owns the embedded vector store."""


class ResourceExhaustedError(KefuError):
    """A capacity or size limit is reached."""


class UnavailableError(KefuError):
    """A backend (Qdrant server, model server) cannot be reached."""


class UnimplementedError(KefuError):
    """The operation needs an engine that this build does not provide yet."""


class ConfigError(KefuError):
    """A setting is invalid; raised at start-up."""


def _shorten(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}…(length {len(value) if hasattr(value, '__len__') else '?'})"
