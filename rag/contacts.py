"""Contact details in answer text, and the allow-list of the ones a tenant publishes.

A document planted in a knowledge base can carry a competitor's phone number or WeChat
id, and the answer engine can repeat it. `remove_contacts` deletes every contact that is
not on the tenant's allow-list. It finds:

- mainland mobile numbers in every spacing, with or without +86;
- landlines with an area code (010-12345678, (0755) 8888 8888), with an optional extension;
- 400 and 800 hotlines (400-820-8820, 4008208820);
- any 5 to 15 digit number after 电话, 热线, 致电, 拨打, 手机, 座机, 联系方式, tel, phone, call;
- WeChat ids after 微信, 公众号, VX, V信, wx, weixin, WeChat, 加我, 加V, 加微, and bare
  wxid_ ids;
- QQ numbers after QQ, 扣扣, 企鹅 (QQ群 included);
- e-mail addresses, URLs with a scheme or www., and bare domains with a common top-level
  domain (example.com, shop.example.com.cn).

Government service numbers of the form 12xxx (12315, 12345) are always allowed.
NOTE: contacts written with full-width letters or dots (ｗｗｗ．ａｂｃ．ｃｏｍ), with
Chinese digits (一三八…) or with a domain spelled out (abc点com) are not found.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from server.errors import ConfigError
from server.pii import DIGITS_AFTER, DIGITS_BEFORE, MOBILE_RE, ORDER_NUMBER_RE, SEPARATOR

logger = logging.getLogger(__name__)

CONTACT_KINDS = ("mobile", "landline", "hotline", "phone", "wechat", "qq", "email", "url")

# Between an area code and the number: 010-12345678, 010 12345678, 010 - 12345678.
_AREA_CODE_SEPARATOR = r"[ \u00a0\u3000]*-?[ \u00a0\u3000]*"

_LANDLINE_RE = re.compile(
    DIGITS_BEFORE
    + r"(?P<value>(?:(?:\+|00)86[ \-]?)?"
    + r"(?:\(0(?:10|2\d|[3-9]\d{2})\)|（0(?:10|2\d|[3-9]\d{2})）|0(?:10|2\d|[3-9]\d{2}))"
    + rf"{_AREA_CODE_SEPARATOR}\d{{3,4}}{SEPARATOR}?\d{{4}}(?:(?:转|-|\s*ext\.?\s*)\d{{1,5}})?)"
    + DIGITS_AFTER
)

_HOTLINE_RE = re.compile(
    DIGITS_BEFORE + rf"(?P<value>[48]00(?:{SEPARATOR}?\d){{7}})" + DIGITS_AFTER
)

# A keyword, optional 号/号码/账号/公众号/id, optional 是/为 and a colon, then the value.
_KEYWORD_LINK = r"(?:公众号|号码|号|账号|id)?\s*(?:是|为)?\s*[:：]?\s*"

_KEYWORD_PHONE_RE = re.compile(
    r"(?P<keyword>电话|热线|致电|拨打|手机|座机|联系方式|(?<![A-Za-z])(?:tel|phone|call))"
    + _KEYWORD_LINK
    + rf"(?P<value>\+?\d(?:{SEPARATOR}?\d){{4,14}})"
    + DIGITS_AFTER,
    re.IGNORECASE,
)

# One more number in a list after a phone keyword, with the separator before it.
_LISTED_NUMBER_RE = re.compile(
    r"(?:\s*[,，、;；/]\s*|\s*(?:或|和|及|or|and)\s*|\s+)"
    + rf"(?P<value>\+?\d(?:{SEPARATOR}?\d){{4,14}})"
    + DIGITS_AFTER
)

_WECHAT_RE = re.compile(
    r"(?P<keyword>微信|威信|薇信|徽信|v信|公众号|加我|加v|加微"
    r"|(?<![A-Za-z])(?:vx|wx|weixin|wechat)(?![A-Za-z]))"
    + _KEYWORD_LINK
    + r"(?P<value>[A-Za-z][-_A-Za-z0-9]{5,19}|\+?\d(?:[ \-]?\d){4,14})"
    + r"(?![-_A-Za-z0-9])",
    re.IGNORECASE,
)

_WXID_RE = re.compile(r"(?<![-_A-Za-z0-9])(?P<value>wxid_[-_A-Za-z0-9]{4,30})(?![-_A-Za-z0-9])")

_QQ_RE = re.compile(
    r"(?P<keyword>(?<![A-Za-z])qq|扣扣|企鹅)(?:群号?|号码|号|账号)?\s*(?:是|为)?\s*[:：]?\s*"
    r"(?P<value>[1-9]\d{4,11})(?!\d)",
    re.IGNORECASE,
)

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])(?P<value>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)

_URL_CHARACTERS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
_URL_RE = re.compile(rf"(?P<value>(?:https?://|www\.){_URL_CHARACTERS}+)", re.IGNORECASE)

_TOP_LEVEL_DOMAINS = (
    "com|cn|net|org|info|biz|top|xyz|vip|shop|store|online|site|club|link|ltd|tech|app|io"
    "|me|cc|co|tv|hk|tw|wang|ren|fun|icu|live|pro|group|work|cloud|email|mobi|asia|xin"
)
_DOMAIN_RE = re.compile(
    r"(?<![A-Za-z0-9\-_.@/])"
    rf"(?P<value>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?\.)+(?:{_TOP_LEVEL_DOMAINS})"
    rf"(?![A-Za-z0-9\-])(?:/{_URL_CHARACTERS}*)?)",
    re.IGNORECASE,
)

# The order sets which kind a contact gets when two finders match the same value.
_FINDERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", _URL_RE),
    ("email", _EMAIL_RE),
    ("url", _DOMAIN_RE),
    ("wechat", _WXID_RE),
    ("wechat", _WECHAT_RE),
    ("qq", _QQ_RE),
    ("phone", _KEYWORD_PHONE_RE),
    ("hotline", _HOTLINE_RE),
    ("landline", _LANDLINE_RE),
    ("mobile", MOBILE_RE),
)

_URL_TRAILING_PUNCTUATION = ".,;:!?)]'\""
_PUBLIC_SERVICE_NUMBER = re.compile(r"12\d{3}")
_WECHAT_ID = re.compile(r"[A-Za-z0-9][-_A-Za-z0-9]{1,39}")
_QQ_NUMBER = re.compile(r"[1-9]\d{4,11}")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}")


@dataclass(frozen=True)
class ContactMatch:
    """A contact found in a text.

    Attributes:
        kind: one of CONTACT_KINDS.
        value: the contact as written, without the keyword before it.
        start: offset where the removal starts: the value, or the separator between a
            keyword and the value (the colon in 微信：abc123).
        end: offset just after the value.
    """

    kind: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class AllowedContacts:
    """Contact details a tenant publishes, which answers may keep.

    Attributes:
        phones: phone numbers in any spelling; compared by digits, ignoring +86 and the
            leading 0 of an area code, so 010-12345678 also allows (010) 1234 5678.
        domains: host names; each also allows its subdomains and every URL and e-mail
            address on them. A URL given here counts for its host only.
        wechat_ids: WeChat ids, compared without letter case.
        qq_numbers: QQ numbers or QQ group numbers.
        emails: single e-mail addresses on hosts that are not in `domains`.
    """

    phones: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    wechat_ids: tuple[str, ...] = ()
    qq_numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    _phone_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _hosts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("phones", "domains", "wechat_ids", "qq_numbers", "emails"):
            values = tuple(str(value).strip() for value in getattr(self, name))
            object.__setattr__(self, name, values)
            for index, value in enumerate(values):
                problem = _allow_list_problem(name, value)
                if problem:
                    raise ConfigError(
                        f"invalid allowed_contacts.{name}[{index}]={value!r}: {problem}"
                    )

        object.__setattr__(self, "_phone_keys", frozenset(_phone_key(p) for p in self.phones))
        object.__setattr__(self, "_hosts", tuple(_host_of(d) for d in self.domains))

    def allows(self, contact: ContactMatch) -> bool:
        """Return whether the tenant publishes this contact."""
        value = unicodedata.normalize("NFKC", contact.value)
        if contact.kind in ("mobile", "landline", "hotline", "phone"):
            key = _phone_key(value)
            return key in self._phone_keys or _PUBLIC_SERVICE_NUMBER.fullmatch(key) is not None
        if contact.kind == "wechat":
            return self._allows_wechat(value)
        if contact.kind == "qq":
            return value in self.qq_numbers
        if contact.kind == "email":
            address = value.casefold()
            allowed = {email.casefold() for email in self.emails}
            return address in allowed or self._allows_host(address.rpartition("@")[2])
        return self._allows_host(_host_of(value))

    def _allows_wechat(self, value: str) -> bool:
        if value.casefold() in {wechat_id.casefold() for wechat_id in self.wechat_ids}:
            return True
        # A WeChat id can be the owner's phone or QQ number.
        digits = re.sub(r"[ +\-]", "", value)
        if not digits.isdigit():
            return False
        return _phone_key(value) in self._phone_keys or digits in self.qq_numbers

    def _allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == allowed or host.endswith("." + allowed) for allowed in self._hosts)


def find_contacts(text: str) -> list[ContactMatch]:
    """Find contact details in `text`.

    Digits after an order keyword (订单号 13800138000) are an order number, not a contact.

    Returns:
        Non-overlapping matches in text order. Where two finders match overlapping text,
        the match whose value starts first wins, then the longer one, then the one whose
        finder comes first in `_FINDERS`.
    """
    order_numbers = [match.span("value") for match in ORDER_NUMBER_RE.finditer(text)]
    candidates = [
        candidate
        for candidate in _candidates(text)
        if not any(candidate[0] < end and start < candidate[3].end for start, end in order_numbers)
    ]
    candidates.sort(key=lambda candidate: candidate[:3])

    found: list[ContactMatch] = []
    taken_until = 0
    for value_start, _, _, contact in candidates:
        if value_start < taken_until:
            continue
        found.append(contact)
        taken_until = contact.end
    return found


def _candidates(text: str) -> list[tuple[int, int, int, ContactMatch]]:
    """Return (value start, -value length, finder rank, match) for every finder's match."""
    candidates = []
    for rank, (kind, pattern) in enumerate(_FINDERS):
        for match in pattern.finditer(text):
            contact = _contact_of(kind, match)
            if contact is None:
                continue
            contacts = [contact]
            if kind == "phone":
                contacts += _more_listed_numbers(text, contact.end)
            for item in contacts:
                value_start = item.end - len(item.value)
                candidates.append((value_start, -len(item.value), rank, item))
    return candidates


