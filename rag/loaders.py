"""Read a tenant's knowledge files into SourceItems.

The file extension (case-insensitive) selects the format:

- FAQ tables: `.csv` (UTF-8 with or without BOM, or GB18030) and `.xlsx` (first sheet,
  first row is the header), with question and answer columns named as in `FAQ_COLUMNS`.
- JSON: `.jsonl` (one object per line) and `.json` (a list of objects, or an object with
  that list under one of `RECORD_LIST_KEYS`). An object with question and answer keys is a
  FAQ row; any other object is a record, one entity with named fields.
- Documents: `.txt`, `.md` and `.markdown`, cut into chunks by `chunk_document`.

Loaders keep the text as written; `rag.clean.clean_items` normalizes and filters it.
Bad rows become SkippedRows and the other rows still load. A file that cannot be read at
all raises InvalidArgumentError.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from rag.clean import match_key, normalize_text
from rag.types import LoadResult, SkippedRow, SourceItem
from server.errors import InvalidArgumentError, NotFoundError

logger = logging.getLogger(__name__)

FAQ_EXTENSIONS = (".csv", ".xlsx")
JSON_EXTENSIONS = (".json", ".jsonl")
DOCUMENT_EXTENSIONS = (".txt", ".md", ".markdown")
ACCEPTED_EXTENSIONS = FAQ_EXTENSIONS + JSON_EXTENSIONS + DOCUMENT_EXTENSIONS

# Column names (CSV, XLSX) and object keys (JSON) of FAQ rows, matched after
# normalize_text and case folding. question and answer are required.
FAQ_COLUMNS: dict[str, tuple[str, ...]] = {
    "question": ("question", "问题", "标准问题", "q"),
    "answer": ("answer", "答案", "回答", "a"),
    "id": ("id", "编号", "faq_id"),
    "category": ("category", "分类", "类别"),
}

# Record keys, matched case-insensitively. The first title key present names the record.
TITLE_KEYS = ("name", "title", "名称", "标题")
CATEGORY_KEYS = ("type", "category", "类型")
RECORD_LIST_KEYS = ("records", "items", "data")

DEFAULT_MAX_CHUNK_CHARS = 300

# Sentence ends for document chunking. Closing quotes and brackets after an end stay
# with the sentence that they close.
_SENTENCE = re.compile(r"[^。！？!?；;]*[。！？!?；;]+[”’」』》）)】\]\"']*|[^。！？!?；;]+")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")

_UTF8_BOM = b"\xef\xbb\xbf"
# The reason given when a file that is not empty still yields no items and no skipped rows.
_NOTHING_LOADED = {
    ".csv": "no data rows",
    ".xlsx": "no data rows",
    ".json": "no records",
    ".jsonl": "no records",
    ".txt": "no text",
    ".md": "no text outside headings",
    ".markdown": "no text outside headings",
}
# Candidate CSV delimiters. The one that occurs most often in the header line is used, and
# a tie goes to the earlier one.
_CSV_DELIMITERS = (",", "\t", ";")
_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_JSON_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")

# openpyxl reports a damaged workbook through several exception types: zip errors, a
# missing archive member (KeyError), malformed XML (ElementTree's or lxml's ParseError,
# both SyntaxError subclasses), and OSError or ValueError for a missing workbook part.
_XLSX_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    SyntaxError,
    OSError,
    ValueError,
    TypeError,
    InvalidFileException,
)


def load_file(
    path: Path,
    *,
    title_field: str | None = None,
    content: bytes | None = None,
    source_name: str | None = None,
    max_chunk_chars: int = DEFAULT_MAX_CHUNK_CHARS,
) -> LoadResult:
    """Read one knowledge file into items, choosing the format by its extension.

    Args:
        path: the file; only its extension and name are used when `content` is given.
        title_field: the record key that names each record. By default the first of
            `TITLE_KEYS` that a record has.
        content: the file's bytes, for files received over the network.
        source_name: the name written into SourceItem.source and SkippedRow.file.
            Defaults to the file name without directories.
        max_chunk_chars: maximum length of a document chunk in characters.

    Returns:
        The items in file order and the rows that were skipped, with reasons. An empty
        file returns no items and one SkippedRow with the reason "empty file".

    Raises:
        InvalidArgumentError: The extension is not one of ACCEPTED_EXTENSIONS, or
            max_chunk_chars is below 1. The file is not valid UTF-8 (for CSV, nor
            GB18030). A .json file does not parse or has no list of records. A CSV or
            XLSX file has no question or answer column, or the XLSX file is damaged.
        NotFoundError: `content` is None and the file does not exist.
    """
    name = source_name if source_name is not None else path.name
    extension = path.suffix.lower()
    if extension not in ACCEPTED_EXTENSIONS:
        raise InvalidArgumentError(
            "path",
            name,
            f"unsupported file extension {extension!r}; accepted: {', '.join(ACCEPTED_EXTENSIONS)}",
        )
    if max_chunk_chars < 1:
        raise InvalidArgumentError("max_chunk_chars", max_chunk_chars, "must be 1 or more")

    data = content if content is not None else _read_bytes(path)
    if not data.removeprefix(_UTF8_BOM).strip():
        logger.info("%s is empty", name)
        return LoadResult(items=[], skipped=[SkippedRow(file=name, row=None, reason="empty file")])

    if extension == ".csv":
        result = _load_csv(data, name)
    elif extension == ".xlsx":
        result = _load_xlsx(data, name)
    elif extension == ".jsonl":
        result = _load_jsonl(data, name, title_field)
    elif extension == ".json":
        result = _load_json(data, name, title_field)
    else:
        text = _decode_utf8(data, name)
        result = LoadResult(items=chunk_document(text, name, max_chunk_chars), skipped=[])

    if not result.items and not result.skipped:
        reason = _NOTHING_LOADED[extension]
        result = LoadResult(items=[], skipped=[SkippedRow(file=name, row=None, reason=reason)])
    logger.info("loaded %s: %d items, %d skipped", name, len(result.items), len(result.skipped))
    return result


def chunk_document(
    text: str, source_name: str, max_chars: int = DEFAULT_MAX_CHUNK_CHARS
) -> list[SourceItem]:
    """Cut a text or Markdown document into chunks of whole sentences.

    Markdown ATX headings (# to ######, outside fenced code) start a new section, and a
    chunk never spans two sections. Within a section, sentences end at 。！？!?；; or a line
    break, and consecutive sentences are packed into chunks of at most `max_chars`
    characters. A sentence longer than `max_chars` is cut every `max_chars` characters.
    Sentences from different lines are joined with a line break.

    Args:
        text: the decoded document.
        source_name: the file name, used in doc_ids and as the title before any heading.
        max_chars: maximum chunk length in characters.

    Returns:
        One doc item per chunk. doc_id is "<source_name>#<n>" with n counting chunks
        from 1, title is the heading path ("退货政策 > 运费"), row is the 1-based line where
        the chunk starts.
    """
    items: list[SourceItem] = []
    for heading_path, lines in _sections(text):
        title = " > ".join(heading_path) or source_name
        for row, chunk in _pack_sentences(_sentences(lines, max_chars), max_chars):
            items.append(
                SourceItem(
                    kind="doc",
                    doc_id=f"{source_name}#{len(items) + 1}",
                    title=title,
                    text=chunk,
                    source=source_name,
                    row=row,
                )
            )
    return items


# --- reading and decoding ---


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise NotFoundError(f"file not found: {path}") from error
    except IsADirectoryError as error:
        raise InvalidArgumentError("path", str(path), "is a directory, not a file") from error


def _decode_utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _utf8_error(data, name, error, also_tried="") from error


def _decode_csv(data: bytes, name: str) -> str:
    """Decode CSV bytes as UTF-8, or as GB18030 (Excel's default on Chinese Windows)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        if data.startswith(_UTF8_BOM):
            raise _utf8_error(data, name, utf8_error, also_tried="") from utf8_error
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise _utf8_error(data, name, utf8_error, also_tried="GB18030") from utf8_error
        logger.info("%s is not valid UTF-8; decoded it as GB18030", name)
        return text


def _lines(text: str) -> list[str]:
    """Split text at CR LF, LF or CR only, so line numbers match what editors show.

    str.splitlines would also split at form feeds, U+2028 and other separators, which
    can appear inside a JSON string.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _utf8_error(
    data: bytes, name: str, error: UnicodeDecodeError, also_tried: str
) -> InvalidArgumentError:
    # utf-8-sig reports offsets after the BOM.
    offset = error.start + (len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0)
    line = data.count(b"\n", 0, offset) + 1
    either = f" or {also_tried}" if also_tried else ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        hint = "the file starts with a UTF-16 byte-order mark; save it as UTF-8"
    else:
        hint = "save it as UTF-8"
    return InvalidArgumentError(
        f"{name}:{line}",
        data[offset : offset + 4],
        f"not valid UTF-8{either} at byte {offset} (line {line}); {hint} and upload it again",
    )


# --- FAQ tables: CSV and XLSX ---


def _load_csv(data: bytes, name: str) -> LoadResult:
    text = _decode_csv(data, name)
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(_CSV_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    columns: dict[str, int] | None = None
    items: list[SourceItem] = []
    skipped: list[SkippedRow] = []
    while True:
        start_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            reason = f"invalid CSV: {error}; check for an unclosed or stray quote"
            skipped.append(SkippedRow(file=name, row=start_line, reason=reason))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns = _faq_columns(cells, name)
            continue
        items.append(faq_item(_cells_by_role(cells, columns), name, start_line))
    return LoadResult(items=items, skipped=skipped)


def _load_xlsx(data: bytes, name: str) -> LoadResult:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _XLSX_ERRORS as error:
        raise _xlsx_error(name, error) from error

    try:
        if not workbook.worksheets:
            raise InvalidArgumentError("path", name, "the workbook has no sheets")
        sheet = workbook.worksheets[0]
        # Read-only mode trusts the sheet's <dimension> element, and some exporters write
        # a wrong one ("A1"), which would cut rows and columns. Resetting it reads them all.
        sheet.reset_dimensions()
        rows = list(sheet.iter_rows(values_only=True))
    except _XLSX_ERRORS as error:
        raise _xlsx_error(name, error) from error
    finally:
        workbook.close()

    # iter_rows yields empty rows as well, so the index is the row number shown in Excel.
    numbered = [
        (number, [_cell_text(value) for value in row]) for number, row in enumerate(rows, 1)
    ]
    numbered = [(number, cells) for number, cells in numbered if any(c.strip() for c in cells)]
    if not numbered:
        reason = f"the first sheet {sheet.title!r} is empty"
        return LoadResult(items=[], skipped=[SkippedRow(file=name, row=None, reason=reason)])
    if numbered[0][0] != 1:
        found = ", ".join(cell for cell in numbered[0][1] if cell.strip())
        raise InvalidArgumentError(
            name, found, f"the first row of sheet {sheet.title!r} must name the columns"
        )

    columns = _faq_columns(numbered[0][1], name)
    items = [faq_item(_cells_by_role(cells, columns), name, n) for n, cells in numbered[1:]]
    return LoadResult(items=items, skipped=[])


def _xlsx_error(name: str, error: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(
        "path",
        name,
        f"not a readable .xlsx workbook ({type(error).__name__}: {error}); open it in a "
        "spreadsheet program, save it as .xlsx and upload it again",
    )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _column_role(name: str) -> str | None:
    key = normalize_text(name).casefold()
    for role, aliases in FAQ_COLUMNS.items():
        if key in aliases:
            return role
    return None


def _faq_columns(header: list[str], name: str) -> dict[str, int]:
    """Map each FAQ role to its column index; the first matching column wins."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        role = _column_role(cell)
        if role is not None and role not in columns:
            columns[role] = index

    missing = [role for role in ("question", "answer") if role not in columns]
    if missing:
        found = [cell.strip() for cell in header if cell.strip()]
        accepted = "; ".join(
            f"{role}: {', '.join(FAQ_COLUMNS[role])}" for role in ("question", "answer")
        )
        raise InvalidArgumentError(
            name,
            found,
            f"missing the {' and '.join(missing)} column (found columns {found}); "
            f"name the header cells with one of each, case-insensitive ({accepted})",
        )
    return columns


def _cells_by_role(cells: list[str], columns: dict[str, int]) -> dict[str, str]:
    return {role: cells[index] if index < len(cells) else "" for role, index in columns.items()}


def faq_item(values: dict[str, str], source: str, row: int) -> SourceItem:
    question = values["question"]
    answer = values["answer"]
    doc_id = values.get("id", "").strip() or faq_doc_id(question)
    return SourceItem(
        kind="faq",
        doc_id=doc_id,
        title=question,
        text=f"{question}\n{answer}",
        source=source,
        row=row,
        category=values.get("category", ""),
        question=question,
        answer=answer,
    )


def faq_doc_id(question: str) -> str:
    """Return the doc_id of a FAQ row without an id column: a short hash of its question.

    The hash is of `match_key(question)`, so the id survives re-ingestion as long as the
    question's words stay the same, whatever its punctuation, case or script.
    """
    digest = hashlib.blake2b(match_key(question).encode("utf-8"), digest_size=8).hexdigest()
    return f"faq-{digest}"


# --- JSON and JSON Lines ---


def _load_jsonl(data: bytes, name: str, title_field: str | None) -> LoadResult:
    text = _decode_utf8(data, name)
    items: list[SourceItem] = []
    skipped: list[SkippedRow] = []
    for line_number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            reason = f"invalid JSON at column {error.colno}: {error.msg}"
            skipped.append(SkippedRow(file=name, row=line_number, reason=reason))
            continue
        _add_object(value, name, line_number, title_field, items, skipped)
    return LoadResult(items=items, skipped=skipped)


def _load_json(data: bytes, name: str, title_field: str | None) -> LoadResult:
    text = _decode_utf8(data, name)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(
            f"{name}:{error.lineno}",
            text[error.pos : error.pos + 20],
            f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
        ) from error

    items: list[SourceItem] = []
    skipped: list[SkippedRow] = []
    for line_number, value in _json_records(text, document, name):
        _add_object(value, name, line_number, title_field, items, skipped)
    return LoadResult(items=items, skipped=skipped)


def _json_records(text: str, document: Any, name: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, element) for the record list of a parsed .json file."""
    if isinstance(document, list):
        start = _JSON_WHITESPACE.match(text).end()
        return _json_array_elements(text, start)

    if isinstance(document, dict):
        keys = {key.casefold(): key for key in document}
        for list_key in RECORD_LIST_KEYS:
            key = keys.get(list_key)
            if key is not None and isinstance(document[key], list):
                start = _json_member_position(text, key)
                return _json_array_elements(text, start)

    found = list(document) if isinstance(document, dict) else _json_type(document)
    raise InvalidArgumentError(
        name,
        found,
        "expected a JSON list of objects, or an object with the list under one of "
        f"{', '.join(RECORD_LIST_KEYS)}",
    )


def _json_member_position(text: str, member_key: str) -> int:
    """Return where the value of a top-level object member starts (the last one wins).

    `text` must already have parsed, so the scan does not check the syntax again.
    """
    position = _JSON_WHITESPACE.match(text).end() + 1
    found = -1
    while True:
        position = _JSON_WHITESPACE.match(text, position).end()
        if text[position] == "}":
            return found
        key, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_WHITESPACE.match(text, position).end() + 1  # past the colon
        position = _JSON_WHITESPACE.match(text, position).end()
        if key == member_key:
            found = position
        _, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_WHITESPACE.match(text, position).end()
        if text[position] == ",":
            position += 1


def _json_array_elements(text: str, start: int) -> Iterator[tuple[int, Any]]:
    """Yield (line number, element) for the JSON array that begins at `start`."""
    position = start + 1
    line = text.count("\n", 0, position) + 1
    counted_to = position
    while True:
        position = _JSON_WHITESPACE.match(text, position).end()
        if text[position] == "]":
            return
        line += text.count("\n", counted_to, position)
        counted_to = position
        element, position = _JSON_DECODER.raw_decode(text, position)
        yield line, element
        position = _JSON_WHITESPACE.match(text, position).end()
        if text[position] == ",":
            position += 1


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _add_object(
    value: Any,
    source: str,
    row: int,
    title_field: str | None,
    items: list[SourceItem],
    skipped: list[SkippedRow],
) -> None:
    """Append the item for one JSON row to `items`, or its SkippedRow to `skipped`."""
    if not isinstance(value, dict):
        reason = f"row is a JSON {_json_type(value)}, expected an object"
        skipped.append(SkippedRow(file=source, row=row, reason=reason))
        return

    roles = _faq_roles(value)
    if "question" in roles and "answer" in roles:
        result = _faq_from_object(value, roles, source, row)
    else:
        result = record_item(value, source, row, title_field)
    if isinstance(result, SkippedRow):
        skipped.append(result)
    else:
        items.append(result)


def _faq_roles(value: dict[str, Any]) -> dict[str, str]:
    """Map each FAQ role to the first key of `value` that names it."""
    roles: dict[str, str] = {}
    for key in value:
        role = _column_role(key)
        if role is not None and role not in roles:
            roles[role] = key
    return roles


def _faq_from_object(
    value: dict[str, Any], roles: dict[str, str], source: str, row: int
) -> SourceItem | SkippedRow:
    texts: dict[str, str] = {}
    for role, key in roles.items():
        element = value[key]
        if element is None:
            texts[role] = ""
        elif isinstance(element, str | int | float) and not isinstance(element, bool):
            texts[role] = str(element)
        else:
            reason = f"{key!r} must be text or a number, not a JSON {_json_type(element)}"
            return SkippedRow(file=source, row=row, reason=reason)
    return faq_item(texts, source, row)


# --- records ---


def _find_key(value: dict[str, Any], candidates: tuple[str, ...]) -> str | None:
    """Return the key of `value` that matches the earliest candidate, ignoring case.

    An exact match wins over a match that differs only in case.
    """
    folded: dict[str, str] = {}
    for key in value:
        folded.setdefault(key.casefold(), key)
    for candidate in candidates:
        if candidate in value:
            return candidate
        key = folded.get(candidate.casefold())
        if key is not None:
            return key
    return None


def record_item(
    value: dict[str, Any], source: str, row: int, title_field: str | None
) -> SourceItem | SkippedRow:
    title_candidates = (title_field,) if title_field else TITLE_KEYS
    title_key = _find_key(value, title_candidates)
    if title_key is None:
        if title_field:
            reason = f"missing the title field {title_field!r}"
        else:
            reason = (
                f"missing a title field: expected one of {', '.join(TITLE_KEYS)} "
                "(or set title_field), or question and answer keys for a FAQ row"
            )
        return SkippedRow(file=source, row=row, reason=reason)

    title_value = value[title_key]
    if not isinstance(title_value, str | int | float) or isinstance(title_value, bool):
        reason = f"title field {title_key!r} must be text, not a JSON {_json_type(title_value)}"
        return SkippedRow(file=source, row=row, reason=reason)
    title = str(title_value).strip()
    doc_id = normalize_text(title)
    if not doc_id:
        return SkippedRow(file=source, row=row, reason=f"empty title field {title_key!r}")

    category_key = _find_key(value, CATEGORY_KEYS)
    category = _field_text(value[category_key]) if category_key is not None else ""
    lines = [title]
    for key, element in value.items():
        rendered = _field_text(element) if key != title_key else ""
        if rendered:
            lines.append(f"{key}: {rendered}")

    return SourceItem(
        kind="record",
        doc_id=doc_id,
        title=title,
        text="\n".join(lines),
        source=source,
        row=row,
        category=category,
        fields={k: v for k, v in value.items() if k not in (title_key, category_key)},
    )


def _field_text(value: Any) -> str:
    """Render a record value for indexing; null and empty values render as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "、".join(rendered for rendered in map(_field_text, value) if rendered)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- documents ---


def _sections(text: str) -> Iterator[tuple[list[str], list[tuple[int, str]]]]:
    """Yield (heading path, numbered body lines) for each section of a document."""
    headings: list[tuple[int, str]] = []
    body: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(_lines(text), 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            if in_fence or not _THEMATIC_BREAK.match(line):
                body.append((number, line))
            continue

        if body:
            yield [title for _, title in headings if title], body
            body = []
        level = len(heading.group(1))
        headings = [(lvl, title) for lvl, title in headings if lvl < level]
        headings.append((level, (heading.group(2) or "").strip()))
    if body:
        yield [title for _, title in headings if title], body


def _sentences(lines: list[tuple[int, str]], max_chars: int) -> Iterator[tuple[int, str, bool]]:
    """Yield (line number, sentence, starts a line) with sentences cut to `max_chars`."""
    for number, line in lines:
        first = True
        for match in _SENTENCE.finditer(line):
            sentence = match.group().strip()
            for start in range(0, len(sentence), max_chars):
                yield number, sentence[start : start + max_chars], first
                first = False


def _pack_sentences(
    sentences: Iterator[tuple[int, str, bool]], max_chars: int
) -> Iterator[tuple[int, str]]:
    """Join consecutive sentences into (first line, chunk) pairs of at most `max_chars`."""
    chunk = ""
    chunk_line = 0
    for line, sentence, starts_line in sentences:
        separator = "\n" if starts_line and chunk else ""
        if chunk and len(chunk) + len(separator) + len(sentence) > max_chars:
            yield chunk_line, chunk
            chunk, separator = "", ""
        if not chunk:
            chunk_line = line
        chunk += separator + sentence
    if chunk:
        yield chunk_line, chunk
