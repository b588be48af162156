"""Compliance checks on answer text before a caller hears or reads it.

`StreamingGuard` sits between an answer engine's TextDelta events and the caller. It
buffers text until a sentence is complete, checks the sentence and only then releases it:

1. a sentence that contains a banned word, a competitor name or a forbidden promise is
   replaced by a safe line that offers a human agent, and consecutive replaced sentences
   give one safe line;
2. otherwise, contact details that the tenant does not publish are removed from it
   (see `rag.contacts`).

Each replaced sentence and each removed contact adds a GuardEvent for the turn log.

Word and pattern rules see a match form of the sentence, not the text as written: the
`rag.clean.normalize_text` form (NFKC, Traditional → Simplified), lower-cased, with
whitespace kept only between two ASCII letters or digits (保 证 赔 偿 → 保证赔偿, but
"no refund" keeps its space), and with the tenant's allowed phrases blanked out. ASCII
words in word lists match whole words only (JD does not match in jdk), and Chinese words
match anywhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rag.clean import normalize_text
from rag.contacts import AllowedContacts, find_contacts, remove_contacts
from rag.phrases import normalize_locale
from server.errors import ConfigError, FailedPreconditionError, InvalidArgumentError
from server.pii import mask_pii

logger = logging.getLogger(__name__)

RuleKind = Literal["banned_word", "competitor", "forbidden_promise", "contact"]

# A sentence of this many characters is cut at its next ，or 、, so a long answer without
# sentence punctuation still reaches text-to-speech in pieces.
# NOTE: text with no end mark, ，or 、 at all (a long English clause) stays buffered until
# an end mark arrives or finish() is called.
DEFAULT_MAX_SENTENCE_CHARS = 150

SAFE_LINES: dict[str, str] = {
    "zh-CN": "这部分内容暂时无法提供，如需帮助可以转接人工客服。",
    "en-US": "Sorry, I can't share that information. I can connect you to a human agent.",
}


# An end mark, then any further end marks and closing quotes or brackets.
_SENTENCE_END = re.compile(
    r"(?:[。！？；\n]|[!?;](?=\s|[^\x00-\x7f])|\.(?=\s))"
    r"[。！？；\n\r!?;”’」』）】》)\]\"']*"
)
# A cut never falls before a digit, so 电话：83172726，83172706 keeps its list together.
_SOFT_BREAK = re.compile(r"[，、](?=[^\s\d+])")
_WORD_CHARACTER = re.compile(r"\w")
_SPACE_AROUND_NON_ASCII = re.compile(r"(?<![a-z0-9])\s+|\s+(?![a-z0-9])")


@dataclass(frozen=True)
class PatternRule:
    """A regular-expression rule.

    Attributes:
        id: the name that GuardEvent.rule_id and log lines show.
        pattern: a Python regular expression, searched case-insensitively in the match
            form described in the module docstring.
    """

    id: str
    pattern: str


# Promises that customer service must not make: guaranteed compensation or refunds,
# absolute assurances and risk-free claims.
DEFAULT_FORBIDDEN_PROMISES: tuple[str, ...] = (
    "包赔",
    "百分之百退款",
    "绝对不会",
    "绝对没问题",
    "无条件退款",
    "无条件赔偿",
    "假一赔十",
    "假一罚十",
    "稳赚不赔",
    "零风险",
)

# The lookbehinds keep negations (不能保证赔偿) and purpose clauses (为了保证退款及时) out.
_NOT_A_PROMISE = r"(?<!不)(?<!不能)(?<!不会)(?<!无法)(?<!没法)(?<!为)(?<!以)(?<!为了)"

DEFAULT_FORBIDDEN_PROMISE_PATTERNS: tuple[PatternRule, ...] = (
    PatternRule(
        "guaranteed-compensation",
        _NOT_A_PROMISE + r"(?:保证|承诺|一定|肯定|绝对)(?:会|能|可以)?(?:给您|给你|为您|帮您)?"
        r"(?:全额|双倍|加倍)?(?:赔|补偿|退款|退钱)",
    ),
    PatternRule(
        "hundred-percent",
        r"(?:百分之百|百分百|100%)(?:退款|退货|赔|到账|保证|成功|有效|没问题|满意)",
    ),
    PatternRule(
        "guaranteed-delivery",
        _NOT_A_PROMISE + r"(?:保证|承诺)(?:您|你)?(?:今天|明天|当天|次日|按时|准时)?"
        r"(?:一定)?(?:送达|到货|到账)",
    ),
)

_WORD_FIELDS: dict[str, RuleKind] = {
    "banned_words": "banned_word",
    "competitors": "competitor",
    "forbidden_promises": "forbidden_promise",
}
_PATTERN_FIELDS: dict[str, RuleKind] = {
    "banned_patterns": "banned_word",
    "competitor_patterns": "competitor",
    "forbidden_promise_patterns": "forbidden_promise",
}
YAML_KEYS = (
    *_WORD_FIELDS,
    *_PATTERN_FIELDS,
    "include_default_promises",
    "allowed_phrases",
    "allowed_contacts",
)
_ALLOWED_CONTACT_KEYS = ("phones", "domains", "wechat_ids", "qq_numbers", "emails")


@dataclass(frozen=True)
class RuleHit:
    """One rule that matched a sentence; `matched` is the matched part of the match form."""

    kind: RuleKind
    rule_id: str
    pattern: str
    matched: str


@dataclass(frozen=True)
class GuardEvent:
    """A change the guard made to an answer, for the turn log.

    Attributes:
        kind: banned_word, competitor, forbidden_promise or contact.
        rule_id: the word, the PatternRule id, or for contacts the contact kind
            (mobile, landline, hotline, phone, wechat, qq, email, url).
        pattern: the word or regular expression; empty for contacts.
        matched: the text that matched, with personal data masked.
        sentence: the original sentence, stripped, with personal data masked.
        action: replaced (the sentence became the safe line) or removed (the contact was
            deleted from the sentence).
    """

    kind: RuleKind
    rule_id: str
    pattern: str
    matched: str
    sentence: str
    action: Literal["replaced", "removed"]


@dataclass(frozen=True)
class _KindMatcher:
    kind: RuleKind
    words: re.Pattern[str] | None
    word_ids: Mapping[str, str]
    patterns: tuple[tuple[PatternRule, re.Pattern[str]], ...]

    def hits(self, form: str) -> list[RuleHit]:
        found: dict[str, RuleHit] = {}
        if self.words is not None:
            for match in self.words.finditer(form):
                word = self.word_ids[match.group()]
                found.setdefault(word, RuleHit(self.kind, word, word, match.group()))
        for rule, compiled in self.patterns:
            match = compiled.search(form)
            if match is not None:
                found.setdefault(rule.id, RuleHit(self.kind, rule.id, rule.pattern, match.group()))
        return list(found.values())


@dataclass(frozen=True)
class ComplianceRules:
    """A tenant's compliance rules. Word lists and patterns are compiled once, on creation.

    Attributes:
        banned_words: words that must not appear in an answer.
        banned_patterns: regular expressions for the same purpose.
        competitors: competitor names (brands, shops, apps).
        competitor_patterns: regular expressions for competitor names.
        forbidden_promises: promise wording, DEFAULT_FORBIDDEN_PROMISES by default.
        forbidden_promise_patterns: DEFAULT_FORBIDDEN_PROMISE_PATTERNS by default.
        allowed_phrases: phrases blanked out before the checks, for wording that contains a
            rule word but is fine, such as 京东物流 when 京东 is a competitor.
        allowed_contacts: contact details that answers may keep.

    Patterns may be given as strings; each then becomes a PatternRule whose id is the
    pattern itself. Raises ConfigError on an empty word, an invalid regular expression or
    a pattern that matches the empty string.
    """

    banned_words: tuple[str, ...] = ()
    banned_patterns: tuple[PatternRule, ...] = ()
    competitors: tuple[str, ...] = ()
    competitor_patterns: tuple[PatternRule, ...] = ()
    forbidden_promises: tuple[str, ...] = DEFAULT_FORBIDDEN_PROMISES
    forbidden_promise_patterns: tuple[PatternRule, ...] = DEFAULT_FORBIDDEN_PROMISE_PATTERNS
    allowed_phrases: tuple[str, ...] = ()
    allowed_contacts: AllowedContacts = field(default_factory=AllowedContacts)
    _matchers: tuple[_KindMatcher, ...] = field(init=False, repr=False, compare=False)
    _allowed_phrase_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_contacts, AllowedContacts):
            raise ConfigError(
                f"invalid allowed_contacts={self.allowed_contacts!r}: expected AllowedContacts"
            )
        for name in (*_WORD_FIELDS, "allowed_phrases"):
            object.__setattr__(self, name, _validated_words(name, getattr(self, name)))
        for name in _PATTERN_FIELDS:
            object.__setattr__(self, name, _validated_patterns(name, getattr(self, name)))

        matchers = tuple(
            _compile_matcher(kind, getattr(self, word_field), getattr(self, pattern_field))
            for (word_field, kind), pattern_field in zip(
                _WORD_FIELDS.items(), _PATTERN_FIELDS, strict=True
            )
        )
        object.__setattr__(self, "_matchers", matchers)
        object.__setattr__(self, "_allowed_phrase_re", _alternation(self.allowed_phrases))

    @classmethod
    def from_yaml(cls, path: str | Path) -> ComplianceRules:
        """Load a tenant's rules from a YAML mapping with the keys in YAML_KEYS.

        `forbidden_promises` and `forbidden_promise_patterns` add to the defaults unless
        `include_default_promises` is false. `allowed_contacts` is a mapping with the keys
        phones, domains, wechat_ids, qq_numbers and emails. A pattern is a string or a
        mapping with `id` and `pattern`. An empty file gives the default rules.

        Raises:
            ConfigError: the file is missing or not YAML, a key is unknown, or a value is
                invalid. The message names the file, the key and the value.
        """
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"compliance rules file {path} not found") from exc
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read compliance rules file {path}: {exc}") from exc

        try:
            return cls._from_mapping({} if document is None else document)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @classmethod
    def _from_mapping(cls, document: Any) -> ComplianceRules:
        if not isinstance(document, dict):
            raise ConfigError(
                f"invalid document={document!r}: expected a mapping with the keys "
                f"{', '.join(YAML_KEYS)}"
            )
        _reject_unknown_keys("", document, YAML_KEYS)

        values = {key: document[key] for key in YAML_KEYS if document.get(key) is not None}
        include_defaults = values.pop("include_default_promises", True)
        if not isinstance(include_defaults, bool):
            raise ConfigError(
                f"invalid include_default_promises={include_defaults!r}: expected true or false"
            )
        defaults = {
            "forbidden_promises": DEFAULT_FORBIDDEN_PROMISES,
            "forbidden_promise_patterns": DEFAULT_FORBIDDEN_PROMISE_PATTERNS,
        }
        for key, default in defaults.items():
            extra = _as_list(key, values.get(key, []))
            values[key] = (*default, *extra) if include_defaults else tuple(extra)
        if "allowed_contacts" in values:
            values["allowed_contacts"] = _allowed_contacts_from(values["allowed_contacts"])
        return cls(**values)

    def violations(self, text: str) -> list[RuleHit]:
        """Check one sentence; return every rule it breaks, each rule once.

        Args:
            text: a sentence as written; the rules see its match form.
        """
        form = self.match_form(text)
        hits: list[RuleHit] = []
        for matcher in self._matchers:
            hits.extend(matcher.hits(form))
        return hits

    def match_form(self, text: str) -> str:
        """Return the form of `text` that word and pattern rules are matched against."""
        form = _match_form(text)
        if self._allowed_phrase_re is not None:
            form = self._allowed_phrase_re.sub(" ", form)
        return form


class StreamingGuard:
    """Releases answer text sentence by sentence, each sentence only after it passed.

    Sentences end at 。！？；, at a newline, at !?; before whitespace, a non-ASCII
    character or the end of the answer (so a URL's ?query does not end one), and at a
    period before whitespace. Closing quotes and brackets after the end stay with the
    sentence. A sentence that reaches max_sentence_chars is cut after its next ，or 、
    that is followed by neither a digit nor whitespace. The sentences do not depend on how
    the text was split into deltas.

    Not thread-safe: one guard serves one answer stream.
    """

    def __init__(
        self,
        rules: ComplianceRules,
        locale: str = "zh-CN",
        *,
        max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
        also_allowed: AllowedContacts | None = None,
    ) -> None:
        """Create a guard for one answer.

        `also_allowed` adds contacts for this answer only, such as the phone numbers in the
        fields of the records it was retrieved from.

        Raises:
            InvalidArgumentError: the locale is not supported, or max_sentence_chars is
                below 1.
        """
        if max_sentence_chars < 1:
            raise InvalidArgumentError(
                "max_sentence_chars",
                max_sentence_chars,
                f"must be 1 or more; the default is {DEFAULT_MAX_SENTENCE_CHARS}",
            )
        self.rules = rules
        self._allowed_contacts = merge_contacts(rules.allowed_contacts, also_allowed)
        self.locale = normalize_locale(locale)
        self.max_sentence_chars = max_sentence_chars
        self._buffer = ""
        self._scan_from = 0
        self._events: list[GuardEvent] = []
        self._last_was_safe_line = False
        self._finished = False

    @property
    def events(self) -> list[GuardEvent]:
        """A copy of the events recorded so far, in text order."""
        return list(self._events)

    def feed(self, text: str) -> list[str]:
        """Add a text delta; return the sentences that are complete and checked.

        Raises:
            FailedPreconditionError: finish() was already called.
        """
        if self._finished:
            raise FailedPreconditionError(
                "feed() was called after finish(). Create a new StreamingGuard for each answer."
            )
        if not text:
            return []
        self._buffer += text
        return self._release_complete_sentences()

    def finish(self) -> list[str]:
        """End the answer: check and return the rest of the text, even without an end mark.

        Raises:
            FailedPreconditionError: finish() was already called.
        """
        if self._finished:
            raise FailedPreconditionError(
                "finish() was called twice. Create a new StreamingGuard for each answer."
            )
        self._finished = True
        rest, self._buffer = self._buffer, ""
        released = self._check_sentence(rest) if rest else None
        return [released] if released else []

    def _release_complete_sentences(self) -> list[str]:
        released = []
        while (end := self._next_sentence_end()) is not None:
            sentence = self._buffer[:end]
            self._buffer = self._buffer[end:]
            self._scan_from = 0
            checked = self._check_sentence(sentence)
            if checked:
                released.append(checked)
        return released

    def _next_sentence_end(self) -> int | None:
        buffer = self._buffer
        match = _SENTENCE_END.search(buffer, self._scan_from)
        limit = match.start() if match else len(buffer)
        if limit >= self.max_sentence_chars:
            soft_break = _SOFT_BREAK.search(buffer, self.max_sentence_chars - 1, limit)
            if soft_break is not None:
                return soft_break.end()

        if match is None:
            # The last character can be a ! ? ; or . that the next delta decides on.
            self._scan_from = max(self._scan_from, len(buffer) - 1)
            return None
        if match.end() == len(buffer):
            # More end marks or closing quotes may follow in the next delta.
            self._scan_from = match.start()
            return None
        return match.end()

    def _check_sentence(self, sentence: str) -> str | None:
        if not sentence.strip():
            return sentence

        hits = self.rules.violations(sentence)
        if hits:
            self._record_rule_hits(hits, sentence)
            if self._last_was_safe_line:
                return _trailing_space(sentence) or None
            self._last_was_safe_line = True
            return _leading_space(sentence) + SAFE_LINES[self.locale] + _trailing_space(sentence)

        cleaned, removed = remove_contacts(sentence, self._allowed_contacts)
        masked_sentence = mask_pii(sentence.strip())
        for contact in removed:
            self._events.append(
                GuardEvent(
                    kind="contact",
                    rule_id=contact.kind,
                    pattern="",
                    matched=mask_pii(contact.value),
                    sentence=masked_sentence,
                    action="removed",
                )
            )
        if removed and not _WORD_CHARACTER.search(cleaned):
            return _trailing_space(sentence) or None
        self._last_was_safe_line = False
        return cleaned

    def _record_rule_hits(self, hits: list[RuleHit], sentence: str) -> None:
        masked_sentence = mask_pii(sentence.strip())
        for hit in hits:
            logger.debug("replaced a sentence: %s rule %s", hit.kind, hit.rule_id)
            self._events.append(
                GuardEvent(
                    kind=hit.kind,
                    rule_id=hit.rule_id,
                    pattern=hit.pattern,
                    matched=mask_pii(hit.matched),
                    sentence=masked_sentence,
                    action="replaced",
                )
            )


def check_text(
    rules: ComplianceRules, text: str, locale: str = "zh-CN"
) -> tuple[str, list[GuardEvent]]:
    """Check a whole text with a StreamingGuard; return the safe text and the events."""
    guard = StreamingGuard(rules, locale)
    released = guard.feed(text) + guard.finish()
    return "".join(released), guard.events


def _match_form(text: str) -> str:
    form = normalize_text(text).casefold()
    return _SPACE_AROUND_NON_ASCII.sub("", form)


def _leading_space(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _trailing_space(text: str) -> str:
    return text[len(text.rstrip()) :]


def _validated_words(name: str, values: Any) -> tuple[str, ...]:
    words = _as_list(name, values)
    for index, word in enumerate(words):
        if not isinstance(word, str) or not _match_form(word):
            raise ConfigError(
                f"invalid {name}[{index}]={word!r}: expected a non-empty string of words"
            )
    return tuple(words)


def _validated_patterns(name: str, values: Any) -> tuple[PatternRule, ...]:
    rules = []
    for index, value in enumerate(_as_list(name, values)):
        rule = _pattern_rule(f"{name}[{index}]", value)
        try:
            compiled = re.compile(rule.pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(
                f"invalid {name}[{index}]={rule.pattern!r}: not a valid Python regular "
                f"expression ({exc})"
            ) from exc
        if compiled.search("") is not None:
            raise ConfigError(
                f"invalid {name}[{index}]={rule.pattern!r}: the pattern matches the empty "
                "string, so it would flag every sentence"
            )
        rules.append(rule)
    return tuple(rules)


def _pattern_rule(where: str, value: Any) -> PatternRule:
    if isinstance(value, PatternRule):
        return value
    if isinstance(value, str) and value:
        return PatternRule(id=value, pattern=value)
    if isinstance(value, dict):
        _reject_unknown_keys(where, value, ("id", "pattern"))
        pattern = value.get("pattern")
        if isinstance(pattern, str) and pattern:
            return PatternRule(id=str(value.get("id") or pattern), pattern=pattern)
    raise ConfigError(
        f"invalid {where}={value!r}: expected a regular expression string or a mapping "
        "with id and pattern"
    )


def _as_list(name: str, values: Any) -> list[Any]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(f"invalid {name}={values!r}: expected a list")
    return list(values)


def _reject_unknown_keys(where: str, mapping: dict, accepted: Iterable[str]) -> None:
    accepted = tuple(accepted)
    for key, value in mapping.items():
        if key not in accepted:
            name = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"unknown key {name}={value!r}: accepted keys are {', '.join(accepted)}"
            )


def _allowed_contacts_from(value: Any) -> AllowedContacts:
    if not isinstance(value, dict):
        raise ConfigError(
            f"invalid allowed_contacts={value!r}: expected a mapping with the keys "
            f"{', '.join(_ALLOWED_CONTACT_KEYS)}"
        )
    _reject_unknown_keys("allowed_contacts", value, _ALLOWED_CONTACT_KEYS)
    lists = {
        key: tuple(_as_list(f"allowed_contacts.{key}", items))
        for key, items in value.items()
        if items is not None
    }
    return AllowedContacts(**lists)


def _compile_matcher(
    kind: RuleKind, words: tuple[str, ...], patterns: tuple[PatternRule, ...]
) -> _KindMatcher:
    word_ids = {_match_form(word): word for word in words}
    compiled = tuple((rule, re.compile(rule.pattern, re.IGNORECASE)) for rule in patterns)
    return _KindMatcher(kind, _alternation(words), word_ids, compiled)


def _alternation(words: Iterable[str]) -> re.Pattern[str] | None:
    forms = sorted({_match_form(word) for word in words}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile("|".join(_word_pattern(form) for form in forms))


def _word_pattern(form: str) -> str:
    # ASCII words match whole words only; Chinese has no spaces to mark word edges.
    pattern = re.escape(form)
    if form[0].isascii() and form[0].isalnum():
        pattern = r"(?<![a-z0-9])" + pattern
    if form[-1].isascii() and form[-1].isalnum():
        pattern += r"(?![a-z0-9])"
    return pattern


class TenantRules:
    """Compliance rules per tenant: `DIR/TENANT.yaml` when present, else the defaults.

    Files are read once per tenant and kept; restart the server after editing one.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._default = ComplianceRules()
        self._rules: dict[str, ComplianceRules] = {}

    def for_tenant(self, tenant: str) -> ComplianceRules:
        """Return the tenant's rules.

        Raises:
            ConfigError: the tenant's file is invalid.
        """
        rules = self._rules.get(tenant)
        if rules is None:
            path = self.folder / f"{tenant}.yaml" if self.folder else None
            rules = ComplianceRules.from_yaml(path) if path and path.exists() else self._default
            self._rules[tenant] = rules
        return rules


def merge_contacts(first: AllowedContacts, second: AllowedContacts | None) -> AllowedContacts:
    """Return an allow-list holding the contacts of both."""
    if second is None:
        return first
    return AllowedContacts(
        phones=first.phones + second.phones,
        domains=first.domains + second.domains,
        wechat_ids=first.wechat_ids + second.wechat_ids,
        qq_numbers=first.qq_numbers + second.qq_numbers,
        emails=first.emails + second.emails,
    )


_ALLOW_LIST_FIELD = {
    "mobile": "phones",
    "landline": "phones",
    "hotline": "phones",
    "phone": "phones",
    "wechat": "wechat_ids",
    "qq": "qq_numbers",
    "email": "emails",
}


def record_contacts(fields: Iterable[tuple[str, Any]]) -> AllowedContacts:
    """Collect the contacts in structured record fields as an allow-list.

    A record's fields are the tenant's own directory data (a store's 电话, a venue's 网址),
    published to be given out, unlike contacts inside free text, which may be planted. A
    bare number such as 82077741 counts as a phone number when its field is named like one.

    Args:
        fields: (field name, value) pairs; values are strings or lists of them.
    """
    found: dict[str, list[str]] = {name: [] for name in set(_ALLOW_LIST_FIELD.values())}
    found["domains"] = []
    for name, value in fields:
        keyword = "电话：" if _PHONE_FIELD.search(str(name)) else ""
        for text in _flatten([value]):
            for match in find_contacts(keyword + text):
                if match.kind == "url":
                    found["domains"].append(match.value)
                elif match.kind in _ALLOW_LIST_FIELD:
                    found[_ALLOW_LIST_FIELD[match.kind]].append(match.value)
    return AllowedContacts(**{name: tuple(values) for name, values in found.items()})


_PHONE_FIELD = re.compile(r"电话|手机|热线|联系|phone|tel|mobile", re.IGNORECASE)


def _flatten(values: Iterable[Any]) -> Iterable[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            yield from _flatten(value)
