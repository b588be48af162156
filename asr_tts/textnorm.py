"""Chinese text normalization before speech synthesis.

`normalize_text` rewrites digits and symbols into the words a Mandarin speaker would say,
so that the synthesizer never guesses. Rules run in a fixed order, most specific first,
and each one leaves only Chinese characters behind, so later rules cannot re-read its output:

1. full-width forms to ASCII; emoji and decorative symbols removed;
2. money: `¥1,299.00` → 一千二百九十九元; cents as 角/分: `¥12.50` → 十二元五角,
   `¥12.05` → 十二元零五分 (the 元角分 form announcers use, chosen over 十二点五元);
3. phone numbers, hotlines, service numbers, and codes after 订单/单号/验证码…: digit by
   digit with 1 read as 幺; a hyphen or space between digit groups becomes "，" (a pause);
   any other run of 7 or more digits is read digit by digit too (an ID, not an amount);
4. dates `2024-06-18` → 二零二四年六月十八日, clock times `19:17` → 十九点十七分;
5. percentages, fractions, ranges (`3-5天` → 三到五天), ratios, units with Chinese names
   (`5kg` → 五公斤); unit letters stay letters (`256GB` → 二百五十六GB, `5G` → 五G);
6. remaining numbers as cardinals, with 两 for a leading 2 before 千/万/亿, for a round 200,
   and for a bare 2 before a measure word (`2000块` → 两千块, `2个` → 两个, `256` → 二百五十六,
   `第2` → 第二);
7. Latin words and acronyms stay as they are (the synthesizer spells or reads them); a
   hyphen inside them (`USB-C`, `Anti-Gravity`) becomes a space, never 减.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_DIGITS = "零一二三四五六七八九"
_DIGITS_YAO = "零幺二三四五六七八九"
_GROUP_UNITS = ("", "万", "亿", "万亿")
_MAX_CARDINAL = 10**16 - 1

# measure words before which a bare 2 is read 两
_LIANG_MEASURES = (
    "个件台部张本只支条位名次天年周岁块元瓶箱包袋盒斤克米种样份双套把辆间杯碗口遍趟倍成"
    "小时分钟秒颗粒片根对批家层款套"
)
_LIANG_MULTI_CHAR_MEASURES = ("小时", "分钟", "公斤", "千克", "公里", "星期", "个月")

# units read with a Chinese name; unit letters not listed here (GB, MB, G, K) stay letters
_UNIT_NAMES = {
    "kg": "公斤",
    "km": "公里",
    "cm": "厘米",
    "mm": "毫米",
    "ml": "毫升",
    "mL": "毫升",
    "mAh": "毫安时",
    "kWh": "千瓦时",
    "W": "瓦",
    "kW": "千瓦",
    "Hz": "赫兹",
    "kHz": "千赫兹",
    "℃": "摄氏度",
    "°C": "摄氏度",
    "°": "度",
}

# short service numbers read digit by digit (emergency, carriers, consumer hotline, railways)
_SERVICE_NUMBERS = frozenset(
    {"110", "119", "120", "122", "114", "12315", "12345", "12306", "12321", "12123"}
    | {"10086", "10010", "10000", "10085", "10011"}
)
# 5-digit numbers starting 95 or 96 are national service hotlines (banks, airlines)
_SERVICE_PREFIXES = ("95", "96")

_PHONE_KEYWORDS = "电话|热线|手机|号码|拨打|致电|呼叫|联系方式|客服|座机|传真"
_CODE_KEYWORDS = (
    "订单号|订单编号|订单|运单号|快递单号|物流单号|单号|工单号|编号|流水号|券码|兑换码"
    "|验证码|取件码|取货码|卡号|账号|会员号|序列号|SN码|SN"
)

_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_WIDTH.update({ord("￥"): "¥", ord("　"): " "})
# keep CJK punctuation as it is (it carries pauses); map only ASCII look-alikes
for _char in "，！？；：（）":
    _FULL_WIDTH.pop(ord(_char), None)


def read_digits(digits: str, *, yao: bool = True) -> str:
    """Read a string of ASCII digits one by one (`13800` → 幺三八零零)."""
    table = _DIGITS_YAO if yao else _DIGITS
    return "".join(table[int(char)] for char in digits)


def read_cardinal(number: int, *, liang: bool = False) -> str:
    """Read a non-negative integer as a Chinese cardinal.

    Args:
        number: 0 to 10**16 - 1.
        liang: read the number 2 itself as 两 (the caller has seen a measure word after
            it). A leading 2 before 千/万/亿 is always 两, and so is 200 (两百), while 256
            stays 二百五十六.

    Returns:
        For example 1299 → 一千二百九十九, 10010 → 一万零一十, 15 → 十五.
    """
    if not 0 <= number <= _MAX_CARDINAL:
        return read_digits(str(number), yao=False)
    if number == 0:
        return "零"

    groups = []
    while number:
        groups.append(number % 10_000)
        number //= 10_000

    text = ""
    gap = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = bool(text)
            continue
        if text and (gap or group < 1000):
            text += "零"
        text += _read_four_digits(group) + _GROUP_UNITS[index]
        gap = False

    if text.startswith("一十"):
        text = text[1:]
    # 两 for a leading 2 before 千/万/亿 (两千五百) and in a round 200 (两百), but 二百五十六
    leading_liang = text[1:2] in ("千", "万", "亿") or text == "二百"
    if text.startswith("二") and (leading_liang or liang and text == "二"):
        text = "两" + text[1:]
    return text


def _read_four_digits(group: int) -> str:
    text = ""
    pending_zero = False
    for place, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = group // place % 10
        if digit == 0:
            pending_zero = bool(text)
            continue
        if pending_zero:
            text += "零"
            pending_zero = False
        text += _DIGITS[digit] + unit
    return text


def read_decimal(text: str, *, liang: bool = False) -> str:
    """Read `123.45` as 一百二十三点四五; commas in the integer part are ignored."""
    integer, _, fraction = text.replace(",", "").partition(".")
    spoken = read_cardinal(int(integer or "0"), liang=liang and not fraction)
    if fraction:
        spoken += "点" + read_digits(fraction, yao=False)
    return spoken


def _followed_by_measure(text: str, end: int) -> bool:
    following = text[end : end + 3].lstrip()[:2]
    if not following:
        return False
    return following[0] in _LIANG_MEASURES or following in _LIANG_MULTI_CHAR_MEASURES


def _read_number_in_context(match: re.Match[str], number: str) -> str:
    liang = _followed_by_measure(match.string, match.end())
    return read_decimal(number, liang=liang)


# --- step 1: characters -------------------------------------------------------------------

_KEPT_SYMBOLS = frozenset("℃°¥$%")


def _clean_characters(text: str) -> str:
    text = text.translate(_FULL_WIDTH)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        # So: emoji and pictographs; Sk: modifiers; Cf: joiners and variation selectors
        if char not in _KEPT_SYMBOLS and category in ("So", "Sk", "Cf", "Co", "Cs"):
            continue
        if category == "Mn" and not char.isalnum():
            continue
        kept.append(char)
    return "".join(kept)


# --- step 2: money ------------------------------------------------------------------------

_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_YUAN_BEFORE = re.compile(rf"(?:¥|RMB\s?|CNY\s?|人民币\s?)({_AMOUNT})(?:\s?元)?")
_YUAN_AFTER = re.compile(rf"(?<![\d.,])({_AMOUNT})\s?元(?![旦宵])")
_DOLLARS = re.compile(rf"(?:\$|USD\s?)({_AMOUNT})")


def read_money(amount: str) -> str:
    """Read a yuan amount: `1,299.00` → 一千二百九十九元, `12.50` → 十二元五角."""
    integer_text, _, fraction = amount.replace(",", "").partition(".")
    if len(fraction) > 2:
        return read_decimal(amount) + "元"
    yuan = int(integer_text or "0")
    fraction = fraction.ljust(2, "0")
    jiao, fen = int(fraction[0]), int(fraction[1])

    spoken = read_cardinal(yuan, liang=True) + "元" if yuan else ""
    if jiao:
        spoken += _DIGITS[jiao] + "角"
    elif fen and yuan:
        spoken += "零"
    if fen:
        spoken += _DIGITS[fen] + "分"
    return spoken or "零元"


def _normalize_money(text: str) -> str:
    text = _YUAN_BEFORE.sub(lambda match: read_money(match.group(1)), text)
    text = _YUAN_AFTER.sub(lambda match: read_money(match.group(1)), text)
    return _DOLLARS.sub(lambda match: read_decimal(match.group(1), liang=True) + "美元", text)


# --- step 3: phone numbers, hotlines and codes --------------------------------------------

_MOBILE = re.compile(r"(?<![\d.])(\+?86[-\s]?)?(1[3-9]\d[-\s]?\d{4}[-\s]?\d{4})(?![\d.])")
_HOTLINE = re.compile(r"(?<![\d.])([48]00[-\s]?\d{3}[-\s]?\d{4})(?![\d.])")
_LANDLINE = re.compile(r"(?<![\d.])(0\d{2,3}-\d{7,8}(?:-\d{1,5})?)(?![\d.])")
_AFTER_PHONE_KEYWORD = re.compile(
    rf"((?:{_PHONE_KEYWORDS})(?:是|为|号码|:|：|\s)*)(\d[\d\s-]{{1,20}}\d)(?![\d.%])"
)
_AFTER_CODE_KEYWORD = re.compile(
    rf"((?:{_CODE_KEYWORDS})(?:是|为|号|:|：|\s)*)([A-Za-z0-9][A-Za-z0-9-]{{2,39}})"
)
_SHORT_NUMBER = re.compile(r"(?<![\d.,])(\d{3,5})(?![\d.,%])")
_LONG_DIGITS = re.compile(r"(?<![\d.,])(\d{7,})(?![\d,]|\.\d)")


def read_phone_number(number: str) -> str:
    """Read a phone number digit by digit, 1 as 幺, with a pause at each separator."""
    groups = re.split(r"[-\s]+", number.strip())
    return "，".join(read_digits(group) for group in groups if group)


def read_code(code: str) -> str:
    """Read an order number or code: digits one by one (1 as 幺), letters kept."""
    pieces = re.split(r"(\d+)", code.replace("-", " "))
    spoken = "".join(read_digits(piece) if piece.isdigit() else piece for piece in pieces)
    return spoken.strip()


def _read_mobile(match: re.Match[str]) -> str:
    country = "加八六，" if match.group(1) else ""
    return country + read_phone_number(match.group(2))


def _read_short_number(match: re.Match[str]) -> str:
    number = match.group(1)
    is_service = number in _SERVICE_NUMBERS or (
        len(number) == 5 and number.startswith(_SERVICE_PREFIXES)
    )
    if not is_service or _followed_by_measure(match.string, match.end()):
        return number
    following = match.string[match.end() : match.end() + 1]
    if following and (following in "元块年月日号点" or following.isalpha() and following.isascii()):
        return number
    return read_digits(number)


def _normalize_phone_numbers_and_codes(text: str) -> str:
    text = _AFTER_CODE_KEYWORD.sub(lambda m: m.group(1) + read_code(m.group(2)), text)
    text = _AFTER_PHONE_KEYWORD.sub(lambda m: m.group(1) + read_phone_number(m.group(2)), text)
    text = _MOBILE.sub(_read_mobile, text)
    text = _HOTLINE.sub(lambda match: read_phone_number(match.group(1)), text)
    text = _LANDLINE.sub(lambda match: read_phone_number(match.group(1)), text)
    text = _SHORT_NUMBER.sub(_read_short_number, text)
    return _LONG_DIGITS.sub(lambda match: read_digits(match.group(1)), text)


# --- step 4: dates and clock times --------------------------------------------------------

_FULL_DATE = re.compile(
    r"(?<!\d)(\d{4})\s?[-/.年]\s?(\d{1,2})\s?[-/.月]\s?(\d{1,2})(?:日|号)?(?!\d)"
)
_YEAR = re.compile(r"(?<!\d)(\d{4})年")
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})([日号])")
_CLOCK_PATTERN = r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?"
_CLOCK = re.compile(rf"(?<![\d:]){_CLOCK_PATTERN}(?![\d:])")
_CLOCK_RANGE = re.compile(
    rf"(?<![\d:])({_CLOCK_PATTERN})\s?[-~～—–至]\s?({_CLOCK_PATTERN})(?![\d:])"
)


def _read_full_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return match.group(0)
    return (
        f"{read_digits(year, yao=False)}年{read_cardinal(int(month))}月{read_cardinal(int(day))}日"
    )


def read_clock_time(hours: int, minutes: int, seconds: int | None = None) -> str:
    """Read a clock time: 19:17 → 十九点十七分, 9:05 → 九点零五分, 2:00 → 两点."""
    spoken = read_cardinal(hours, liang=True) + "点"
    if minutes:
        spoken += ("零" if minutes < 10 else "") + read_cardinal(minutes) + "分"
    if seconds:
        spoken += read_cardinal(seconds) + "秒"
    return spoken


def _read_clock(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    seconds = int(match.group(3)) if match.group(3) else None
    if hours > 24 or minutes > 59 or (seconds is not None and seconds > 59):
        return match.group(0)
    return read_clock_time(hours, minutes, seconds)


def _normalize_dates_and_times(text: str) -> str:
    text = _FULL_DATE.sub(_read_full_date, text)
    text = _YEAR.sub(lambda match: read_digits(match.group(1), yao=False) + "年", text)
    text = _MONTH_DAY.sub(
        lambda m: f"{read_cardinal(int(m.group(1)))}月{read_cardinal(int(m.group(2)))}{m.group(3)}",
        text,
    )
    text = _CLOCK_RANGE.sub(_read_clock_range, text)
    return _CLOCK.sub(_read_clock, text)


def _read_clock_range(match: re.Match[str]) -> str:
    start = _CLOCK.sub(_read_clock, match.group(1))
    end = _CLOCK.sub(_read_clock, match.group(5))
    return f"{start}到{end}"


# --- step 5: percentages, fractions, ranges, ratios, units --------------------------------

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PERCENT = re.compile(rf"(?<![\d.])({_NUMBER})\s?%")
_FRACTION = re.compile(r"(?<![\d/.])(\d+)/(\d+)(?![\d/])")
_RANGE = re.compile(rf"(?<![\w.])({_NUMBER})\s?[-~～—–至]\s?({_NUMBER})(?![\d])")
_RATIO = re.compile(r"(?<![\d:])(\d+)[:：](\d+)(?![\d:])")
_TEMPERATURE_BELOW_ZERO = re.compile(rf"-({_NUMBER})\s?(℃|°C)")
_UNIT = re.compile(
    rf"(?<![\w.])({_NUMBER})\s?("
    + "|".join(sorted((re.escape(unit) for unit in _UNIT_NAMES), key=len, reverse=True))
    + r")(?![A-Za-z])"
)


def _read_unit(match: re.Match[str]) -> str:
    name = _UNIT_NAMES[match.group(2)]
    # 两公斤 and 两瓦, but temperatures and frequencies keep 二
    liang = name not in ("摄氏度", "度", "赫兹", "千赫兹")
    return read_decimal(match.group(1), liang=liang) + name


def _read_fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 0 or numerator >= denominator:
        return match.group(0)
    return f"{read_cardinal(denominator)}分之{read_cardinal(numerator)}"


def _read_range(match: re.Match[str]) -> str:
    liang = _followed_by_measure(match.string, match.end())
    return (
        f"{read_decimal(match.group(1), liang=liang)}到{read_decimal(match.group(2), liang=liang)}"
    )


def _normalize_quantities(text: str) -> str:
    text = _PERCENT.sub(lambda match: "百分之" + read_decimal(match.group(1)), text)
    text = _FRACTION.sub(_read_fraction, text)
    text = _TEMPERATURE_BELOW_ZERO.sub(
        lambda match: "零下" + read_decimal(match.group(1)) + "摄氏度", text
    )
    text = _UNIT.sub(_read_unit, text)
    text = _RANGE.sub(_read_range, text)
    return _RATIO.sub(
        lambda match: f"{read_cardinal(int(match.group(1)))}比{read_cardinal(int(match.group(2)))}",
        text,
    )


# --- step 6: remaining numbers ------------------------------------------------------------

_ORDINAL = re.compile(r"第\s?(\d+)")
_NEGATIVE = re.compile(rf"(?<![\w.])-({_NUMBER})")
# Digits inside a product code are read digit by digit: 4 or more glued to Latin letters
# (RTX4090), or 2 or more joined to letters by a hyphen or underscore (AB-1299-X, X-07).
_MODEL_NUMBER = re.compile(
    r"(?<=[A-Za-z])(\d{4,})|(?<=[A-Za-z][-_])(\d{2,})(?![\d.])|(?<![\d.])(\d{2,})(?=[-_][A-Za-z])"
)
_LEADING_ZERO = re.compile(r"(?<![\d.,])(0\d+)(?![\d,]|\.\d)")
_ANY_NUMBER = re.compile(rf"({_NUMBER})")


def _normalize_numbers(text: str) -> str:
    text = _ORDINAL.sub(lambda match: "第" + read_cardinal(int(match.group(1))), text)
    text = _NEGATIVE.sub(lambda match: "负" + read_decimal(match.group(1)), text)
    text = _MODEL_NUMBER.sub(lambda match: read_digits(match.group(0), yao=False), text)
    text = _LEADING_ZERO.sub(lambda match: read_digits(match.group(1), yao=False), text)
    return _ANY_NUMBER.sub(lambda match: _read_number_in_context(match, match.group(1)), text)


# --- step 7: letters and leftover symbols -------------------------------------------------

_LETTER_HYPHEN = re.compile(r"(?<=[A-Za-z])\s?[-_/]\s?(?=[A-Za-z])")
_PER_UNIT_SLASH = re.compile(r"(?<=[\u4e00-\u9fffA-Za-z])/(?=[\u4e00-\u9fff])")
_SYMBOL_WORDS = {"&": "和", "+": "加", "=": "等于", "@": " at "}
_DROPPED_SYMBOLS = re.compile(r"[#*_^|\\<>\[\]{}~`\"/$¥%-]")
_SPACES = re.compile(r"[ \t]+")
_SPACE_NEAR_CJK = re.compile(
    r"(?<=[\u3000-\u9fff，。！？；：、]) | (?=[\u3000-\u9fff，。！？；：、])"
)


def _normalize_letters_and_symbols(text: str) -> str:
    text = _LETTER_HYPHEN.sub(" ", text)
    text = _PER_UNIT_SLASH.sub("每", text)
    for symbol, word in _SYMBOL_WORDS.items():
        text = text.replace(symbol, word)
    text = _DROPPED_SYMBOLS.sub(" ", text)
    text = _SPACES.sub(" ", text)
    return _SPACE_NEAR_CJK.sub("", text).strip()


_STEPS: tuple[Callable[[str], str], ...] = (
    _clean_characters,
    _normalize_money,
    _normalize_phone_numbers_and_codes,
    _normalize_dates_and_times,
    _normalize_quantities,
    _normalize_numbers,
    _normalize_letters_and_symbols,
)


def normalize_text(text: str) -> str:
    """Rewrite digits and symbols in Chinese text as spoken words, for synthesis.

    Args:
        text: the answer text, Simplified Chinese mixed with digits, Latin letters and
            symbols.

    Returns:
        Text with no digits left; Latin words and acronyms are kept (a hyphen between
        letters becomes a space), emoji and decorative symbols are removed.
    """
    for step in _STEPS:
        text = step(text)
    return text
