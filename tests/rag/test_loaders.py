"""Tests for rag.loaders: every format, the Chinese column names and every bad input."""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from rag.loaders import ACCEPTED_EXTENSIONS, chunk_document, faq_doc_id, load_file
from rag.types import SourceItem
from server.errors import InvalidArgumentError, NotFoundError
from tests.rag.helpers import CROSSWOZ_DB, CROSSWOZ_MISSING, write_crosswoz_json


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "FAQ"
    for row in rows:
        sheet.append(row)
    workbook.create_sheet("Ignored").append(["question", "answer"])
    path = tmp_path / name
    workbook.save(path)
    return path


# --- CSV ---


def test_csv_english_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "faq.csv",
        "question,answer,category,id\n运费怎么算？,按重量计算。,物流,F-1\n怎么退货？,七天内申请。,售后,\n",
    )

    result = load_file(path)

    assert result.skipped == []
    first, second = result.items
    assert first == SourceItem(
        kind="faq",
        doc_id="F-1",
        title="运费怎么算？",
        text="运费怎么算？\n按重量计算。",
        source="faq.csv",
        row=2,
        category="物流",
        question="运费怎么算？",
        answer="按重量计算。",
    )
    assert second.row == 3
    assert second.doc_id == faq_doc_id("怎么退货？")
    assert second.doc_id.startswith("faq-")


@pytest.mark.parametrize(
    ("header", "has_id"),
    [
        ("问题,答案,编号,分类", True),
        ("标准问题,回答,faq_id,类别", True),
        ("Question,ANSWER", False),
        ("q,a", False),
        (" 问题 , 答案 ", False),
    ],
)
def test_csv_column_aliases(tmp_path: Path, header: str, has_id: bool) -> None:
    row = "运费怎么算,按重量,7,物流" if has_id else "运费怎么算,按重量"
    path = write(tmp_path, "faq.csv", f"{header}\n{row}\n")

    (item,) = load_file(path).items

    assert item.question == "运费怎么算"
    assert item.answer == "按重量"
    if has_id:
        assert item.doc_id == "7"
        assert item.category == "物流"


def test_csv_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "\ufeff问题,答案\n运费怎么算,按重量\n")

    (item,) = load_file(path).items

    assert item.question == "运费怎么算"


def test_csv_gb18030_fallback_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "faq.csv", "问题,答案\n運費怎麼算,按重量计算\n", encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")

    with caplog.at_level(logging.INFO, logger="rag.loaders"):
        (item,) = load_file(path).items

    assert item.question == "運費怎麼算"
    assert item.answer == "按重量计算"
    assert "faq.csv is not valid UTF-8; decoded it as GB18030" in caplog.text


def test_csv_neither_utf8_nor_gb18030(tmp_path: Path) -> None:
    header = "问题,答案\n".encode()
    path = tmp_path / "faq.csv"
    path.write_bytes(header + b"\xff\xfe\xff,x\n")

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(path)

    message = str(caught.value)
    assert caught.value.field == "faq.csv:2"
    assert f"at byte {len(header)} (line 2)" in message
    assert "GB18030" in message


def test_csv_missing_answer_column(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "问题,回复内容\n运费怎么算,按重量\n")

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(path)

    message = str(caught.value)
    assert caught.value.field == "faq.csv"
    assert "missing the answer column" in message
    assert "'回复内容'" in message
    assert "答案" in message
    assert "标准问题" in message


def test_csv_missing_both_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "标题,内容\n运费,按重量\n")

    with pytest.raises(InvalidArgumentError, match="missing the question and answer column"):
        load_file(path)


def test_csv_multiline_cell_row_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", '问题,答案\n怎么退货,"第一步\n第二步"\n运费怎么算,按重量\n')

    first, second = load_file(path).items

    assert first.answer == "第一步\n第二步"
    assert first.row == 2
    assert second.row == 4


def test_csv_unclosed_quote_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", '问题,答案\n"好"坏,x\n运费怎么算,按重量\n')

    result = load_file(path)

    assert [item.row for item in result.items] == [3]
    (skipped,) = result.skipped
    assert skipped.file == "faq.csv"
    assert skipped.row == 2
    assert skipped.reason.startswith("invalid CSV")


def test_csv_tab_delimited(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "问题\t答案\n运费怎么算\t按重量,或体积\n")

    (item,) = load_file(path).items

    assert item.answer == "按重量,或体积"


