"""What the assistant says to callers, per locale: Simplified Chinese by default."""

from __future__ import annotations

from server.errors import InvalidArgumentError

DEFAULT_LOCALE = "zh-CN"
LOCALES: tuple[str, ...] = ("zh-CN", "en-US")

_PHRASES: dict[str, dict[str, str]] = {
    "fallback": {
        "zh-CN": "抱歉，我暂时没有找到相关信息。需要为您转接人工客服吗？",
        "en-US": "Sorry, I could not find that information. Shall I connect you to a human agent?",
    },
    "field_value": {
        "zh-CN": "{title}的{field}是{value}。",
        "en-US": "The {field} of {title} is {value}.",
    },
    "field_empty": {
        "zh-CN": "{title}暂无{field}的信息。",
        "en-US": "There is no {field} information for {title}.",
    },
    "record_summary": {
        "zh-CN": "{title}：{details}。",
        "en-US": "{title}: {details}.",
    },
    "list_separator": {"zh-CN": "、", "en-US": ", "},
    "detail_separator": {"zh-CN": "；", "en-US": "; "},
    "handoff_human": {
        "zh-CN": "好的，正在为您转接人工客服，请稍候。",
        "en-US": "Sure, I am connecting you to a human agent. Please hold on.",
    },
    "handoff_complaint": {
        "zh-CN": "非常抱歉给您带来不好的体验，正在为您转接人工客服处理。",
        "en-US": "I am very sorry for the trouble. I am connecting you to a human agent now.",
    },
    "handoff_repeated": {
        "zh-CN": "抱歉，我还是没能找到答案，正在为您转接人工客服。",
        "en-US": "Sorry, I still could not find the answer. I am connecting you to a human agent.",
    },
    "image_code": {
        "zh-CN": "照片上的型号是{value}。",
        "en-US": "The model number in the photo is {value}.",
    },
    "image_order": {
        "zh-CN": "照片上的订单号是{value}。",
        "en-US": "The order number in the photo is {value}.",
    },
    "image_product": {
        "zh-CN": "照片上的商品看起来是{value}。",
        "en-US": "The product in the photo looks like {value}.",
    },
    "image_text": {
        "zh-CN": "照片上的文字是：{value}。",
        "en-US": "The photo reads: {value}.",
    },
    "image_nothing": {
        "zh-CN": "抱歉，我没能从照片中识别出文字或商品，您可以换个角度重新拍一张吗？",
        "en-US": "Sorry, I could not read any text or product in the photo. "
        "Could you take it again?",
    },
    "engine_error": {
        "zh-CN": "抱歉，系统暂时出现问题，正在为您转接人工客服。",
        "en-US": "Sorry, something went wrong on our side. I am connecting you to a human agent.",
    },
}


def normalize_locale(locale: str, field_name: str = "locale") -> str:
    """Return a supported locale; empty means the default.

    Accepts `zh`, `zh-CN`, `zh_CN`, `en`, `en-US`, in any letter case.
    """
    if not locale:
        return DEFAULT_LOCALE
    key = locale.replace("_", "-").lower()
    if key in ("zh", "zh-cn", "zh-hans", "cmn", "cmn-hans-cn"):
        return "zh-CN"
    if key in ("en", "en-us", "en-gb"):
        return "en-US"
    raise InvalidArgumentError(field_name, locale, f"accepted locales are {', '.join(LOCALES)}")


def phrase(key: str, locale: str, **values: str) -> str:
    """Return the phrase `key` in `locale`, formatted with `values`."""
    return _PHRASES[key][locale].format(**values)
