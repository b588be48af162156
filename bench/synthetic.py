"""Synthetic venues and their vectors, to pad a tenant's collection to a benchmark size.

Embedding 100k passages with e5-small takes hours on two cores, so the padding records
get dense vectors made by perturbing the real records' vectors, while their sparse vectors
come from the real tokenizer through the normal ingestion path. The store then scans
vectors shaped like real ones, and the BM25 index has real-sized term lists.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

# Cosine between a padding vector and the real vector it is made from.
PAD_COSINE = 0.9

_DISTRICTS = (
    "东城区 西城区 朝阳区 海淀区 丰台区 石景山区 通州区 昌平区 大兴区 顺义区 房山区 "
    "门头沟区 怀柔区 平谷区 密云区 延庆区"
).split()
_AREAS = (
    "望京 国贸 双井 劲松 方庄 草桥 苹果园 良乡 酒仙桥 大望路 亚运村 牡丹园 北苑 "
    "和平里 西直门 东直门 崇文门 宣武门 公主坟 五棵松 知春路 学院路 上地 西二旗 天通苑 "
    "回龙观 立水桥 亦庄 旧宫 黄村 梨园 九棵树 马驹桥 定福庄 管庄 十里堡 金台夕照 "
    "安贞 惠新西街 芍药居 太阳宫 三元桥 燕莎 亮马河 团结湖 呼家楼 四惠 高碑店 "
    "长椿街 广安门 白纸坊 陶然亭 永定门 蒲黄榆 刘家窑 宋家庄 角门 玉泉营 卢沟桥 "
    "长辛店 八角 古城 模式口 首钢 田村 万寿路 五路居 车道沟 紫竹桥 魏公村 大钟寺"
).split()
_STREET_ENDINGS = "路 街 大街 胡同 南路 北路 东路 西路 中路 里".split()
_STREET_CHARS = "安 宁 和 平 兴 隆 福 顺 康 庄 华 光 明 新 源 泉 林 园 桥 河 广 德 胜 春 秋".split()
_BRAND_CHARS = "老 小 大 金 福 鸿 聚 德 顺 兴 隆 香 味 鲜 川 湘 粤 京 鲁 徽 云 巴 蜀 滇".split()
_RESTAURANT_KINDS = (
    "烤鸭店 涮肉馆 饺子馆 面馆 火锅 小厨 私房菜 川菜馆 湘菜馆 烧烤 茶餐厅 素食馆 "
    "海鲜酒楼 家常菜 粥铺 包子铺 烤肉 串吧 卤煮 炸酱面 小馆 食府 酒家 菜馆"
).split()
_HOTEL_KINDS = "大酒店 宾馆 饭店 酒店 国际酒店 商务酒店 精品酒店 公寓酒店 快捷酒店 客栈".split()
_ATTRACTION_KINDS = (
    "公园 博物馆 美术馆 湿地公园 森林公园 文化广场 艺术区 民俗村 植物园 体育中心 "
    "纪念馆 剧场 科技馆 生态园 采摘园 滑雪场 影视城 水上乐园 古村 书院"
).split()
_HOURS = (
    "周一至周日 10:00-22:00",
    "周一至周日 11:00-14:00 17:00-21:30",
    "周一至周日 09:00-21:00",
    "周一至周五 11:00-22:00 周六至周日 10:00-23:00",
    "24小时营业",
    "周一至周日 06:00-10:00 11:00-20:00",
)
_VISIT_TIMES = (
    "1小时 - 2小时",
    "2小时 - 3小时",
    "0.5小时 - 1小时",
    "3小时 - 4小时",
    "半天",
    "1天",
)
_TICKETS = (0, 0, 10, 15, 20, 30, 40, 60, 80, 120)
_HOTEL_TYPES = ("经济型", "舒适型", "高档型", "豪华型")
_NEIGHBOUR_FIELDS = ("周边景点", "周边餐馆", "周边酒店")
_NEIGHBOUR_DOMAINS = {"周边景点": "景点", "周边餐馆": "餐馆", "周边酒店": "酒店"}


def generate_venues(
    count: int,
    real: dict[str, list[dict[str, Any]]],
    *,
    seed: int,
    taken: set[str],
) -> list[dict[str, Any]]:
    """Generate `count` synthetic venue records, in the real domains' proportions.

    Values are drawn from fixed word lists and from the real records (subway stations,
    dishes, facilities, neighbour names), and each list field is as long as the same
    field of a randomly chosen real record. The output depends only on the arguments.

    Args:
        real: the real records per domain (景点, 餐馆, 酒店).
        seed: the random seed.
        taken: names already in use, such as the real venues' names. The new names are
            added to it, and none contains a name that was in it before the call.
    """
    rng = random.Random(seed)
    real_names = {d: [r["名称"] for r in records] for d, records in real.items()}
    earlier = frozenset(taken)
    shortest = min(map(len, earlier), default=1)
    vocab = _vocabulary(real)
    domains = list(real)
    weights = [len(real[d]) for d in domains]

    venues = []
    for _ in range(count):
        domain = rng.choices(domains, weights)[0]
        name = _unique_name(rng, domain, taken, earlier, shortest)
        template = rng.choice(real[domain])
        venues.append(_venue(rng, domain, name, template, vocab, real_names))
    return venues


def _vocabulary(real: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Collect the value lists the generator samples from the real records."""
    everything = [r for records in real.values() for r in records]
    return {
        "地铁": sorted({r["地铁"] for r in everything if r.get("地铁")}),
        "推荐菜": sorted({d for r in real["餐馆"] for d in r.get("推荐菜") or []}),
        "酒店设施": sorted({f for r in real["酒店"] for f in r.get("酒店设施") or []}),
    }