def test_csv_blank_rows_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "\n问题,答案\n\n,\n运费怎么算,按重量\n")

    result = load_file(path)

    assert [item.row for item in result.items] == [5]
    assert result.skipped == []


def test_csv_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", "问题,答案\n")

    result = load_file(path)

    assert result.items == []
    assert [row.reason for row in result.skipped] == ["no data rows"]


# --- XLSX ---


def test_xlsx_rows_and_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        "faq.xlsx",
        [
            ["编号", "问题", "答案", "分类"],
            [12, "型号AB-1299多少钱", 1299, "价格"],
            [None, None, None, None],
            [None, "运费怎么算", "按重量", None],
        ],
    )

    result = load_file(path)

    assert result.skipped == []
    first, second = result.items
    assert (first.doc_id, first.question, first.answer, first.category, first.row) == (
        "12",
        "型号AB-1299多少钱",
        "1299",
        "价格",
        2,
    )
    assert second.row == 4
    assert second.doc_id == faq_doc_id("运费怎么算")


def test_xlsx_missing_question_column(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, "faq.xlsx", [["标题", "答案"], ["运费", "按重量"]])

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(path)

    message = str(caught.value)
    assert "faq.xlsx" in message
    assert "missing the question column" in message
    assert "'标题'" in message


def test_xlsx_header_not_in_first_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, "faq.xlsx", [[None, None], ["问题", "答案"], ["运费", "按重量"]])

    with pytest.raises(InvalidArgumentError, match="first row"):
        load_file(path)


def test_xlsx_empty_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, "faq.xlsx", [])

    result = load_file(path)

    assert result.items == []
    (skipped,) = result.skipped
    assert skipped.reason == "the first sheet 'FAQ' is empty"


def test_xlsx_header_only(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, "faq.xlsx", [["问题", "答案"]])

    result = load_file(path)

    assert [row.reason for row in result.skipped] == ["no data rows"]


def _replace_member(workbook: bytes, member_name: str, edit: Callable[[bytes], bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(workbook)) as source,
        zipfile.ZipFile(buffer, "w") as target,
    ):
        for member in source.infolist():
            data = source.read(member)
            target.writestr(member, edit(data) if member.filename == member_name else data)
    return buffer.getvalue()


def test_xlsx_wrong_dimension_reads_all_rows(tmp_path: Path) -> None:
    rows = [
        ["问题", "答案", "分类"],
        ["运费怎么算", "按重量", "物流"],
        ["怎么退货", "七天内", "售后"],
    ]
    good = write_xlsx(tmp_path, "good.xlsx", rows).read_bytes()
    content = _replace_member(
        good,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', xml),
    )

    items = load_file(Path("faq.xlsx"), content=content).items

    assert [(item.question, item.category, item.row) for item in items] == [
        ("运费怎么算", "物流", 2),
        ("怎么退货", "售后", 3),
    ]


def _zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    return buffer.getvalue()


