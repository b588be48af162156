"""Masking of personal data before it reaches a log line or a log row.

`mask_pii` masks:

- mainland mobile numbers, with or without +86/0086/86 and with spaces or hyphens
  anywhere between the digits: 13800138000 → 138****8000;
- 18-digit resident ID numbers whose birth date is a real date and whose last character
  is the GB 11643 (ISO 7064 MOD 11-2) check character: 110***********1234. Digit runs that
  fail either test stay, because order numbers are digit runs of the same length;
- bank card numbers of 16 to 19 digits, grouped or not, that pass the Luhn check and start
  like a payment card (3 to 9, or 2221 to 2720): 6222********1234;
- e-mail addresses: k***@example.com;
- addresses (see `_ADDRESS_AFTER_KEYWORD` and `_ADDRESS_SHAPE`), replaced by [地址].

Digits right after 订单, 单号, 运单, 交易号, 流水号 or "order" are an order number and stay
unmasked, and so do digits joined to letters (SKUs such as AB-1299-X) and amounts such as
¥1,299.00. Not caught: landline numbers, 15-digit first-generation ID numbers, passport
numbers, names, addresses without a keyword and without the 省/市/区/县 + 路/街 + 号
shape (望京SOHO T1), and addresses written in English.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

logger = logging.getLogger(__name__)

# One optional separator between digits: a space, a hyphen, a no-break space or an
# ideographic space.
SEPARATOR = r"[ \-\u00a0\u3000]"

# A digit run must not continue a word, a SKU (AB-1299), an amount (¥1299) or a decimal
# number, on either side. A comma may border it, because phone lists read
# 010-1234567,010-7654321 and the digit groups of ¥1,299.00 are too short for any rule here.
DIGITS_BEFORE = r"(?<![A-Za-z_\d¥￥$])(?<![A-Za-z_\d][\-.])"
DIGITS_AFTER = r"(?![A-Za-z_\d])(?![\-.][A-Za-z_\d])"

MOBILE_RE = re.compile(
    DIGITS_BEFORE
    + rf"(?P<country>(?:\+|00)?86{SEPARATOR}?)?"
    + rf"(?P<number>1{SEPARATOR}?[3-9](?:{SEPARATOR}?\d){{9}})"
    + DIGITS_AFTER
)

_ID_CARD_RE = re.compile(
    DIGITS_BEFORE
    + rf"(?P<region>[1-9]\d{{5}}){SEPARATOR}?"
    + rf"(?P<birth>(?:19|20)\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])){SEPARATOR}?"
    + r"(?P<serial>\d{3}[\dXx])"
    + DIGITS_AFTER
)

_CARD_RE = re.compile(DIGITS_BEFORE + rf"\d(?:{SEPARATOR}?\d){{15,18}}" + DIGITS_AFTER)

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])(?P<local>[A-Za-z0-9._%+-]+)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)

# The value after an order keyword, which no digit rule may mask.
ORDER_NUMBER_RE = re.compile(
    r"(?:订单编号|订单号|订单|快递单号|物流单号|运单号|运单|单号|交易号|流水号"
    r"|(?i:order)(?:\s*(?i:no\.?|number|id))?)"
    r"\s*(?:是|为)?\s*[:：#]?\s*(?P<value>[A-Za-z0-9][A-Za-z0-9\-]*)"
)

_SENTENCE_REST = r"[^。！？；!?;\n]"

# An address keyword, then the rest of the sentence. Without a colon after the keyword,
# the rest must contain an address word, so questions like 地址在哪里 stay readable.
_ADDRESS_AFTER_KEYWORD = re.compile(
    r"(?P<keyword>收货地址|收件地址|送货地址|家庭地址|详细地址|住址|地址|住在|寄到|送到|寄往)"
    r"(?P<link>\s*(?:是|为)?\s*(?P<colon>[:：])?\s*)"
    rf"(?P<value>{_SENTENCE_REST}+)"
)
_ADDRESS_WORD = re.compile(r"[省市区县镇乡村路街道巷弄号栋幢楼室]|单元|小区")

# 省/市/区/县 names, a road or street, then a house number: 北京市朝阳区建国路88号3单元.
# A place name is 2 to 4 word characters other than the verbs and particles that often
# stand before an address (住在, 寄到, 送往, 地址是), so the match starts at the place name.
# NOTE: other words directly before the place name are masked with it (快递北京市… masks
# 快递 too); that over-masks and never under-masks.
_PLACE_NAME = r"[^\W\d_A-Za-z在是到住址送寄放于往从去我您你他她的了和与及]{2,4}"
_ADDRESS_SHAPE = re.compile(
    rf"(?:{_PLACE_NAME}(?:省|自治区|市|区|县|镇))+"
    r"[\u4e00-\u9fffA-Za-z\d]{0,12}?(?:大道|大街|路|街|巷|弄|胡同)"
    r"\s*\d+(?:-\d+)?\s*号"
    r"(?:\s*[\dA-Za-z\-]+\s*(?:号楼|栋|幢|单元|层|室|号))*"
)

ADDRESS_MASK = "[地址]"

# The full-width forms U+FF01..U+FF5E of the printable ASCII characters U+0021..U+007E.
_FULL_WIDTH_TO_ASCII = {0xFF01 + offset: 0x21 + offset for offset in range(94)}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARACTERS = "10X98765432"


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    replacement: str


def mask_pii(text: str) -> str:
    """Mask phone, ID card and bank card numbers, e-mail addresses and addresses in `text`.

    Where two matches overlap, the one that starts first wins, and the longer one when
    they start at the same place. The module docstring lists what is and is not masked.

    Args:
        text: a log message, a question or a comment.

    Returns:
        The text with each match replaced by its masked form. It is idempotent, so
        masking twice gives the same text.
    """
    if not text:
        return text

    # Full-width digits and signs map one to one onto ASCII, so offsets stay valid.
    ascii_text = text.translate(_FULL_WIDTH_TO_ASCII)
    protected = [match.span("value") for match in ORDER_NUMBER_RE.finditer(ascii_text)]
    spans = _digit_spans(ascii_text, protected) + _email_spans(text) + _address_spans(text)
    if not spans:
        return text
    return _apply_spans(text, spans)


def is_valid_id_number(number: str) -> bool:
    """Return whether an 18-character resident ID number has a real birth date and the
    GB 11643 check character (ISO 7064 MOD 11-2) as its last character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARACTERS[total % 11] == number[17].upper()


