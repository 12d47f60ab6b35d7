"""No row is silently corrupted: TSV is read without quoting, a duplicated column is an error, and every
unreadable file names its place (``file:line`` for a bad byte, "is a folder" for a folder). (Issue 12's
probe, "data silently corrupted" group.)"""

from __future__ import annotations

import pytest

from harness.data.conll import read_conll
from harness.data.files import read_rows, text_classification
from harness.data.lm import read_lines
from harness.errors import DataError

READERS = {"tsv": lambda p: read_rows(p), "conll": lambda p: read_conll(p), "lm": lambda p: read_lines(p)}
SUFFIX = {"tsv": ".tsv", "conll": ".txt", "lm": ".txt"}
GOOD = {"tsv": "text\tlabel\ngood film\tpos\n", "conll": "EU B-ORG\nrejects O\n\n", "lm": "the cat sat\n"}


def test_a_tsv_field_that_starts_with_a_quote_stays_one_row(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('text\tlabel\n"quoted start of a review\tpos\nplain review\tneg\n"another\tpos\nlast one\tneg\n')
    rows = read_rows(path)
    assert [r["text"] for _, r in rows] == ['"quoted start of a review', "plain review", '"another', "last one"]
    assert [line for line, _ in rows] == [2, 3, 4, 5]


def test_csv_keeps_its_quoting(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"a, b and c",pos\n"say ""hi""",neg\n')
    assert [r["text"] for _, r in read_rows(path)] == ["a, b and c", 'say "hi"']


@pytest.mark.parametrize("suffix, header", [(".tsv", "text\tlabel\ttext"), (".csv", "text,label,label")])
def test_a_column_named_twice_is_an_error(tmp_path, suffix, header):
    path = tmp_path / f"train{suffix}"
    sep = "\t" if suffix == ".tsv" else ","
    path.write_text(header + "\n" + sep.join(["a", "b", "c"]) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: the header names column '(text|label)' more than once"):
        read_rows(path)


def test_a_row_with_a_missing_field_names_its_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\ngood\tpos\nno label here\n")
    with pytest.raises(DataError, match=rf"{path}:3: expected 2 fields \(text, label\), got 1"):
        read_rows(path)


@pytest.mark.parametrize("reader", list(READERS))
def test_a_byte_that_is_not_utf8_names_file_and_line(tmp_path, reader):
    path = tmp_path / f"data{SUFFIX[reader]}"
    bad = {"tsv": b"b\xffd\tpos\n", "conll": b"b\xffd O\n", "lm": b"a b\xffd line\n"}[reader]
    path.write_bytes(GOOD[reader].encode() + bad)
    line = GOOD[reader].count("\n") + 1
    with pytest.raises(DataError, match=rf"^{path}:{line}: not UTF-8 text"):
        READERS[reader](path)


@pytest.mark.parametrize("reader", list(READERS))
def test_a_folder_where_a_file_is_expected_says_so(tmp_path, reader):
    folder = tmp_path / f"data{SUFFIX[reader]}"
    folder.mkdir()
    with pytest.raises(DataError, match=rf"^{folder}: is a folder, not a data file"):
        READERS[reader](folder)


@pytest.mark.parametrize("reader", list(READERS))
def test_a_missing_file_says_so(tmp_path, reader):
    with pytest.raises(DataError, match="data file not found"):
        READERS[reader](tmp_path / f"missing{SUFFIX[reader]}")


def test_bad_json_lines_name_their_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match=rf"{path}:3: not valid JSON"):
        read_rows(path)


def test_a_label_outside_the_label_set_names_its_line(tmp_path):
    (tmp_path / "train.tsv").write_text("text\tlabel\na\tpos\nb\tneg\n")
    (tmp_path / "dev.tsv").write_text("text\tlabel\nc\tpos\nd\tmaybe\n")
    with pytest.raises(DataError, match=r"dev.tsv:3: label 'maybe' is not one of"):
        text_classification(str(tmp_path / "train.tsv"), str(tmp_path / "dev.tsv"))


def test_crlf_files_read_like_lf_files(tmp_path):
    lf, crlf = tmp_path / "lf.txt", tmp_path / "crlf.txt"
    lf.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\n")
    crlf.write_bytes(b"EU B-ORG\r\nrejects O\r\n\r\nPeter B-PER\r\n")
    assert [s.tokens for s in read_conll(lf)] == [s.tokens for s in read_conll(crlf)]


def test_a_bad_byte_in_a_glue_file_names_file_and_line(tmp_path):
    from harness.data.glue import glue

    rte = tmp_path / "RTE"
    rte.mkdir()
    header = "index\tsentence1\tsentence2\tlabel\n"
    (rte / "train.tsv").write_bytes((header + "0\tA man.\tA person.\tentailment\n").encode()
                                    + b"1\tA d\xffg.\tA cat.\tnot_entailment\n")
    (rte / "dev.tsv").write_text(header + "0\tA.\tB.\tentailment\n")
    with pytest.raises(DataError, match=rf"{rte / 'train.tsv'}:3: not UTF-8 text"):
        glue("rte", data_dir=str(tmp_path), source="local")
