"""Tests for server.pii: the masking table, the checksums and the logging filter."""

from __future__ import annotations

import io
import logging

import pytest

from server.pii import PiiMaskingFilter, is_valid_id_number, mask_pii, passes_luhn

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(first17: str) -> str:
    """Complete 17 digits into a resident ID number with its GB 11643 check character."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def wrong_check(number: str) -> str:
    """Return the ID number with a different, wrong last character."""
    return number[:17] + ("1" if number[17] != "1" else "2")


def luhn_number(prefix: str, length: int) -> str:
    """Pad `prefix` with zeros and append the Luhn check digit, to `length` digits."""
    body = prefix.ljust(length - 1, "0")
    for check in "0123456789":
        if passes_luhn(body + check):
            return body + check
    raise AssertionError("one of ten check digits always passes")


def grouped(digits: str) -> str:
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


VALID_ID = id_number("11010519491231002")  # ends in X
VALID_ID_DIGIT = id_number("44030419850712331")
VALID_CARD_16 = luhn_number("622202123456", 16)
VALID_CARD_19 = luhn_number("621700012345678", 19)
INVALID_CARD = VALID_CARD_16[:-1] + str((int(VALID_CARD_16[-1]) + 1) % 10)


def test_helpers_build_valid_numbers():
    assert VALID_ID.endswith("X")
    assert is_valid_id_number(VALID_ID)
    assert is_valid_id_number(VALID_ID_DIGIT)
    assert not is_valid_id_number(wrong_check(VALID_ID))
    assert passes_luhn(VALID_CARD_16)
    assert passes_luhn(VALID_CARD_19)
    assert not passes_luhn(INVALID_CARD)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # mobile numbers in the spellings customers and ASR produce
        ("13800138000", "138****8000"),
        ("我的手机是13800138000，谢谢", "我的手机是138****8000，谢谢"),
        ("138 0013 8000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("+86 138 0013 8000", "+86 138****8000"),
        ("+8613800138000", "+86138****8000"),
        ("86-13800138000", "86-138****8000"),
        ("0086 13800138000", "0086 138****8000"),
        ("1 3 8 0 0 1 3 8 0 0 0", "138****8000"),
        ("１３８００１３８０００", "138****8000"),
        ("13800138000 13900139000", "138****8000 139****9000"),
        ("13800138000,13900139000", "138****8000,139****9000"),
        # resident ID numbers: masked only with a real birth date and the right check
        (f"身份证{VALID_ID}", f"身份证110{'*' * 11}002X"),
        (f"身份证{VALID_ID.lower()}", f"身份证110{'*' * 11}002X"),
        (f"id {VALID_ID_DIGIT} ok", f"id 440{'*' * 11}{VALID_ID_DIGIT[-4:]} ok"),
        (f"身份证{wrong_check(VALID_ID)}", f"身份证{wrong_check(VALID_ID)}"),
        ("身份证110105194913310021", "身份证110105194913310021"),
        # bank cards: 16 to 19 digits that pass Luhn and start like a card
        (f"卡号{VALID_CARD_16}", f"卡号6222{'*' * 8}{VALID_CARD_16[-4:]}"),
        (f"卡号 {grouped(VALID_CARD_16)}", f"卡号 6222{'*' * 8}{VALID_CARD_16[-4:]}"),
        (f"卡号{VALID_CARD_19}", f"卡号6217{'*' * 11}{VALID_CARD_19[-4:]}"),
        (f"卡号{INVALID_CARD}", f"卡号{INVALID_CARD}"),
        (f"卡号 {grouped(INVALID_CARD)}", f"卡号 {grouped(INVALID_CARD)}"),
        # order numbers, SKUs, amounts and dates stay
        ("订单号 202406181234567890", "订单号 202406181234567890"),
        (f"订单号：{VALID_ID_DIGIT}", f"订单号：{VALID_ID_DIGIT}"),
        (f"订单{VALID_CARD_16}", f"订单{VALID_CARD_16}"),
        ("单号13800138000", "单号13800138000"),
        ("order no. 13800138000", "order no. 13800138000"),
        ("Order #13800138000", "Order #13800138000"),
        ("型号AB-1299-X", "型号AB-1299-X"),
        ("SKU-13800138000", "SKU-13800138000"),
        ("价格¥1,299.00", "价格¥1,299.00"),
        ("共¥13800138000元", "共¥13800138000元"),
        ("2024-06-18 13:30 发货", "2024-06-18 13:30 发货"),
        ("20240618123456", "20240618123456"),
        ("202406181234567890", "202406181234567890"),
        # e-mail addresses
        ("邮箱 kefu.li@example.com", "邮箱 k***@example.com"),
        # addresses
        ("地址：北京市朝阳区建国路88号3单元501室。好的", "地址：[地址]。好的"),
        ("收货地址是上海市浦东新区世纪大道100号", "收货地址是[地址]"),
        ("我住在海淀区中关村南大街5号院", "我住在[地址]"),
        ("寄到广东省深圳市南山区科技园路1号", "寄到[地址]"),
        ("请送到北京市东城区景山前街4号，谢谢。", "请送到[地址]。"),
        ("快递放在北京市朝阳区建国路88号门口", "快递放在[地址]门口"),
        ("地址：不方便说", "地址：[地址]"),
        ("门店地址在哪里？", "门店地址在哪里？"),
        ("下单后可以修改收货地址吗？", "下单后可以修改收货地址吗？"),
        ("我住在附近", "我住在附近"),
        ("建国路88号", "建国路88号"),
        # nothing to mask
        ("", ""),
        ("运费怎么算？", "运费怎么算？"),
    ],
)
def test_mask_pii_table(raw, expected):
    assert mask_pii(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        f"身份证{VALID_ID}，手机+86 138 0013 8000",
        f"卡号 {grouped(VALID_CARD_16)}",
        "地址：北京市朝阳区建国路88号",
        "邮箱 kefu.li@example.com",
    ],
)
def test_mask_pii_idempotent(raw):
    once = mask_pii(raw)
    assert mask_pii(once) == once


def test_mask_pii_several_kinds_in_one_text():
    text = f"订单号202406181234567890，手机13800138000，身份证{VALID_ID}，卡号{VALID_CARD_16}。"

    masked = mask_pii(text)

    assert "202406181234567890" in masked
    assert "13800138000" not in masked
    assert VALID_ID not in masked
    assert VALID_CARD_16 not in masked
    assert "138****8000" in masked


def test_id_number_rejects_impossible_date():
    number = id_number("11010519490230002")  # 30 February
    assert not is_valid_id_number(number)
    assert mask_pii(number) == number


def test_card_with_date_prefix_stays():
    # A date-based order number that happens to pass Luhn is not a card.
    number = luhn_number("2024061812", 18)
    assert passes_luhn(number)
    assert mask_pii(number) == number


def test_passes_luhn_rejects_non_digits():
    assert not passes_luhn("4111 1111 1111 1111")
    assert passes_luhn("4111111111111111")


# --- PiiMaskingFilter ---


@pytest.fixture
def masked_logger():
    """A logger whose only handler writes to a string buffer through PiiMaskingFilter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(PiiMaskingFilter())
    logger = logging.getLogger("tests.server.test_pii.masked")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def test_filter_masks_message_and_args(masked_logger):
    logger, stream = masked_logger

    logger.info("caller %s asked about order %s", "13800138000", "订单号202406181234567890")

    line = stream.getvalue()
    assert "138****8000" in line
    assert "13800138000" not in line
    assert "202406181234567890" in line


def test_filter_masks_mapping_args(masked_logger):
    logger, stream = masked_logger

    logger.info("phone=%(phone)s", {"phone": "138 0013 8000"})

    assert stream.getvalue().strip() == "INFO phone=138****8000"


def test_filter_masks_traceback(masked_logger):
    logger, stream = masked_logger

    try:
        raise ValueError("no account for 13800138000")
    except ValueError:
        logger.exception("lookup failed")

    output = stream.getvalue()
    assert "Traceback" in output
    assert "138****8000" in output
    assert "13800138000" not in output


def test_filter_masks_stack_info(masked_logger):
    logger, stream = masked_logger
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "done", (), None, sinfo="Stack: 13800138000"
    )

    logger.handle(record)

    assert "13800138000" not in stream.getvalue()
    assert "138****8000" in stream.getvalue()


def test_filter_survives_bad_format_args():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s and %s", ("13800138000",), None)

    keep_record = PiiMaskingFilter().filter(record)

    assert keep_record is True
    assert record.args == ("138****8000",)


def test_filter_masks_non_string_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, ValueError("13800138000"), (), None)

    PiiMaskingFilter().filter(record)

    assert record.getMessage() == "138****8000"