def remove_contacts(text: str, allowed: AllowedContacts) -> tuple[str, list[ContactMatch]]:
    """Delete the contacts in `text` that `allowed` does not contain.

    The keyword before a removed value stays (请加微信：abc123。 becomes 请加微信。), and a
    space left doubled by the removal is dropped.

    Returns:
        The cleaned text and the removed contacts, in text order.
    """
    removed = [contact for contact in find_contacts(text) if not allowed.allows(contact)]
    if not removed:
        return text, []

    pieces = []
    position = 0
    for contact in removed:
        before = text[position : contact.start]
        after = text[contact.end : contact.end + 1]
        if before.endswith((" ", "\u3000")) and (not after or not after.isalnum()):
            before = before.rstrip(" \u3000")
        pieces.append(before)
        position = contact.end
    pieces.append(text[position:])
    logger.debug("removed %d contact(s) not on the allow-list", len(removed))
    return "".join(pieces), removed


def _contact_of(kind: str, match: re.Match[str]) -> ContactMatch | None:
    # MOBILE_RE comes from server.pii and has no value group: its whole match is the value.
    group = "value" if "value" in match.re.groupindex else 0
    value = match.group(group)
    value_start = match.start(group)
    if kind == "url":
        value = value.rstrip(_URL_TRAILING_PUNCTUATION)
        if not value:
            return None
    end = value_start + len(value)

    # After a keyword, the removal takes the separator too, but never the keyword.
    start = match.end("keyword") if "keyword" in match.re.groupindex else value_start
    return ContactMatch(kind=kind, value=value, start=start, end=end)


