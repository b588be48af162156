"""Settings: index options from the environment and YAML, and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import load_settings
from server.errors import ConfigError


def test_index_defaults() -> None:
    settings = load_settings()

    assert settings.vector_index == "hnsw"
    assert settings.bm25_idf == "collection"
    assert settings.hnsw_ef == 128


def test_index_options_from_env_and_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kefu.yaml"
    config.write_text("vector_index: exact\nbm25_idf: collection\nhnsw_ef: 64\n", "utf-8")
    monkeypatch.setenv("KEFU_BM25_IDF", "tenant")

    settings = load_settings(config)

    assert settings.vector_index == "exact"
    assert settings.bm25_idf == "tenant"
    assert settings.hnsw_ef == 64


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("KEFU_VECTOR_INDEX", "ivf", "vector_index='ivf'"),
        ("KEFU_BM25_IDF", "global", "bm25_idf='global'"),
        ("KEFU_HNSW_EF", "0", "hnsw_ef='0'"),
    ],
)
def test_invalid_index_option_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert named in str(caught.value)
