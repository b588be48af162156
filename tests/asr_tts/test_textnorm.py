import re

import pytest

from asr_tts.textnorm import normalize_text, read_cardinal

NORMALIZATION_CASES = [
    # money: 元角分
    ("¥1,299.00", "一千二百九十九元"),
    ("¥12.50", "十二元五角"),
    ("¥12.05", "十二元零五分"),
    ("¥0.05", "五分"),
    ("￥2", "两元"),
    ("价格12.5元", "价格十二元五角"),
    ("共1,000,000元", "共一百万元"),
    # phone numbers and hotlines: digit by digit, 1 as 幺
    ("13800138000", "幺三八零零幺三八零零零"),
    ("请拨打400-820-8820咨询", "请拨打四零零，八二零，八八二零咨询"),
    ("遇到危险请拨打110", "遇到危险请拨打幺幺零"),
    ("110", "幺幺零"),
    ("10086", "幺零零八六"),
    ("客服电话95588", "客服电话九五五八八"),
    ("010-12345678", "零幺零，幺二三四五六七八"),
    ("+86 138 0013 8000", "加八六，幺三八，零零幺三，八零零零"),
    ("110个", "一百一十个"),
    # order numbers and codes
    ("订单号：202406181234", "订单号：二零二四零六幺八幺二三四"),
    ("您的订单 8826153 已发货", "您的订单八八二六幺五三已发货"),
    ("单号SF1234567890", "单号SF幺二三四五六七八九零"),
    ("验证码是 1234", "验证码是幺二三四"),
    # dates and clock times
    ("2024-06-18", "二零二四年六月十八日"),
    ("2024年6月18日", "二零二四年六月十八日"),
    ("19:17", "十九点十七分"),
    ("9:05", "九点零五分"),
    ("2:00", "两点"),
    ("营业时间9:00-18:00", "营业时间九点到十八点"),
    # percentages, fractions, ranges, ratios
    ("15%", "百分之十五"),
    ("12.5%", "百分之十二点五"),
    ("3/4", "四分之三"),
    ("3-5天", "三到五天"),
    ("2-3天", "两到三天"),
    ("比分3:2", "比分三比二"),
    ("5元/斤", "五元每斤"),
    # 两
    ("2000块", "两千块"),
    ("2个", "两个"),
    ("第2个", "第二个"),
    ("12个", "十二个"),
    ("200人", "两百人"),
    ("22000", "两万二千"),
    ("2小时", "两小时"),
    # units
    ("256GB", "二百五十六GB"),
    ("5G", "五G"),
    ("0.5kg", "零点五公斤"),
    ("25℃", "二十五摄氏度"),
    ("-5℃", "零下五摄氏度"),
    # letters and acronyms
    ("iPhone 15 Pro Max", "iPhone十五Pro Max"),
    ("支持NFC", "支持NFC"),
    ("USB-C接口", "USB C接口"),
    ("Anti-Gravity", "Anti Gravity"),
    ("RTX4090", "RTX四零九零"),
    ("AB-1299-X", "AB一二九九X"),
    # emoji and symbols
    ("好的😊👍！", "好的！"),
    ("★限时优惠★", "限时优惠"),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZATION_CASES)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text", [case[0] for case in NORMALIZATION_CASES])
def test_normalized_text_has_no_digits(text):
    assert not re.search(r"\d", normalize_text(text))


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0, "零"),
        (10, "十"),
        (15, "十五"),
        (101, "一百零一"),
        (110, "一百一十"),
        (1001, "一千零一"),
        (10010, "一万零一十"),
        (100000, "十万"),
        (1000001, "一百万零一"),
        (2500, "两千五百"),
        (120000000, "一亿二千万"),  # 两 only for the leading digit
    ],
)
def test_read_cardinal(number, expected):
    assert read_cardinal(number) == expected


def test_normalize_full_sentence():
    text = "您好😊！您的订单202406181234已于2024-06-18发货，售价¥5,999.00，客服热线400-820-8820。"
    assert normalize_text(text) == (
        "您好！您的订单二零二四零六幺八幺二三四已于二零二四年六月十八日发货，"
        "售价五千九百九十九元，客服热线四零零，八二零，八八二零。"
    )