def passes_luhn(digits: str) -> bool:
    """Return whether a digit string passes the Luhn check used by payment cards."""
    if not digits.isdigit():
        return False
    total = 0
    for index, character in enumerate(reversed(digits)):
        value = int(character)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_mobile(country: str, number: str) -> str:
    """Return a mobile number as country prefix + first 3 digits + **** + last 4 digits."""
    digits = _digits_of(number)
    return f"{country}{digits[:3]}****{digits[-4:]}"


def _digit_spans(text: str, protected: list[tuple[int, int]]) -> list[_Span]:
    spans = []
    for match in _ID_CARD_RE.finditer(text):
        serial = match.group("serial")
        check = "X" if serial[-1] in "Xx" else _digits_of(serial[-1])
        number = _digits_of(match.group("region") + match.group("birth") + serial[:3]) + check
        if is_valid_id_number(number):
            spans.append(_Span(*match.span(), f"{number[:3]}{'*' * 11}{number[-4:]}"))

    for match in _CARD_RE.finditer(text):
        digits = _digits_of(match.group())
        if _looks_like_card(digits):
            masked = f"{digits[:4]}{'*' * (len(digits) - 8)}{digits[-4:]}"
            spans.append(_Span(*match.span(), masked))

    for match in MOBILE_RE.finditer(text):
        masked = mask_mobile(match.group("country") or "", match.group("number"))
        spans.append(_Span(*match.span(), masked))

    return [span for span in spans if not _overlaps_any(span, protected)]


def _email_spans(text: str) -> list[_Span]:
    spans = []
    for match in _EMAIL_RE.finditer(text):
        local = match.group("local")
        spans.append(_Span(*match.span(), f"{local[0]}***@{match.group('domain')}"))
    return spans


def _address_spans(text: str) -> list[_Span]:
    spans = []
    for match in _ADDRESS_AFTER_KEYWORD.finditer(text):
        value = match.group("value").rstrip()
        if value == ADDRESS_MASK:
            continue
        if match.group("colon") is None and not _ADDRESS_WORD.search(value):
            continue
        start = match.start("value")
        spans.append(_Span(start, start + len(value), ADDRESS_MASK))

    for match in _ADDRESS_SHAPE.finditer(text):
        spans.append(_Span(*match.span(), ADDRESS_MASK))
    return spans


def _apply_spans(text: str, spans: list[_Span]) -> str:
    spans.sort(key=lambda span: (span.start, span.start - span.end))
    pieces = []
    position = 0
    for span in spans:
        if span.start < position:
            continue
        pieces.append(text[position : span.start])
        pieces.append(span.replacement)
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def _looks_like_card(digits: str) -> bool:
    if not 16 <= len(digits) <= 19:
        return False
    # Payment cards start with 3 to 9 (UnionPay 62 and 81, Visa 4, Mastercard 5), or with
    # Mastercard's 2221 to 2720. Date-based order numbers (2024…) are excluded this way.
    starts_like_card = digits[0] in "3456789" or 2221 <= int(digits[:4]) <= 2720
    return starts_like_card and passes_luhn(digits)


def _overlaps_any(span: _Span, protected: list[tuple[int, int]]) -> bool:
    return any(span.start < end and start < span.end for start, end in protected)


def _digits_of(text: str) -> str:
    # str.isdigit accepts full-width digits, and int() reads them, so normalize to ASCII.
    return "".join(str(int(character)) for character in text if character.isdigit())


class PiiMaskingFilter(logging.Filter):
    """A logging filter that masks personal data in a record before it is formatted.

    It formats `record.msg % record.args` once, masks the result, stores it as
    `record.msg` and clears `record.args`. The traceback text and stack information are
    masked too. Put it on each handler, so records from every logger pass through it.
    It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # The arguments do not fit the format string. Mask both parts, so the
            # handler's error report shows no personal data either.
            record.msg = mask_pii(str(record.msg))
            record.args = _masked_args(record.args)
            return True

        record.msg = mask_pii(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True


def _masked_args(args: object) -> object:
    if isinstance(args, dict):
        return {key: mask_pii(str(value)) for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(mask_pii(str(value)) for value in args)
    return args
