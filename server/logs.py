"""Logging set-up: stdlib logging, one logger per module, the session id on every line."""

from __future__ import annotations

import contextvars
import logging

from server.pii import PiiMaskingFilter

# The live session of the current task or thread; "-" outside a session.
session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("session_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [session=%(session_id)s] %(message)s"


class SessionFilter(logging.Filter):
    """Adds `session_id` from the context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr with the session id; call once from an entry point."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(SessionFilter())
    # Phone, ID card and bank card numbers never reach a log line.
    handler.addFilter(PiiMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # jieba logs its dictionary loading at INFO through its own handler.
    logging.getLogger("jieba").setLevel(logging.WARNING)