def _more_listed_numbers(text: str, position: int) -> list[ContactMatch]:
    # 电话：83172726,83172706 lists several numbers after one keyword.
    listed = []
    while (match := _LISTED_NUMBER_RE.match(text, position)) is not None:
        listed.append(ContactMatch("phone", match.group("value"), match.start(), match.end()))
        position = match.end()
    return listed


def _phone_key(number: str) -> str:
    digits = "".join(
        str(int(character))
        for character in unicodedata.normalize("NFKC", number)
        if character.isdigit()
    )
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) > 11:
        digits = digits[2:]
    return digits.lstrip("0")


def _host_of(value: str) -> str:
    value = value.strip().lower()
    if "://" not in value:
        value = "http://" + value
    try:
        host = urlsplit(value).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _allow_list_problem(name: str, value: str) -> str:
    if name == "phones" and len(_phone_key(value)) < 5:
        return "a phone number needs at least 5 digits, such as 400-820-8820 or 010-12345678"
    if name == "domains" and not _HOST.fullmatch(_host_of(value)):
        return "expected a host name such as shop.example.com, or a URL on it"
    if name == "wechat_ids" and not _WECHAT_ID.fullmatch(value):
        return "a WeChat id has 2 to 40 letters, digits, '_' or '-'"
    if name == "qq_numbers" and not _QQ_NUMBER.fullmatch(value):
        return "a QQ number has 5 to 12 digits and does not start with 0"
    if name == "emails" and not _EMAIL_RE.fullmatch(value):
        return "expected an e-mail address such as help@example.com"
    return ""
