"""The dialogue manager: session memory, follow-up resolution, intents, slots and handoff.

A session remembers its recent turns and the entities in focus, so "电话是多少？" after a
question about 北京自然博物馆 is retrieved as "北京自然博物馆 电话是多少？". Sessions expire
after a while and the number kept in memory is bounded.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from rag.answer import FIELD_CUES
from rag.embed import Embedder
from rag.entities import EntityIndex
from server.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_INTENTS_FILE = Path(__file__).with_name("resources") / "intents.yaml"
OTHER_INTENT = "other"
HANDOFF_INTENTS = {"human_agent": "human_requested", "complaint": "complaint"}
# A handoff intent found only by similarity needs a closer match than other intents,
# because a wrong handoff sends a caller to a human for nothing.
HANDOFF_MIN_SIMILARITY = 0.93
# Consecutive low-confidence answers after which a human takes over.
LOW_CONFIDENCE_STREAK = 2

# Words that point back to something named earlier: 它, 这家, 那里 …
_ANAPHORA = re.compile(
    r"它|他家|她家|这家|那家|这里|那里|这儿|那儿|该店|这个|那个|这款|那款|这边|那边"
)
_EXPLICIT_HUMAN = re.compile(r"转人工|人工客服|人工服务|找人工|真人|human agent|real person", re.I)
# A question this short that names nothing is taken as a follow-up.
SHORT_QUESTION_CHARS = 10


@dataclass(frozen=True)
class Slots:
    """Values found in one turn."""

    order_numbers: tuple[str, ...] = ()
    phone_numbers: tuple[str, ...] = ()
    product_codes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.__dict__.items() if v}

    def merge(self, other: Slots) -> Slots:
        """Return the values of both, without repeats."""
        return Slots(
            tuple(_unique(self.order_numbers + other.order_numbers)),
            tuple(_unique(self.phone_numbers + other.phone_numbers)),
            tuple(_unique(self.product_codes + other.product_codes)),
        )


_ORDER_AFTER_CUE = re.compile(
    r"(?:订单号?|单号|order(?:\s*(?:no\.?|number|id))?)\s*[:：#]?\s*([A-Za-z0-9-]{6,32})", re.I
)
_MOBILE = re.compile(r"(?<![\d])(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d-])(0\d{2,3}-\d{7,8}|400-?\d{3}-?\d{4})(?![\d-])")
_LONG_DIGITS = re.compile(r"(?<![\d-])\d{12,24}(?![\d-])")
# A letter/digit run holding at least one letter and one digit: AB-1299-X, Mate60, 5G.
_CODE = re.compile(
    r"(?<![A-Za-z0-9-])(?=[A-Za-z0-9-]*[A-Za-z])(?=[A-Za-z0-9-]*\d)"
    r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
)


def extract_slots(text: str) -> Slots:
    """Find order numbers, phone numbers and product codes in a question."""
    phones = [m.group(1) + m.group(2) + m.group(3) for m in _MOBILE.finditer(text)]
    phones += [m.group(1) for m in _LANDLINE.finditer(text)]
    orders = [m.group(1) for m in _ORDER_AFTER_CUE.finditer(text)]
    # A long digit run that is not a phone number is an order number even without a cue.
    orders += [m.group() for m in _LONG_DIGITS.finditer(text) if m.group() not in phones]
    codes = [
        m.group()
        for m in _CODE.finditer(text)
        if m.group() not in orders and not m.group().isdigit()
    ]
    return Slots(tuple(_unique(orders)), tuple(_unique(phones)), tuple(_unique(codes)))


@dataclass
class DialogueState:
    """What one session remembers between turns."""

    tenant: str
    session_id: str
    history: deque = field(default_factory=lambda: deque(maxlen=12))
    focus: list[str] = field(default_factory=list)
    low_confidence_streak: int = 0
    last_used: float = field(default_factory=time.monotonic)

    def remember(self, role: str, text: str) -> None:
        self.history.append((role, text))

    def set_focus(self, entities: list[str]) -> None:
        if entities:
            rest = [e for e in self.focus if e not in entities]
            self.focus = (list(entities) + rest)[:5]


class SessionMemory:
    """Dialogue states by (tenant, session id), bounded in number and in idle time."""

    def __init__(self, max_sessions: int = 10_000, ttl_s: float = 1800.0) -> None:
        if max_sessions < 1 or ttl_s <= 0:
            raise ConfigError(
                f"invalid session memory limits max_sessions={max_sessions}, ttl_s={ttl_s}: "
                "both must be positive"
            )
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._states: OrderedDict[tuple[str, str], DialogueState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant: str, session_id: str) -> DialogueState:
        """Return the session's state, new when unknown or expired.

        An empty session id gets a fresh state that is not kept.
        """
        if not session_id:
            return DialogueState(tenant, session_id)
        now = time.monotonic()
        key = (tenant, session_id)
        with self._lock:
            self._expire(now)
            state = self._states.pop(key, None) or DialogueState(tenant, session_id)
            state.last_used = now
            self._states[key] = state
            while len(self._states) > self.max_sessions:
                self._states.popitem(last=False)
            return state

    def __len__(self) -> int:
        return len(self._states)

    def _expire(self, now: float) -> None:
        while self._states:
            key, state = next(iter(self._states.items()))
            if now - state.last_used < self.ttl_s:
                return
            del self._states[key]


class IntentClassifier:
    """Nearest labelled example by embedding similarity, per tenant.

    Args:
        embedder: the process's embedding model.
        base_examples: intent → example utterances shared by all tenants.
        tenant_dir: folder of TENANT.yaml files with extra examples; None for none.
        min_similarity: below this cosine the intent is `other`. The default suits
            e5-small, whose cosines between unrelated Chinese sentences reach about 0.89.
    """

    def __init__(
        self,
        embedder: Embedder,
        base_examples: dict[str, list[str]],
        tenant_dir: Path | None = None,
        min_similarity: float = 0.90,
    ) -> None:
        self.embedder = embedder
        self.base_examples = base_examples
        self.tenant_dir = tenant_dir
        self.min_similarity = min_similarity
        self._tables: dict[str, tuple[list[str], np.ndarray]] = {}
        self._lock = threading.Lock()

    def classify(self, tenant: str, text: str) -> tuple[str, float]:
        """Return (intent, similarity) for a question."""
        labels, vectors = self._table(tenant)
        query = self.embedder.embed_queries([text])[0]
        scores = vectors @ query
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        if similarity < self.min_similarity:
            return OTHER_INTENT, similarity
        return labels[best], similarity

    def _table(self, tenant: str) -> tuple[list[str], np.ndarray]:
        with self._lock:
            table = self._tables.get(tenant)
        if table is not None:
            return table
        examples = {k: list(v) for k, v in self.base_examples.items()}
        tenant_file = self.tenant_dir / f"{tenant}.yaml" if self.tenant_dir else None
        if tenant_file is not None and tenant_file.exists():
            for intent, utterances in load_intent_examples(tenant_file).items():
                examples.setdefault(intent, []).extend(utterances)
        labels = [intent for intent, texts in examples.items() for _ in texts]
        texts = [text for texts in examples.values() for text in texts]
        table = (labels, self.embedder.embed_queries(texts))
        with self._lock:
            self._tables[tenant] = table
        return table


def load_intent_examples(path: Path) -> dict[str, list[str]]:
    """Read an intent examples file: a mapping of intent name to a list of utterances.

    Raises:
        ConfigError: the file is unreadable or not of that shape.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read intent examples {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"intent examples {path} must map intent names to lists of text")
    examples = {}
    for intent, utterances in data.items():
        if not isinstance(utterances, list) or not all(isinstance(u, str) for u in utterances):
            raise ConfigError(
                f"invalid intent {intent!r} in {path}: expected a list of example sentences"
            )
        examples[str(intent)] = [u.strip() for u in utterances if u.strip()]
    return examples


