"""KnowledgeBase over the embedded store: idempotent ingest, retrieval, crash safety."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag.answer import CALIBRATIONS, AnswerRequest, ExtractiveEngine
from rag.knowledge import KnowledgeBase, point_id
from rag.store_edge import EdgeStore
from server.errors import InvalidArgumentError, NotFoundError
from tests.conftest import REPO, SAMPLES, shared_data
from tests.rag.helpers import crosswoz_records


@pytest.fixture
def kb(tmp_path, embedder, tokenizer):
    store = EdgeStore(tmp_path / "store", dense_dim=embedder.dim)
    yield KnowledgeBase(store, embedder, tokenizer)
    store.close()


def write_faq(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["id,question,answer"] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


FAQ_ROWS = [
    ("F1", "运费怎么算", "满99元包邮"),
    ("F2", "多久发货", "付款后24小时内发货"),
    ("F3", "可以开发票吗", "可以开电子发票"),
]


def test_reingest_is_idempotent(kb, tmp_path) -> None:
    path = write_faq(tmp_path / "faq.csv", FAQ_ROWS)
    first = kb.ingest_file("t", path)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)

    again = kb.ingest_file("t", path)
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 3, 0)


def test_reingest_updates_in_place_and_deletes_removed_rows(kb, tmp_path) -> None:
    path = write_faq(tmp_path / "faq.csv", FAQ_ROWS)
    kb.ingest_file("t", path)

    changed = [("F1", "运费怎么算", "全场包邮"), FAQ_ROWS[1]]
    report = kb.ingest_file("t", write_faq(path, changed))
    assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 1, 1, 1)
    assert kb.stats("t")["faq"] == 2
    hit = kb.search("t", "运费怎么算").hits[0]
    assert hit.answer == "全场包邮"
    assert hit.id == point_id("t", "faq.csv", "faq", "F1")


def test_delete_by_doc_id_and_source(kb, tmp_path) -> None:
    kb.ingest_file("t", write_faq(tmp_path / "faq.csv", FAQ_ROWS))
    assert kb.delete("t", doc_ids=["F2", "missing"]) == 1
    assert kb.delete("t", source="faq.csv") == 2
    assert kb.stats("t")["passages"] == 0
    with pytest.raises(InvalidArgumentError, match="doc_ids"):
        kb.delete("t")


class OptimizeCounter:
    """Forwards to an EdgeStore and counts optimize() calls."""

    def __init__(self, store: EdgeStore) -> None:
        self.inner = store
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def optimize(self) -> bool:
        self.calls += 1
        return self.inner.optimize()


def test_ingestion_builds_the_index(tmp_path, embedder, tokenizer) -> None:
    # A 1 KB threshold makes three 384-dimensional vectors worth an HNSW graph.
    edge = EdgeStore(tmp_path / "store", embedder.dim, indexing_threshold_kb=1)
    store = OptimizeCounter(edge)
    kb = KnowledgeBase(store, embedder, tokenizer)
    path = write_faq(tmp_path / "faq.csv", FAQ_ROWS)
    try:
        first = kb.ingest_file("t", path)
        after_first = store.calls
        unchanged = kb.ingest_file("t", path)
        after_unchanged = store.calls
        kb.delete("t", doc_ids=["missing"])
        after_no_delete = store.calls
        kb.delete("t", doc_ids=["F3"])
        hits = kb.search("t", "运费怎么算").hits
    finally:
        edge.close()

    assert first.index_s > 0
    # An unchanged ingestion asks too, and the store has nothing to build; a delete that
    # found nothing does not ask.
    assert (after_first, after_unchanged, after_no_delete, store.calls) == (1, 2, 2, 3)
    assert unchanged.index_s == 0
    assert [h.doc_id for h in hits] == ["F1", "F2"]


def test_unchanged_ingest_builds_after_switch_to_hnsw(tmp_path, embedder, tokenizer) -> None:
    path = write_faq(tmp_path / "faq.csv", FAQ_ROWS)
    folder = tmp_path / "store"
    with EdgeStore(folder, embedder.dim, vector_index="exact", indexing_threshold_kb=1) as exact:
        first = KnowledgeBase(exact, embedder, tokenizer).ingest_file("t", path)
    with EdgeStore(folder, embedder.dim, indexing_threshold_kb=1) as hnsw:
        kb = KnowledgeBase(hnsw, embedder, tokenizer)
        again = kb.ingest_file("t", path)
        hits = kb.search("t", "运费怎么算").hits

    assert first.index_s == 0
    assert again.unchanged == 3
    assert again.index_s > 0
    assert hits[0].doc_id == "F1"


def test_hybrid_hits_carry_their_cosine(kb, tmp_path) -> None:
    kb.ingest_file("t", write_faq(tmp_path / "faq.csv", FAQ_ROWS))

    dense = {h.id: h.score for h in kb.search("t", "发票", mode="dense", top_k=3).hits}
    hybrid = kb.search("t", "发票", top_k=3).hits
    sparse = kb.search("t", "发票", mode="sparse", top_k=3).hits

    assert {h.id: h.dense_similarity for h in hybrid} == pytest.approx(dense, abs=1e-5)
    assert all(h.dense_similarity is None for h in sparse)


def test_search_sku_and_traditional(kb) -> None:
    for path in sorted(SAMPLES.iterdir()):
        kb.ingest_file("shop", path)
    assert kb.search("shop", "AB-1299-X").hits[0].doc_id == "云帆AB-1299-X无线降噪耳机"
    assert kb.search("shop", "ab1299x 续航").hits[0].doc_id == "云帆AB-1299-X无线降噪耳机"
    assert kb.search("shop", "AB-899").hits[0].doc_id == "云帆AB-899无线耳机"
    assert kb.search("shop", "Mate60 手机壳").hits[0].doc_id == "云帆Mate60手机壳"
    assert kb.search("shop", "5G随身WiFi有货吗").hits[0].doc_id == "云帆5G随身WiFi"
    assert kb.search("shop", "256GB U盘").hits[0].doc_id == "云帆256GB高速U盘"
    assert kb.search("shop", "退款多久到賬").hits[0].doc_id == "FAQ-010"
    assert kb.search("shop", "忘記密碼怎麼辦").hits[0].doc_id == "FAQ-017"


def test_search_modes_and_limits(kb, tmp_path) -> None:
    kb.ingest_file("t", write_faq(tmp_path / "faq.csv", FAQ_ROWS))
    for mode in ("hybrid", "dense", "sparse"):
        assert kb.search("t", "运费怎么算", mode=mode).hits[0].doc_id == "F1"
    with pytest.raises(InvalidArgumentError, match="mode"):
        kb.search("t", "运费", mode="fuzzy")
    with pytest.raises(InvalidArgumentError, match="top_k"):
        kb.search("t", "运费", top_k=0)
    with pytest.raises(InvalidArgumentError, match="query"):
        kb.search("t", " \u3000 ")


def test_tenant_isolation(kb, tmp_path) -> None:
    kb.ingest_file("a", write_faq(tmp_path / "faq.csv", FAQ_ROWS))
    kb.ingest_file("b", write_faq(tmp_path / "other.csv", [("B1", "会员积分怎么用", "抵现")]))
    assert {h.doc_id for h in kb.search("b", "运费怎么算", top_k=10).hits} == {"B1"}
    assert kb.delete("b", doc_ids=["F1"]) == 0
    assert kb.stats("a")["faq"] == 3
    with pytest.raises(NotFoundError, match="kefu ingest"):
        kb.search("nobody", "运费")


def test_crosswoz_record_answers_phone(kb, tmp_path, tokenizer) -> None:
    records = crosswoz_records(shared_data("crosswoz-db") / "attraction_db.json")
    # A slice keeps embedding time short; the benchmark uses every record.
    wanted = [r for r in records if r["名称"] == "北京自然博物馆"]
    path = tmp_path / "attractions.json"
    path.write_text(json.dumps(records[:40] + wanted, ensure_ascii=False), encoding="utf-8")
    kb.ingest_file("bj", path)

    question = "北京自然博物馆电话是多少？"
    retrieval = kb.search("bj", question)
    assert retrieval.hits[0].doc_id == "北京自然博物馆"
    engine = ExtractiveEngine(tokenizer, CALIBRATIONS["e5-small"])
    final = engine.answer(AnswerRequest(question, retrieval, "zh-CN"))
    assert final.text == f"北京自然博物馆的电话是{wanted[0]['电话']}。"
    assert final.citations[0].doc_id == "北京自然博物馆"
    assert not final.handoff


INGEST_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rag.embed import create_embedder
    from rag.knowledge import KnowledgeBase
    from rag.store_edge import EdgeStore
    from rag.tokenize import Tokenizer

    embedder = create_embedder("use-multilingual")
    store = EdgeStore(Path(sys.argv[1]), dense_dim=embedder.dim)
    kb = KnowledgeBase(store, embedder, Tokenizer())

    def progress(done, total):
        print(f"progress {done} {total}", flush=True)

    kb.ingest_file("t", Path(sys.argv[2]), progress=progress)
    print("finished", flush=True)
    """
)


def test_kill_mid_ingest_leaves_index_usable(tmp_path, tokenizer) -> None:
    from rag.embed import create_embedder

    rows = [(f"Q{i}", f"第{i}号商品怎么退货", f"第{i}号商品请在七天内申请退货") for i in range(600)]
    faq = write_faq(tmp_path / "faq.csv", rows)
    store_dir = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, "-c", INGEST_SCRIPT, str(store_dir), str(faq)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("progress") and int(line.split()[1]) >= 64:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    embedder = create_embedder("use-multilingual")
    deadline = time.monotonic() + 10
    while True:  # the kernel releases the dead process's lock file shortly after exit
        try:
            store = EdgeStore(store_dir, dense_dim=embedder.dim)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    kb = KnowledgeBase(store, embedder, tokenizer)
    try:
        partial = kb.stats("t")["faq"]
        assert 64 <= partial < 600
        assert kb.search("t", "第3号商品怎么退货").hits[0].doc_id == "Q3"

        report = kb.ingest_file("t", faq)
        assert report.unchanged == partial
        assert report.added == 600 - partial
        assert kb.stats("t")["faq"] == 600
    finally:
        store.close()
