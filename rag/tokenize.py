"""Chinese tokenization for BM25, keeping model numbers and SKUs whole.

jieba splits `AB-1299-X` on the hyphens and may split `256GB` into `256` and `GB`, which
makes a product code match every document that shares one of its pieces. A pre-tokenizer
therefore cuts Latin letter/digit runs (with inner `-`, `_`, `.`, `/`) out first, keeps
each as one lower-cased token, adds its compact form (`ab1299x`, so `AB1299X` finds
`AB-1299-X`), and hands only the Chinese runs to jieba.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jieba

from rag.types import SparseVector

logger = logging.getLogger(__name__)

# A Latin letter/digit run with inner joiners: AB-1299-X, Mate60, 5G, 256GB, USB-C, v2.1.
_CODE = re.compile(r"[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_JOINERS = re.compile(r"[-_./]")

# Function words and question words that carry no retrieval signal.
STOPWORDS: frozenset[str] = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 是 在 有 和 与 及 或 也 都 就 还 又 请问 请 问 一下 "
    "我 你 您 他 她 它 我们 你们 这 那 这个 那个 哪个 什么 怎么 怎样 如何 多少 几 "
    "可以 能 能不能 可不可以 要 想 会 给 把 被 让 对 为 从 到 吗 么 呢 个 些 "
    "a an the is are of to and or in on for what how".split()
)

# BM25 term-frequency saturation. avg_doc_tokens is fixed instead of measured per tenant so
# that a passage's vector never depends on what else was ingested; Qdrant's IDF modifier
# supplies the document-frequency half of BM25 at query time.
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class Bm25Options:
    """BM25 parameters for document vectors.

    Attributes:
        k1: term-frequency saturation, > 0.
        b: length normalization, 0 to 1.
        avg_doc_tokens: assumed average passage length in tokens, > 0.
    """

    k1: float = BM25_K1
    b: float = BM25_B
    avg_doc_tokens: float = 40.0

    def __post_init__(self) -> None:
        if self.k1 <= 0:
            raise ValueError(f"k1 must be > 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"b must be within 0..1, got {self.b}")
        if self.avg_doc_tokens <= 0:
            raise ValueError(f"avg_doc_tokens must be > 0, got {self.avg_doc_tokens}")


class Tokenizer:
    """jieba-based tokenizer with a code-preserving pre-tokenizer and user words.

    One instance is shared by the whole process: jieba's dictionary takes about a second
    and tens of MB to load. User words from every tenant go into the same dictionary.
    """

    def __init__(self, options: Bm25Options | None = None) -> None:
        self.options = options or Bm25Options()
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._initialized = False
        jieba.setLogLevel(logging.WARNING)

    def _ensure_initialized(self) -> None:
        if self._initialized:
            return
        with self._lock:
            if not self._initialized:
                self._jieba.initialize()
                self._initialized = True

    def add_words(self, words: Iterable[str]) -> int:
        """Add product words so jieba keeps them whole; return how many were added.

        Passages indexed before the words were added keep their old tokens until they are
        ingested again.
        """
        self._ensure_initialized()
        added = 0
        with self._lock:
            for word in words:
                word = word.strip()
                if word and not _CODE.fullmatch(word):
                    self._jieba.add_word(word, freq=None)
                    added += 1
        return added

    def load_user_dict(self, path: Path) -> int:
        """Add the words of a user dictionary file (one word per line, jieba's format:
        `word [frequency] [tag]`); return how many were added."""
        words = []
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                words.append(parts[0])
        added = self.add_words(words)
        logger.info("loaded %d user words from %s", added, path)
        return added

    def tokens(self, text: str) -> list[str]:
        """Split text into index terms: lower-cased codes, their compact forms, and jieba
        search-mode words, stopwords removed."""
        self._ensure_initialized()
        terms: list[str] = []
        position = 0
        for match in _CODE.finditer(text):
            terms.extend(self._chinese_terms(text[position : match.start()]))
            terms.extend(_code_terms(match.group()))
            position = match.end()
        terms.extend(self._chinese_terms(text[position:]))
        return terms

    def _chinese_terms(self, text: str) -> list[str]:
        terms = []
        for run in _CJK.findall(text):
            for word in self._jieba.cut_for_search(run, HMM=True):
                if word not in STOPWORDS:
                    terms.append(word)
        return terms

    def document_vector(self, text: str, title: str = "", title_boost: float = 2.0) -> SparseVector:
        """Return the BM25 term-frequency vector of a passage.

        The title's terms are scored apart from the body and added with `title_boost`, as
        in BM25F: a record whose body lists many other venues still matches its own name
        strongly, because the long body does not dilute the title.
        """
        weights = self._saturated(Counter(self.tokens(text)))
        if title:
            for term, weight in self._saturated(Counter(self.tokens(title))).items():
                weights[term] = weights.get(term, 0.0) + title_boost * weight
        return _to_sparse(weights)

    def _saturated(self, counts: Counter) -> dict[int, float]:
        length = sum(counts.values())
        opts = self.options
        norm = opts.k1 * (1 - opts.b + opts.b * length / opts.avg_doc_tokens)
        return {term_id(term): tf * (opts.k1 + 1) / (tf + norm) for term, tf in counts.items()}

    def query_vector(self, text: str) -> SparseVector:
        """Return the query vector: weight 1 per distinct term (IDF is applied by Qdrant)."""
        weights = {term_id(term): 1.0 for term in set(self.tokens(text))}
        return _to_sparse(weights)


def _code_terms(code: str) -> list[str]:
    lowered = code.lower()
    compact = _JOINERS.sub("", lowered)
    if compact != lowered:
        return [lowered, compact]
    return [lowered]


def term_id(term: str) -> int:
    """Map a term to a sparse-vector index: CRC32, which is stable across processes and
    Python versions (unlike `hash`)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def _to_sparse(weights: dict[int, float]) -> SparseVector:
    indices = sorted(weights)
    return SparseVector(tuple(indices), tuple(float(weights[i]) for i in indices))
