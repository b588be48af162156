"""Durable log of answered turns and the feedback on them, through SQLAlchemy.

SQLite in the data directory by default; a MySQL or PostgreSQL URL works the same. Each
answer is committed before it is returned to the caller, so feedback can always find it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from server.errors import InvalidArgumentError, NotFoundError, UnavailableError
from server.pii import mask_pii

logger = logging.getLogger(__name__)

RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000


class _Base(DeclarativeBase):
    pass


class AnswerRow(_Base):
    __tablename__ = "answers"

    answer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    citations: Mapped[list] = mapped_column(JSON)
    intent: Mapped[str] = mapped_column(String(64))
    slots: Mapped[dict] = mapped_column(JSON, default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    handoff: Mapped[bool] = mapped_column(Boolean)
    engine: Mapped[str] = mapped_column(String(32))
    latency_ms: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedbackRow(_Base):
    __tablename__ = "feedback"

    feedback_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.answer_id"), index=True)
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class TurnRecord:
    """One answered turn, as the log stores it (question text is masked on write)."""

    answer_id: str
    tenant: str
    session_id: str
    question: str
    answer: str
    citations: list[dict]
    intent: str
    slots: dict[str, list[str]]
    confidence: float
    handoff: bool
    engine: str
    latency_ms: dict[str, float]


class TurnLog:
    """Writes turns and feedback; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self._engine, "connect", _sqlite_pragmas)
        try:
            _Base.metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise UnavailableError(f"cannot open the turn log database {url}: {exc}") from exc
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def record_turn(self, turn: TurnRecord) -> None:
        """Store one answered turn durably."""
        row = AnswerRow(
            answer_id=turn.answer_id,
            tenant=turn.tenant,
            session_id=turn.session_id,
            question=mask_pii(turn.question),
            answer=turn.answer,
            citations=turn.citations,
            intent=turn.intent,
            slots={k: [mask_pii(v) for v in vs] for k, vs in turn.slots.items()},
            confidence=turn.confidence,
            handoff=turn.handoff,
            engine=turn.engine,
            latency_ms=turn.latency_ms,
            created_at=datetime.now(UTC),
        )
        with self._sessions.begin() as session:
            session.add(row)

    def add_feedback(self, answer_id: str, rating: str, comment: str = "") -> str:
        """Store feedback on an answer; return the feedback id.

        Raises:
            InvalidArgumentError: rating not up/down, or comment too long.
            NotFoundError: no answer has this id.
        """
        if rating not in RATINGS:
            raise InvalidArgumentError("rating", rating, "accepted ratings are up and down")
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidArgumentError(
                "comment", comment, f"a comment has at most {MAX_COMMENT_CHARS} characters"
            )
        feedback_id = uuid.uuid4().hex
        with self._sessions.begin() as session:
            if session.get(AnswerRow, answer_id) is None:
                raise NotFoundError(f"no answer with answer_id={answer_id!r}")
            session.add(
                FeedbackRow(
                    feedback_id=feedback_id,
                    answer_id=answer_id,
                    rating=rating,
                    comment=mask_pii(comment),
                    created_at=datetime.now(UTC),
                )
            )
        return feedback_id

    def feedback_for(self, answer_id: str) -> list[dict]:
        """Return the feedback rows of an answer, oldest first."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(FeedbackRow)
                .where(FeedbackRow.answer_id == answer_id)
                .order_by(FeedbackRow.created_at)
            )
            return [{"rating": r.rating, "comment": r.comment} for r in rows]

    def turn(self, answer_id: str) -> dict | None:
        """Return a stored turn as a dict, or None."""
        with Session(self._engine) as session:
            row = session.get(AnswerRow, answer_id)
            if row is None:
                return None
            return {
                "tenant": row.tenant,
                "session_id": row.session_id,
                "question": row.question,
                "answer": row.answer,
                "citations": json.loads(json.dumps(row.citations)),
                "intent": row.intent,
                "handoff": row.handoff,
            }

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the writer; FULL sync makes a commit survive power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
