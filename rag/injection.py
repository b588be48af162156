"""Prompt-injection checks for knowledge passages before they are indexed.

A passage in a tenant's knowledge base reaches the answer model as context, so text
written to steer the model (忽略之前的所有指令, "ignore previous instructions") can take
over an answer. `detect_injection` flags:

- instruction overrides: 忽略/无视/忘记 + 之前/以上/所有 + 指令/提示/规则/设定…, 不要遵守…规则,
  "ignore/disregard/forget … previous/above/all … instructions/rules/prompts";
- role changes: 你现在是 + an assistant or model role, 从现在开始你…, 假装你是, 你不再是,
  进入 DAN/越狱 mode, "you are now a/an", "from now on you", "pretend to be",
  "act as a/an" at the start of a sentence, and chat-template tokens (<|im_start|>, [INST]);
- system prompt requests: 系统提示词, "system prompt", 输出/告诉我 + 你的提示词/指令,
  "reveal/print/repeat your instructions";
- output format demands: 请/只/必须 + 用 JSON 回答/输出, "respond/answer only in JSON";
- text hidden in HTML comments (<!-- … -->, also an unclosed <!--);
- zero-width characters (U+200B..U+200D, U+2060, U+FEFF other than a leading byte-order
  mark) and bidi controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069).

Wording checks run on a match form (NFKC, lower case, invisible characters removed,
whitespace kept only between two ASCII letters or digits), so 忽<U+200B>略, 忽 略 or
full-width letters do not hide an instruction. Run the check on the raw passage, because
`rag.clean.normalize_text` removes the invisible characters that this module reports.

Flags of HIDDEN_TEXT_KINDS name what `sanitize_passage` removes. They come from copying
too: the CrossWOZ venue data carries stray U+200E and U+200D. So a passage with only those
flags can be sanitized and indexed, while a wording flag calls for a person to review it.

Instructions to the customer are not flagged: 请忽略短信中的链接 tells the reader to ignore
a link, and only the model-directed objects (指令, 提示词, 设定, 规则 after 之前/以上/所有)
make an override. Known false positive: a policy update that says 请忽略之前的规则 is flagged.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

InjectionKind = Literal[
    "instruction_override",
    "role_change",
    "system_prompt_request",
    "output_format_demand",
    "hidden_html_comment",
    "zero_width_character",
    "bidi_control",
]

HIDDEN_TEXT_KINDS: frozenset[str] = frozenset(
    {"hidden_html_comment", "zero_width_character", "bidi_control"}
)

EXCERPT_CONTEXT_CHARS = 20

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_ZERO_WIDTH_RUN = re.compile(f"[{_ZERO_WIDTH}]+")
_BIDI_RUN = re.compile(f"[{_BIDI_CONTROLS}]+")
_INVISIBLE = re.compile(f"[{_ZERO_WIDTH}{_BIDI_CONTROLS}]+")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)

_OVERRIDE_CN = (
    r"(?:忽略|无视|忘记|忘掉|抛开|不要理会|不用理会|别管)(?:掉|一下)?你?"
    r"(?:之前|以前|先前|此前|上面|上述|以上|前面|原来|原有|你的|所有|全部|一切)的?"
    r"(?:(?:所有|全部|一切)的?)?"
    r"(?:指令|指示|提示词|提示|设定|命令|约束|限制|规则|要求|对话|(?<=所有|全部|一切)内容)"
)
_OVERRIDE_CN_RULES = (
    r"(?:不要|不用|无需|不必|停止)(?:再)?(?:遵守|遵循|理会)(?:你的|任何|所有)?"
    r"(?:规则|指令|限制|设定)"
)
_OVERRIDE_CN_NEW = r"(?:新的|以下是新的?|下面是新的?)(?:指令|指示|系统提示)\s*[:：]"
_OVERRIDE_EN = (
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+)?"
    r"(?:previous|prior|above|earlier|preceding|foregoing|your|system|all|any)\s+"
    r"(?:\w+\s+)?(?:instructions?|prompts?|rules|directions|guidelines|context|messages)\b"
)
_OVERRIDE_EN_NEW = r"\bnew\s+(?:system\s+)?instructions?\s*:"

_ROLE_NOUNS = (
    r"(?:助手|助理|人工智能|机器人|模型|角色|专家|黑客|管理员|开发者|无限制"
    r"|(?<![a-z])(?:ai|dan|gpt|chatgpt|llm)(?![a-z]))"
)
_ROLE_CN = (
    rf"你现在(?:的身份)?是(?:一个|一名|一位)?[^，。！？\n]{{0,12}}?{_ROLE_NOUNS}"
    r"|从现在(?:开始|起)[，,]?\s*你(?:就|将|要|必须)?(?:是|扮演|作为|充当)"
    r"|假装你是|你不再是|你的新(?:身份|角色)是"
    r"|进入(?:dan|越狱|无限制|上帝|无审查)模式"
)
_ROLE_EN = (
    r"\byou\s+are\s+now\s+(?:a|an|the|my)\b|\bfrom\s+now\s+on,?\s+you\b"
    r"|\bpretend\s+(?:to\s+be|you\s+are)\b|\byou\s+are\s+no\s+longer\b"
    r"|(?:^|[.!?。！？]\s*)(?:please\s+)?act\s+as\s+(?:a|an)\b"
    r"|\b(?:enter|enable)\s+(?:dan|jailbreak|god)\s+mode\b"
)
_CHAT_TEMPLATE_TOKENS = r"<\|im_start\|>|<\|im_end\|>|<\|system\|>|\[/?inst\]|<<sys>>"

_REVEAL_VERBS_CN = r"(?:输出|打印|告诉我|透露|泄露|重复|展示|显示|给出|复述)"
_REVEAL_VERBS_EN = r"(?:print|reveal|show|repeat|output|tell\s+me|display)"
_SYSTEM_PROMPT = (
    r"系统提示词|系统级?指令|system\s*prompt|developer\s+(?:message|prompt)"
    rf"|{_REVEAL_VERBS_CN}.{{0,8}}?你的(?:提示词|指令|设定|初始指令)"
    rf"|\b{_REVEAL_VERBS_EN}\b.{{0,12}}?\byour\s+(?:instructions|prompt|rules|initial)"
)

_JSON_DEMAND = (
    r"(?:只|仅|必须|务必|请)\s*(?:能)?(?:用|以|按|使用|按照)?\s*json\s*(?:格式)?\s*"
    r"(?:回答|回复|输出|返回|作答)"
    r"|\b(?:respond|reply|answer|output)\s+(?:only\s+)?(?:in|with|as)\s+(?:valid\s+)?json\b"
)

_WORDING_CHECKS: tuple[tuple[InjectionKind, str, re.Pattern[str]], ...] = tuple(
    (kind, rule, re.compile(pattern))
    for kind, rule, pattern in (
        ("instruction_override", "override-zh", _OVERRIDE_CN),
        ("instruction_override", "stop-obeying-zh", _OVERRIDE_CN_RULES),
        ("instruction_override", "new-instructions-zh", _OVERRIDE_CN_NEW),
        ("instruction_override", "override-en", _OVERRIDE_EN),
        ("instruction_override", "new-instructions-en", _OVERRIDE_EN_NEW),
        ("role_change", "role-zh", _ROLE_CN),
        ("role_change", "role-en", _ROLE_EN),
        ("role_change", "chat-template-token", _CHAT_TEMPLATE_TOKENS),
        ("system_prompt_request", "system-prompt", _SYSTEM_PROMPT),
        ("output_format_demand", "json-output", _JSON_DEMAND),
    )
)


@dataclass(frozen=True)
class InjectionFlag:
    """One suspicious spot in a passage.

    Attributes:
        kind: what was found; see InjectionKind.
        rule: the name of the check that fired, such as override-zh or zero-width.
        position: offset in the passage as given (characters, 0-based).
        excerpt: the text around the spot, with invisible characters written as \\uXXXX
            escapes, at most about 2 × EXCERPT_CONTEXT_CHARS characters plus the match.
    """

    kind: InjectionKind
    rule: str
    position: int
    excerpt: str


def detect_injection(text: str) -> list[InjectionFlag]:
    """Check a knowledge passage for text that gives instructions to the answer model.

    Args:
        text: the passage as loaded, before `normalize_text` and `sanitize_passage`.

    Returns:
        Flags in order of position; empty for an ordinary passage.
    """
    if not text:
        return []
    flags = _hidden_text_flags(text) + _wording_flags(text)
    flags.sort(key=lambda flag: flag.position)
    if flags:
        logger.debug("passage has %d injection flag(s): %s", len(flags), _kinds(flags))
    return flags


def sanitize_passage(text: str) -> str:
    """Remove HTML comments (an unclosed <!-- to the end of the text), zero-width
    characters and bidi controls; leave everything else as it is."""
    without_comments = _HTML_COMMENT.sub("", text)
    return _INVISIBLE.sub("", without_comments)


def _hidden_text_flags(text: str) -> list[InjectionFlag]:
    flags = []
    for match in _HTML_COMMENT.finditer(text):
        flags.append(_flag("hidden_html_comment", "html-comment", text, *match.span()))
    for match in _ZERO_WIDTH_RUN.finditer(text):
        if match.group() == "\ufeff" and match.start() == 0:
            continue  # a byte-order mark at the start of a file is ordinary
        flags.append(_flag("zero_width_character", "zero-width", text, *match.span()))
    for match in _BIDI_RUN.finditer(text):
        flags.append(_flag("bidi_control", "bidi-control", text, *match.span()))
    return flags


def _wording_flags(text: str) -> list[InjectionFlag]:
    form, origin = _match_form(text)
    flags = []
    for kind, rule, pattern in _WORDING_CHECKS:
        for match in pattern.finditer(form):
            start = origin[match.start()]
            end = origin[match.end() - 1] + 1
            flags.append(_flag(kind, rule, text, start, end))
    return flags


def _match_form(text: str) -> tuple[str, list[int]]:
    """Return the match form and, for each of its characters, the offset in `text`.

    Whitespace runs become one space, and a space next to a character other than an
    ASCII letter or digit is dropped, so 忽 略 之 前 reads as 忽略之前.
    """
    characters: list[str] = []
    origin: list[int] = []
    for index, character in enumerate(text):
        if character in _ZERO_WIDTH or character in _BIDI_CONTROLS:
            continue
        if character.isspace():
            if characters and characters[-1] != " ":
                characters.append(" ")
                origin.append(index)
            continue
        for piece in unicodedata.normalize("NFKC", character).casefold():
            characters.append(piece)
            origin.append(index)

    kept_positions = [
        position
        for position, character in enumerate(characters)
        if character != " "
        or (_is_ascii_word(characters, position - 1) and _is_ascii_word(characters, position + 1))
    ]
    return "".join(characters[p] for p in kept_positions), [origin[p] for p in kept_positions]


def _is_ascii_word(characters: list[str], position: int) -> bool:
    if not 0 <= position < len(characters):
        return False
    character = characters[position]
    return character.isascii() and character.isalnum()


def _flag(kind: InjectionKind, rule: str, text: str, start: int, end: int) -> InjectionFlag:
    excerpt_start = max(0, start - EXCERPT_CONTEXT_CHARS)
    excerpt_end = min(len(text), end + EXCERPT_CONTEXT_CHARS)
    excerpt = _show_invisible(text[excerpt_start:excerpt_end])
    return InjectionFlag(kind=kind, rule=rule, position=start, excerpt=excerpt)


def _show_invisible(text: str) -> str:
    return _INVISIBLE.sub(
        lambda match: "".join(f"\\u{ord(character):04x}" for character in match.group()), text
    )


def _kinds(flags: list[InjectionFlag]) -> str:
    return ", ".join(sorted({flag.kind for flag in flags}))
