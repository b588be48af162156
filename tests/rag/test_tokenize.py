"""Tokenizer: codes stay whole, user words, BM25 vectors."""

from __future__ import annotations

import pytest

from rag.tokenize import Bm25Options, Tokenizer, term_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AB-1299-X 多少钱", ["ab-1299-x", "ab1299x"]),
        ("华为Mate60发货了吗", ["mate60"]),
        ("支持5G吗", ["5g"]),
        ("256GB版本有货吗", ["256gb"]),
        ("USB-C接口", ["usb-c", "usbc"]),
    ],
)
def test_codes_stay_whole(tokenizer: Tokenizer, text: str, expected: list[str]) -> None:
    tokens = tokenizer.tokens(text)
    for token in expected:
        assert token in tokens
    assert "1299" not in tokens
    assert "ab" not in tokens


def test_compact_code_matches_hyphenated(tokenizer: Tokenizer) -> None:
    assert set(tokenizer.tokens("AB1299X")) & set(tokenizer.tokens("AB-1299-X"))


def test_stopwords_removed(tokenizer: Tokenizer) -> None:
    tokens = tokenizer.tokens("请问运费是多少呢")
    assert "运费" in tokens
    for word in ("请问", "是", "多少", "呢"):
        assert word not in tokens


def test_user_words_kept_whole() -> None:
    tokenizer = Tokenizer()
    assert "云帆耳机" not in tokenizer.tokens("云帆耳机怎么样")
    tokenizer.add_words(["云帆耳机"])
    assert "云帆耳机" in tokenizer.tokens("云帆耳机怎么样")


def test_user_dict_file(tmp_path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# product words\n极光蓝 10 n\n星河灰\n", encoding="utf-8")
    tokenizer = Tokenizer()
    assert tokenizer.load_user_dict(path) == 2
    assert "极光蓝" in tokenizer.tokens("极光蓝还有货吗")


def test_query_vector_weights(tokenizer: Tokenizer) -> None:
    vector = tokenizer.query_vector("运费 运费 怎么算")
    assert set(vector.values) == {1.0}
    assert term_id("运费") in vector.indices
    assert list(vector.indices) == sorted(vector.indices)


def test_document_vector_saturates(tokenizer: Tokenizer) -> None:
    once = tokenizer.document_vector("运费")
    many = tokenizer.document_vector("运费 " * 50)
    weight_once = dict(zip(once.indices, once.values, strict=True))[term_id("运费")]
    weight_many = dict(zip(many.indices, many.values, strict=True))[term_id("运费")]
    assert weight_many > weight_once
    assert weight_many < Bm25Options().k1 + 1


def test_term_id_is_stable() -> None:
    assert term_id("运费") == term_id("运费")
    assert 0 <= term_id("ab-1299-x") < 2**31


def test_bm25_options_validated() -> None:
    with pytest.raises(ValueError, match="k1"):
        Bm25Options(k1=0)
    with pytest.raises(ValueError, match="b must"):
        Bm25Options(b=1.5)
