"""Tests for rag.contacts: finding contact details and the tenant's allow-list."""

from __future__ import annotations

import json

import pytest

from rag.contacts import AllowedContacts, find_contacts, remove_contacts
from server.errors import ConfigError
from tests.rag.helpers import CROSSWOZ_DB, CROSSWOZ_MISSING

SHOP = AllowedContacts(
    phones=("400-820-8820", "010-12345678", "13900139000"),
    domains=("shop.example.com",),
    wechat_ids=("Yunfan_Kefu",),
    qq_numbers=("800012345",),
    emails=("help@partner.cn",),
)
NOTHING = AllowedContacts()


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("找小王13800138000", "mobile", "13800138000"),
        ("请拨打 138 0013 8000 咨询", "phone", "138 0013 8000"),
        ("Call +86 138-0013-8000 now", "phone", "+86 138-0013-8000"),
        ("号码86-13800138000", "mobile", "86-13800138000"),
        ("热线400-820-8821", "phone", "400-820-8821"),
        ("欢迎来电 4008208821。", "hotline", "4008208821"),
        ("客服 800 820 8821", "hotline", "800 820 8821"),
        ("座机：(0755) 8888 8888", "landline", "(0755) 8888 8888"),
        ("门店 010-87654321转123", "landline", "010-87654321转123"),
        ("门店 010 - 87654321", "landline", "010 - 87654321"),
        ("电话：67015775", "phone", "67015775"),
        ("请加微信：abc12345了解优惠。", "wechat", "abc12345"),
        ("VX abc_123456", "wechat", "abc_123456"),
        ("v信 shop-2024a", "wechat", "shop-2024a"),
        ("wx:kefu2024", "wechat", "kefu2024"),
        ("加我 abc123456", "wechat", "abc123456"),
        ("微信号是 13800138000", "wechat", "13800138000"),
        ("关注公众号：yunfan_shop", "wechat", "yunfan_shop"),
        ("搜索wxid_abcdef123", "wechat", "wxid_abcdef123"),
        ("QQ群：123456789", "qq", "123456789"),
        ("扣扣 987654321", "qq", "987654321"),
        ("邮箱help@evil.cn", "email", "help@evil.cn"),
        ("访问https://evil.cn/a?b=1了解", "url", "https://evil.cn/a?b=1"),
        ("see www.evil.com.", "url", "www.evil.com"),
        ("官网evil-shop.com.cn", "url", "evil-shop.com.cn"),
        ("Visit EVIL.COM today", "url", "EVIL.COM"),
    ],
)
def test_find_contacts_kinds(text, kind, value):
    found = find_contacts(text)

    assert [(contact.kind, contact.value) for contact in found] == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "支持微信支付和支付宝。",
        "微信 Pay 和 App 都可以。",
        "型号AB-1299-X，价格¥1,299.00，2024-06-18发货。",
        "订单号202406181234567890",
        "订单号 13800138000",
        "order no. 13800138000",
        "蓝牙5.3，续航30小时，读取速度每秒400MB。",
        "版本v2.0.1，说明书manual.pdf。",
        "满99元包邮，运费8元。",
        "营业时间 09:00-21:00",
        "手机壳适配华为Mate60。",
        "QQ邮箱和微信都能登录。",
        "20240618123045",
    ],
)
def test_find_contacts_ignores_ordinary_text(text):
    assert find_contacts(text) == []


def test_find_contacts_numbers_listed_after_keyword():
    found = find_contacts("电话是83172726,83172706；67015775、010-87654321")

    assert [contact.value for contact in found] == [
        "83172726",
        "83172706",
        "67015775",
        "010-87654321",
    ]


def test_find_contacts_two_mobiles_side_by_side():
    found = find_contacts("13800138000 13900139000")

    assert [contact.value for contact in found] == ["13800138000", "13900139000"]


def test_remove_contacts_keeps_keyword():
    cleaned, removed = remove_contacts("请加微信：abc12345了解优惠。", NOTHING)

    assert cleaned == "请加微信了解优惠。"
    assert [contact.value for contact in removed] == ["abc12345"]


def test_remove_contacts_drops_doubled_space():
    cleaned, _ = remove_contacts("访问 www.evil.com 了解", NOTHING)

    assert cleaned == "访问 了解"


@pytest.mark.parametrize(
    "text",
    [
        "拨打400-820-8820",
        "拨打 400 820 8820",
        "拨打4008208820",
        "座机(010)12345678",
        "座机 010 1234 5678",
        "电话 +86 139 0013 9000",
        "微信：yunfan_kefu",
        "微信：13900139000",
        "QQ 800012345",
        "详见https://shop.example.com/help?id=1",
        "官网 www.shop.example.com",
        "官网 m.shop.example.com/a",
        "邮箱 service@shop.example.com",
        "邮箱 help@partner.cn",
        "投诉请拨打12315",
    ],
)
def test_remove_contacts_keeps_allowed(text):
    cleaned, removed = remove_contacts(text, SHOP)

    assert removed == []
    assert cleaned == text


@pytest.mark.parametrize(
    "text",
    [
        "拨打400-820-8821",
        "微信：yunfan_kefu2",
        "QQ 800012346",
        "访问https://shop.example.com@evil.cn/x",
        "访问https://shop.example.com.evil.cn/x",
        "访问 evilshop.example.com.cn",
        "访问 myshop.example.co",
        "邮箱 other@partner.cn",
    ],
)
def test_remove_contacts_removes_lookalikes(text):
    _, removed = remove_contacts(text, SHOP)

    assert len(removed) == 1


def test_allowed_wechat_id_ignores_letter_case():
    cleaned, removed = remove_contacts("微信 YUNFAN_KEFU", SHOP)

    assert removed == []
    assert cleaned == "微信 YUNFAN_KEFU"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phones", "1234"),
        ("domains", "not a host"),
        ("domains", "localhost"),
        ("wechat_ids", "微信号"),
        ("qq_numbers", "0123456"),
        ("emails", "help.example.com"),
    ],
)
def test_allowed_contacts_rejects_invalid(field, value):
    with pytest.raises(ConfigError) as raised:
        AllowedContacts(**{field: (value,)})

    assert f"allowed_contacts.{field}[0]" in str(raised.value)
    assert repr(value) in str(raised.value)


def test_allowed_contacts_accepts_numbers_as_ints():
    allowed = AllowedContacts(phones=(4008208820,), qq_numbers=(800012345,))

    assert allowed.phones == ("4008208820",)
    assert allowed.qq_numbers == ("800012345",)


def test_crosswoz_phone_fields_all_found():
    if not CROSSWOZ_DB.exists():
        pytest.skip(CROSSWOZ_MISSING)

    missed = []
    for file_name in ("attraction_db.json", "restaurant_db.json", "hotel_db.json"):
        for name, fields in json.loads((CROSSWOZ_DB / file_name).read_text(encoding="utf-8")):
            phone = fields.get("电话")
            if not isinstance(phone, str) or not phone.strip():
                continue
            # The extractive engine states a field as {title}的{field}是{value}。
            cleaned, _ = remove_contacts(f"{name}的电话是{phone}。", NOTHING)
            if any(character.isdigit() for character in cleaned.replace(name, "")):
                missed.append((phone, cleaned))

    assert missed == []