def _unique_name(
    rng: random.Random, domain: str, taken: set[str], earlier: frozenset[str], shortest: int
) -> str:
    while True:
        name = _name(rng, domain)
        if name not in taken and not _contains_any(name, earlier, shortest):
            taken.add(name)
            return name


def _contains_any(text: str, names: frozenset[str], shortest: int) -> bool:
    """Return True when one of `names`, none shorter than `shortest`, occurs in `text`."""
    return any(
        text[start:end] in names
        for start in range(len(text))
        for end in range(start + shortest, len(text) + 1)
    )


def _name(rng: random.Random, domain: str) -> str:
    area = rng.choice(_AREAS)
    brand = rng.choice(_BRAND_CHARS) + rng.choice(_BRAND_CHARS)
    branch = rng.randrange(1, 100)
    if domain == "餐馆":
        return f"{brand}{rng.choice(_RESTAURANT_KINDS)}({area}{branch}号店)"
    if domain == "酒店":
        return f"北京{brand}{rng.choice(_HOTEL_KINDS)}({area}{branch}号店)"
    return f"{area}{brand}{rng.choice(_ATTRACTION_KINDS)}{branch}号"


def _venue(
    rng: random.Random,
    domain: str,
    name: str,
    template: dict[str, Any],
    vocab: dict[str, list[str]],
    real_names: dict[str, list[str]],
) -> dict[str, Any]:
    """Build one record with the real domain's fields in the real order."""
    street = rng.choice(_STREET_CHARS) + rng.choice(_STREET_CHARS) + rng.choice(_STREET_ENDINGS)
    generated: dict[str, Any] = {
        "领域": domain,
        "名称": name,
        "地址": f"北京市{rng.choice(_DISTRICTS)}{street}{rng.randrange(1, 300)}号",
        "地铁": rng.choice(vocab["地铁"]),
        "电话": f"010-{rng.randrange(10**7, 10**8)}",
        "评分": round(rng.uniform(3.5, 5.0), 1),
        "门票": rng.choice(_TICKETS),
        "游玩时间": rng.choice(_VISIT_TIMES),
        "营业时间": rng.choice(_HOURS),
        "推荐菜": _sample(rng, vocab["推荐菜"], len(template.get("推荐菜") or [])),
        "人均消费": rng.randrange(15, 400),
        "酒店类型": rng.choice(_HOTEL_TYPES),
        "酒店设施": _sample(rng, vocab["酒店设施"], len(template.get("酒店设施") or [])),
        "价格": rng.randrange(150, 2500),
    }
    for field in _NEIGHBOUR_FIELDS:
        pool = real_names[_NEIGHBOUR_DOMAINS[field]]
        generated[field] = _sample(rng, pool, len(template.get(field) or []))
    return {key: generated[key] for key in template}


def _sample(rng: random.Random, pool: Sequence[str], count: int) -> list[str]:
    return rng.sample(pool, min(count, len(pool)))


class PerturbedEmbedder:
    """An Embedder whose passage vectors are noisy copies of real passage vectors.

    The passage's domain (its `领域: ...` line) picks the real vectors to copy from, and
    a CRC32 of the text seeds both the choice and the Gaussian noise, so the same text
    always gets the same vector. The noise scale makes the expected cosine between the
    copy and its source PAD_COSINE.
    """

    def __init__(self, name: str, real_vectors: dict[str, np.ndarray]) -> None:
        """Args:
        real_vectors: per domain, float32 array of shape (records, dim), L2-normalized.
        """
        self.name = f"{name} (perturbed)"
        self.dim = next(iter(real_vectors.values())).shape[1]
        self._real = real_vectors
        self._sigma = float(np.sqrt((1 / PAD_COSINE**2 - 1) / self.dim))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("padding vectors are for passages only")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = zlib.crc32(text.encode("utf-8"))
            rng = np.random.default_rng(seed)
            pool = self._real[_domain_of(text)]
            vector = pool[seed % len(pool)] + rng.normal(0.0, self._sigma, self.dim)
            vectors[row] = vector / np.linalg.norm(vector)
        return vectors


def _domain_of(text: str) -> str:
    match = re.search(r"^领域: (\S+)$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"padding passage has no '领域: ...' line: {text[:60]!r}")
    return match.group(1)