@dataclass(frozen=True)
class TurnPlan:
    """What the dialogue manager decided before retrieval.

    Attributes:
        query: the retrieval query, with the focus entity added for a follow-up.
        focus_used: the entity the query was completed with, or empty.
        handoff_reason: set when the caller asked for a human or complained.
    """

    query: str
    intent: str
    intent_similarity: float
    slots: Slots
    mentions: tuple[str, ...]
    focus_used: str = ""
    handoff_reason: str = ""


class DialogueManager:
    """Plans each turn from the session's memory and updates it after the answer."""

    def __init__(
        self, entities: EntityIndex, intents: IntentClassifier, memory: SessionMemory
    ) -> None:
        self.entities = entities
        self.intents = intents
        self.memory = memory

    def plan(self, state: DialogueState, question: str) -> TurnPlan:
        """Decide the retrieval query, intent, slots and any handoff for a question."""
        mentions = self.entities.mentions(state.tenant, question)
        intent, similarity = self.intents.classify(state.tenant, question)
        if _EXPLICIT_HUMAN.search(question):
            intent, similarity = "human_agent", 1.0
        handoff = ""
        if intent in HANDOFF_INTENTS and similarity >= HANDOFF_MIN_SIMILARITY:
            handoff = HANDOFF_INTENTS[intent]

        query, focus_used = question, ""
        if not mentions and state.focus and is_follow_up(question):
            focus_used = state.focus[0]
            query = f"{focus_used} {question}"
        return TurnPlan(
            query=query,
            intent=intent,
            intent_similarity=similarity,
            slots=extract_slots(question),
            mentions=tuple(mentions),
            focus_used=focus_used,
            handoff_reason=handoff,
        )

    def record(
        self,
        state: DialogueState,
        question: str,
        plan: TurnPlan,
        answer_text: str,
        cited_records: list[str],
        low_confidence: bool,
    ) -> str:
        """Update the session after a turn; return a handoff reason for repeated misses."""
        state.remember("user", question)
        state.remember("assistant", answer_text)
        state.set_focus(list(plan.mentions) or cited_records)
        state.low_confidence_streak = state.low_confidence_streak + 1 if low_confidence else 0
        if state.low_confidence_streak >= LOW_CONFIDENCE_STREAK:
            return "repeated_low_confidence"
        return ""

    def observe_assistant_text(self, state: DialogueState, text: str) -> None:
        """Take the entities an assistant reply names into focus (a recommendation)."""
        state.remember("assistant", text)
        state.set_focus(self.entities.mentions(state.tenant, text))


def is_anaphoric(question: str) -> bool:
    """Return True when the question points back with 它, 这家, 那里 and the like."""
    return bool(_ANAPHORA.search(question))


def is_follow_up(question: str) -> bool:
    """Return True for a question that needs an entity named earlier."""
    if is_anaphoric(question):
        return True
    if len(question) <= SHORT_QUESTION_CHARS:
        return True
    return any(cue in question for cues in FIELD_CUES.values() for cue in cues)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