def _xlsx_with_broken_sheet(tmp_path: Path) -> bytes:
    good = write_xlsx(tmp_path, "good.xlsx", [["问题", "答案"], ["运费", "按重量"]]).read_bytes()
    return _replace_member(good, "xl/worksheets/sheet1.xml", lambda _: b"<not xml")


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "zip without workbook", "xml"])
def test_xlsx_corrupt(tmp_path: Path, damage: str) -> None:
    good = write_xlsx(tmp_path, "good.xlsx", [["问题", "答案"], ["运费", "按重量"]]).read_bytes()
    content = {
        "random bytes": b"\x00\x01 this is not a workbook " * 8,
        "truncated": good[: len(good) // 2],
        "zip without workbook": _zip_without_workbook(),
        "xml": _xlsx_with_broken_sheet(tmp_path),
    }[damage]

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(Path("faq.xlsx"), content=content)

    assert caught.value.field == "path"
    assert caught.value.value == "faq.xlsx"
    assert "not a readable .xlsx workbook" in str(caught.value)


# --- JSON Lines ---


def test_jsonl_faq_and_records(tmp_path: Path) -> None:
    lines = [
        {"问题": "运费怎么算", "答案": "按重量", "分类": "物流"},
        {"Question": "怎么退货", "A": "七天内", "id": 9},
        {"name": "AB-1299", "type": "手机", "价格": 1299},
    ]
    path = write(tmp_path, "kb.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines))

    result = load_file(path)

    assert result.skipped == []
    faq, faq_with_id, record = result.items
    assert (faq.kind, faq.question, faq.answer, faq.category, faq.row) == (
        "faq",
        "运费怎么算",
        "按重量",
        "物流",
        1,
    )
    assert faq_with_id.doc_id == "9"
    assert (record.kind, record.doc_id, record.category, record.row) == (
        "record",
        "AB-1299",
        "手机",
        3,
    )


def test_jsonl_bad_lines_are_skipped(tmp_path: Path) -> None:
    text = (
        '{"question": "运费怎么算", "answer": "按重量"}\n'
        "\n"
        '{"question": "缺逗号" "answer": "x"}\n'
        '["an", "array"]\n'
        '"a string"\n'
        '{"question": ["list"], "answer": "x"}\n'
        '{"question": "怎么退货", "answer": "七天内"}\n'
    )
    path = write(tmp_path, "faq.jsonl", text)

    result = load_file(path)

    assert [item.row for item in result.items] == [1, 7]
    reasons = {row.row: row.reason for row in result.skipped}
    assert set(reasons) == {3, 4, 5, 6}
    assert reasons[3].startswith("invalid JSON at column")
    assert "Expecting ',' delimiter" in reasons[3]
    assert reasons[4] == "row is a JSON array, expected an object"
    assert reasons[5] == "row is a JSON string, expected an object"
    assert reasons[6] == "'question' must be text or a number, not a JSON array"
    assert all(row.file == "faq.jsonl" for row in result.skipped)


def test_jsonl_line_separator_inside_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "faq.jsonl",
        '{"q": "运费\u2028怎么算", "a": "按重量"}\n{"q": "退货", "a": "七天"}\n',
    )

    result = load_file(path)

    assert [item.row for item in result.items] == [1, 2]


# --- JSON records ---


def test_json_records_fields_and_text(tmp_path: Path) -> None:
    records = [
        {
            "名称": "北京自然博物馆",
            "类型": "景点",
            "电话": "010-67024431",
            "门票": 0,
            "评分": 4.6,
            "周边景点": ["天坛", "前门大街"],
            "停车": True,
            "备注": None,
        }
    ]
    path = write(tmp_path, "venues.json", json.dumps(records, ensure_ascii=False))

    (item,) = load_file(path).items

    assert item.kind == "record"
    assert item.doc_id == "北京自然博物馆"
    assert item.title == "北京自然博物馆"
    assert item.category == "景点"
    assert item.fields == {
        "电话": "010-67024431",
        "门票": 0,
        "评分": 4.6,
        "周边景点": ["天坛", "前门大街"],
        "停车": True,
        "备注": None,
    }
    assert item.text.splitlines() == [
        "北京自然博物馆",
        "类型: 景点",
        "电话: 010-67024431",
        "门票: 0",
        "评分: 4.6",
        "周边景点: 天坛、前门大街",
        "停车: true",
    ]


@pytest.mark.parametrize("list_key", ["records", "items", "data", "Data"])
def test_json_list_under_key(tmp_path: Path, list_key: str) -> None:
    document = {"version": 2, list_key: [{"title": "A"}, {"title": "B"}]}
    text = json.dumps(document, indent=2).replace("},", "},\n")
    path = write(tmp_path, "kb.json", text)

    result = load_file(path)

    assert [(item.title, item.row) for item in result.items] == [("A", 4), ("B", 8)]


def test_json_row_is_line_of_object(tmp_path: Path) -> None:
    text = '[\n  {"name": "A"},\n  7,\n  {\n    "name": "B"\n  }\n]\n'
    path = write(tmp_path, "kb.json", text)

    result = load_file(path)

    assert [(item.title, item.row) for item in result.items] == [("A", 2), ("B", 4)]
    (skipped,) = result.skipped
    assert (skipped.row, skipped.reason) == (3, "row is a JSON number, expected an object")


def test_json_title_key_order_and_case(tmp_path: Path) -> None:
    records = [{"标题": "T", "Name": "N"}, {"TITLE": "only title"}]
    path = write(tmp_path, "kb.json", json.dumps(records, ensure_ascii=False))

    first, second = load_file(path).items

    assert first.title == "N"
    assert first.fields == {"标题": "T"}
    assert second.title == "only title"


def test_json_title_field_option(tmp_path: Path) -> None:
    records = [{"sku": "AB-1299", "name": "手机"}, {"name": "没有 sku"}]
    path = write(tmp_path, "kb.json", json.dumps(records, ensure_ascii=False))

    result = load_file(path, title_field="sku")

    (item,) = result.items
    assert item.doc_id == "AB-1299"
    assert item.fields == {"name": "手机"}
    (skipped,) = result.skipped
    assert skipped.row == 1
    assert skipped.reason == "missing the title field 'sku'"


def test_json_record_without_title(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.json", '[{"电话": "010-1"}, {"name": ""}, {"name": {"x": 1}}]')

    result = load_file(path)

    assert result.items == []
    first, second, third = (row.reason for row in result.skipped)
    assert "missing a title field" in first
    assert "name, title, 名称, 标题" in first
    assert second == "empty title field 'name'"
    assert third == "title field 'name' must be text, not a JSON object"


def test_json_invalid_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.json", '[\n  {"name": "A"},\n  {"name": }\n]')

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(path)

    assert caught.value.field == "kb.json:3"
    assert "invalid JSON at line 3 column" in str(caught.value)


@pytest.mark.parametrize("text", ['{"name": "A"}', '"text"', '{"records": {"name": "A"}}'])
def test_json_without_record_list(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "kb.json", text)

    with pytest.raises(InvalidArgumentError, match="records, items, data"):
        load_file(path)


def test_json_empty_list(tmp_path: Path) -> None:
    path = write(tmp_path, "kb.json", "[]")

    result = load_file(path)

    assert [row.reason for row in result.skipped] == ["no records"]


@pytest.mark.skipif(not CROSSWOZ_DB.is_dir(), reason=CROSSWOZ_MISSING)
def test_crosswoz_attractions(tmp_path: Path) -> None:
    path = write_crosswoz_json("attraction_db.json", tmp_path)

    result = load_file(path)

    assert result.skipped == []
    assert len(result.items) == 465
    by_title = {item.title: item for item in result.items}
    museum = by_title["北京自然博物馆"]
    assert museum.kind == "record"
    assert museum.doc_id == "北京自然博物馆"
    assert museum.fields["电话"] == "010-67024431"
    assert museum.fields["门票"] == 0
    assert "电话: 010-67024431" in museum.text.splitlines()
    assert "周边景点: 天坛、前门大街、天安门广场、中国国家博物馆、故宫" in museum.text.splitlines()


# --- documents ---


def test_markdown_headings_and_sentences(tmp_path: Path) -> None:
    text = (
        "欢迎光临本店。\n"
        "# 退货政策\n"
        "七天无理由退货。请保留包装！\n"
        "## 运费\n"
        "\n"
        "运费由买家承担；质量问题除外。\n"
        "### 偏远地区 ###\n"
        "新疆、西藏另计。\n"
        "# 发票\n"
        "```\n"
        "# 这是代码注释\n"
        "```\n"
        "---\n"
        "电子发票随货发送。\n"
    )
    path = write(tmp_path, "policy.md", text)

    items = load_file(path).items

    assert [(item.title, item.text, item.row) for item in items] == [
        ("policy.md", "欢迎光临本店。", 1),
        ("退货政策", "七天无理由退货。请保留包装！", 3),
        ("退货政策 > 运费", "运费由买家承担；质量问题除外。", 6),
        ("退货政策 > 运费 > 偏远地区", "新疆、西藏另计。", 8),
        ("发票", "# 这是代码注释\n电子发票随货发送。", 11),
    ]
    assert [item.doc_id for item in items] == [f"policy.md#{n}" for n in range(1, 6)]
    assert all(item.kind == "doc" and item.source == "policy.md" for item in items)


def test_chunker_packs_whole_sentences() -> None:
    sentences = ["第一句话。", "第二句话！", "第三句话？", "第四句话；", "第五句话"]
    text = "".join(sentences)

    chunks = chunk_document(text, "a.txt", max_chars=12)

    assert [chunk.text for chunk in chunks] == [
        "第一句话。第二句话！",
        "第三句话？第四句话；",
        "第五句话",
    ]
    assert all(len(chunk.text) <= 12 for chunk in chunks)
    assert all(chunk.row == 1 for chunk in chunks)


def test_chunker_joins_lines_with_newline() -> None:
    chunks = chunk_document("第一行\n第二行\n第三行很长很长", "a.txt", max_chars=8)

    assert [(chunk.text, chunk.row) for chunk in chunks] == [
        ("第一行\n第二行", 1),
        ("第三行很长很长", 3),
    ]


def test_chunker_cuts_long_sentence() -> None:
    text = "短句。" + "长" * 25 + "。结尾。"

    chunks = chunk_document(text, "a.txt", max_chars=10)

    assert [chunk.text for chunk in chunks] == [
        "短句。",
        "长" * 10,
        "长" * 10,
        "长" * 5 + "。结尾。",
    ]


def test_chunker_keeps_closing_quote_with_sentence() -> None:
    chunks = chunk_document("客服说：“请稍等。”然后挂断了。", "a.txt", max_chars=10)

    assert [chunk.text for chunk in chunks] == ["客服说：“请稍等。”", "然后挂断了。"]


def test_txt_uses_same_chunker(tmp_path: Path) -> None:
    path = write(tmp_path, "NOTES.TXT", "# 营业时间\n每天九点到晚上九点。\n")

    (item,) = load_file(path).items

    assert (item.title, item.text, item.doc_id) == (
        "营业时间",
        "每天九点到晚上九点。",
        "NOTES.TXT#1",
    )


def test_markdown_max_chunk_chars_option(tmp_path: Path) -> None:
    path = write(tmp_path, "a.markdown", "一二三。四五六。")

    items = load_file(path, max_chunk_chars=4).items

    assert [item.text for item in items] == ["一二三。", "四五六。"]


def test_markdown_only_headings(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "# 标题\n## 小标题\n")

    result = load_file(path)

    assert [row.reason for row in result.skipped] == ["no text outside headings"]


# --- file-level cases ---


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.md"
    path.write_bytes("# 标题\n正文\n".encode() + b"bad \xc3\x28 byte\n")

    with pytest.raises(InvalidArgumentError) as caught:
        load_file(path)

    offset = len("# 标题\n正文\n".encode()) + len(b"bad ")
    assert caught.value.field == "policy.md:3"
    assert f"at byte {offset} (line 3)" in str(caught.value)
    assert "save it as UTF-8" in str(caught.value)


def test_invalid_utf8_offset_after_bom(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_bytes(b"\xef\xbb\xbf{}\n\xff")

    with pytest.raises(InvalidArgumentError, match="at byte 6 \\(line 2\\)"):
        load_file(path)


def test_utf16_file_gets_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.jsonl", '\ufeff{"q": "运费", "a": "按重量"}', encoding="utf-16-le")

    with pytest.raises(InvalidArgumentError, match="UTF-16 byte-order mark"):
        load_file(path)


@pytest.mark.parametrize("name", ["faq.csv", "faq.xlsx", "kb.json", "kb.jsonl", "a.md", "a.txt"])
@pytest.mark.parametrize("content", [b"", b"  \n\n", b"\xef\xbb\xbf\n"])
def test_empty_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    result = load_file(path)

    assert result.items == []
    (skipped,) = result.skipped
    assert (skipped.file, skipped.row, skipped.reason) == (name, None, "empty file")


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load_file(tmp_path / "faq.xls")

    assert caught.value.field == "path"
    assert caught.value.value == "faq.xls"
    for extension in ACCEPTED_EXTENSIONS:
        assert extension in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="file not found"):
        load_file(tmp_path / "absent.csv")


def test_content_and_source_name() -> None:
    content = "问题,答案\n运费怎么算,按重量\n".encode()

    result = load_file(Path("/uploads/tmp123/FAQ.CSV"), content=content, source_name="客服FAQ.csv")

    (item,) = result.items
    assert item.source == "客服FAQ.csv"


def test_source_defaults_to_file_name(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", "faq.jsonl", '{"q": "运费怎么算", "a": "按重量"}\n{"x": 1}\n')

    result = load_file(path)

    assert result.items[0].source == "faq.jsonl"
    assert result.skipped[0].file == "faq.jsonl"


def test_max_chunk_chars_below_one() -> None:
    with pytest.raises(InvalidArgumentError, match="max_chunk_chars"):
        load_file(Path("a.md"), content=b"text", max_chunk_chars=0)


def test_faq_doc_id_stable_across_loads(tmp_path: Path) -> None:
    first = write(tmp_path, "a.csv", "问题,答案\n运费怎么算？,按重量\n")
    second = write(tmp_path, "b.csv", "问题,答案\n新问题,新答案\n運費 怎麼算?,按体积\n")

    first_id = load_file(first).items[0].doc_id
    again_id = load_file(first).items[0].doc_id
    variant_id = load_file(second).items[1].doc_id

    assert first_id == again_id
    assert first_id == variant_id
    assert first_id != load_file(second).items[0].doc_id
