"""Text normalization and the filters that decide which loaded items get indexed.

`normalize_text` runs on every knowledge item at ingestion and on every customer question
at query time, so both sides of a match see the same characters. It applies, in order:

1. removal of control characters (other than whitespace), zero-width characters, bidi
   marks, the soft hyphen and stray byte-order marks;
2. Unicode NFKC, which turns full-width letters, digits and symbols into ASCII
   (ＡＢ－１２９９ → AB-1299) and expands compatibility characters (① → 1, ㎡ → m2).
   The Chinese sentence punctuation ，！？：；（）and … is exempt and stays full-width, because
   answers are shown and read out to customers, and Chinese text uses full-width
   punctuation. Comparisons that must ignore the difference use `match_key`;
3. Traditional → Simplified Chinese with OpenCC's `t2s` configuration;
4. whitespace collapse and trim. Spaces between Chinese characters are kept.

OpenCC choice: `t2s` converts characters and resolves one-to-many characters by phrase
(乾燥 → 干燥 but 乾坤 stays; 瞭解 → 了解 but 瞭望 stays). `tw2sp` also swaps Taiwanese
vocabulary for mainland words (滑鼠 → 鼠标, 軟體 → 软件), but it rewrites words that
mainland speakers use too (資料 → 数据, 訊息 → 消息, 程式 → 程序). Traditional text from
mainland customers mostly comes from ASR output or keyboard settings, with mainland words,
so `t2s` keeps its meaning. Checked with the opencc 1.4.2 wheel.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from typing import Any

import opencc

from rag.types import LoadResult, SkippedRow, SourceItem
from server.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

DEFAULT_MIN_QUESTION_CHARS = 2

# One converter is shared by every thread. tests/rag/test_clean.py converts from 8 threads
# at once and compares the output with single-threaded calls.
_T2S = opencc.OpenCC("t2s")

# Characters removed outright. These are the C0 and C1 controls except the whitespace ones
# (tab, newline, vertical tab, form feed, carriage return), the soft hyphen, zero-width
# spaces and joiners, bidi marks, invisible operators, the byte-order mark and similar
# invisible characters. Lone surrogates are removed too, because JSON escapes can produce
# them and OpenCC cannot encode them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb]+"
)

# Chinese sentence punctuation that NFKC would turn into ASCII; it stays as written.
_KEPT_PUNCTUATION = "，！？：；（）…"
_KEPT_SPLIT = re.compile(f"([{_KEPT_PUNCTUATION}])")

_NOT_WORD = re.compile(r"[\W_]+")

# Filler typed while testing a knowledge base, matched against a whole match_key. It is a
# test word with an optional suffix and number, a keyboard run, one letter or digit typed
# three or more times, a counting run from 123, or a placeholder word.
_TEST_CONTENT = re.compile(
    r"(?:test|testing|测试|测测)(?:一下|问题|答案|数据|question|answer|data)?\d*"
    r"|(?:asdf|qwer|zxcv)[a-z]*"
    r"|([a-z0-9])\1{2,}"
    r"|123(?:4(?:5(?:6(?:7(?:8(?:9(?:0)?)?)?)?)?)?)?"
    r"|placeholder|todo|tbd|dummy|lorem(?:ipsum)?\w*|占位符?|待补充|待填写|待定"
)


def normalize_text(text: str, *, keep_newlines: bool = False) -> str:
    """Normalize one string for indexing or matching, as described in the module docstring.

    Args:
        text: any text, such as a customer question, an answer or a field value.
        keep_newlines: keep line breaks, collapsing whitespace within each line and
            dropping empty lines. By default every whitespace run, line breaks included,
            becomes one space.

    Returns:
        The normalized text, trimmed; empty when nothing visible remains.
    """
    if not text:
        return ""

    text = _INVISIBLE.sub("", text)
    text = _nfkc_keeping_chinese_punctuation(text)
    text = _T2S.convert(text)

    if not keep_newlines:
        return " ".join(text.split())
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def match_key(text: str) -> str:
    """Return the form of `text` used to compare questions for equality.

    It is `normalize_text(text)` case-folded, with punctuation, symbols, underscores and
    whitespace removed, so "运费怎么算？" and "运费 怎么算?" get the same key.
    """
    return _NOT_WORD.sub("", normalize_text(text).casefold())


def is_test_content(text: str) -> bool:
    """Return whether the whole text is test filler such as "测试", "asdf", "xxx" or "123"."""
    return _TEST_CONTENT.fullmatch(match_key(text)) is not None


def clean_items(
    items: list[SourceItem], *, min_question_chars: int = DEFAULT_MIN_QUESTION_CHARS
) -> LoadResult:
    """Normalize loaded items and drop the ones that should not be indexed.

    Each item's question, answer, title, text, category and string field values (inside
    lists and objects too) go through `normalize_text`. FAQ text is rebuilt as
    question + "\\n" + answer. Then items are skipped, each with a SkippedRow, when:

    - a FAQ question or answer, a document chunk's text or a record's title is empty;
    - a FAQ question has fewer than `min_question_chars` letters, digits or characters
      (punctuation and spaces do not count);
    - a FAQ question or answer is test filler (see `is_test_content`);
    - an earlier item is the same: the same question (by `match_key`) or the same doc_id
      for FAQ rows, the same doc_id for records, the same text for document chunks.
      The first one is kept.

    Args:
        items: items from `rag.loaders.load_file`, from one or more files.
        min_question_chars: minimum length of a FAQ question after cleaning.

    Returns:
        The kept items in input order and the skipped rows.

    Raises:
        InvalidArgumentError: min_question_chars is negative.
    """
    if min_question_chars < 0:
        raise InvalidArgumentError(
            "min_question_chars", min_question_chars, "must be 0 or more; the default is 2"
        )

    kept: list[SourceItem] = []
    skipped: list[SkippedRow] = []
    first_seen: dict[tuple[str, str, str], SourceItem] = {}
    for item in items:
        cleaned = _clean_item(item)
        reason = _rejection_reason(cleaned, min_question_chars)
        if reason is None:
            reason = _duplicate_reason(cleaned, first_seen)
        if reason is not None:
            logger.debug("skipped %s row %s: %s", cleaned.source, cleaned.row, reason)
            skipped.append(SkippedRow(file=cleaned.source, row=cleaned.row, reason=reason))
            continue
        kept.append(cleaned)

    logger.info("cleaned %d items: kept %d, skipped %d", len(items), len(kept), len(skipped))
    return LoadResult(items=kept, skipped=skipped)


def _nfkc_keeping_chinese_punctuation(text: str) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    if not any(mark in text for mark in _KEPT_PUNCTUATION):
        return unicodedata.normalize("NFKC", text)
    # re.split with a capturing group puts the kept marks at the odd indices.
    parts = _KEPT_SPLIT.split(text)
    return "".join(
        part if index % 2 else unicodedata.normalize("NFKC", part)
        for index, part in enumerate(parts)
    )


def _normalize_value(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value, keep_newlines=True)
    if isinstance(value, list):
        return [_normalize_value(element) for element in value]
    if isinstance(value, dict):
        return {key: _normalize_value(element) for key, element in value.items()}
    return value


def _clean_item(item: SourceItem) -> SourceItem:
    question = normalize_text(item.question)
    answer = normalize_text(item.answer, keep_newlines=True)
    if item.kind == "faq":
        text = f"{question}\n{answer}"
    else:
        text = normalize_text(item.text, keep_newlines=True)

    return dataclasses.replace(
        item,
        title=normalize_text(item.title),
        text=text,
        category=normalize_text(item.category),
        question=question,
        answer=answer,
        fields=_normalize_value(item.fields),
    )


def _rejection_reason(item: SourceItem, min_question_chars: int) -> str | None:
    if item.kind == "doc":
        return "empty text" if not item.text else None
    if item.kind == "record":
        return "empty title" if not item.title else None

    if not item.question:
        return "empty question"
    if not item.answer:
        return "empty answer"
    length = len(match_key(item.question))
    if length < min_question_chars:
        return (
            f"question too short: {length} characters without punctuation and spaces, "
            f"minimum {min_question_chars}"
        )
    if is_test_content(item.question):
        return f"test row: the question {item.question!r} is test filler"
    if is_test_content(item.answer):
        return f"test row: the answer {item.answer!r} is test filler"
    return None


def _duplicate_reason(
    item: SourceItem, first_seen: dict[tuple[str, str, str], SourceItem]
) -> str | None:
    """Return why `item` repeats an earlier item, or None after recording its keys."""
    if item.kind == "faq":
        keys = [("faq", "question", match_key(item.question)), ("faq", "doc_id", item.doc_id)]
    elif item.kind == "record":
        keys = [("record", "doc_id", item.doc_id)]
    else:
        keys = [("doc", "text", item.text)]

    for key in keys:
        first = first_seen.get(key)
        if first is None:
            continue
        id_note = f"id {item.doc_id!r} " if key[1] == "doc_id" and item.kind == "faq" else ""
        return f"duplicate {id_note}of {_location(first, item.source)}"

    for key in keys:
        first_seen[key] = item
    return None


def _location(item: SourceItem, current_source: str) -> str:
    if item.source == current_source:
        return "the whole file" if item.row is None else f"row {item.row}"
    if item.row is None:
        return item.source
    return f"{item.source} row {item.row}"
