"""Bad input: every reader answers ``path:line: what is wrong (what was expected)``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hlcli.cli import app
from hlcli.data.readers import read_file
from hlcli.errors import HLError

MTOD_JSON = json.dumps(
    {"tokenizations": [{"tokens": ["set", "alarm"], "tokenSpans": [{"start": 0, "length": 3}, {"start": 4, "length": 5}]}]}
)
MTOD_OK = f"alarm/set_alarm\t4:9:reminder/noun\tset alarm\ten\t{MTOD_JSON}\n"
MTOP8_JSON = json.dumps({"tokens": ["set", "alarm"], "tokenSpans": [{"start": 0, "length": 3}, {"start": 4, "length": 5}]})
MTOP8_OK = f"1\tIN:CREATE_ALARM\t4:9:SL:THING\tset alarm\talarm\ten_XX\t[IN:CREATE_ALARM [SL:THING alarm ] ]\t{MTOP8_JSON}\n"
MTOP5_OK = "Set alarm for 7am\t[IN:CREATE_ALARM [SL:DATE_TIME for 7am ] ]\t[IN:CREATE_ALARM [SL:DATE_TIME for 7am ] ]\talarm\ten_XX\n"

# (format, file content, line the error must name, text the message must contain)
CASES = [
    ("conll", "EU B-ORG\nrejects O\n\nPeter X-PER\n", 4, "unknown BIO tag 'X-PER' (expected 'O', 'B-TYPE' or 'I-TYPE')"),
    ("conll", "EU B-ORG\nrejects\n", 2, "only 1 column"),
    ("mit", "O\ta\nBLOC\tparis\n", 2, "unknown BIO tag 'BLOC'"),
    ("mit", "a\tO\nparis\n", 2, "1 tab-separated columns (expected one 'tag<TAB>token'"),
    ("mit", "a\tO\nb\tO\tO\n", 2, "3 tab-separated columns"),
    ("jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n', 1, "token/tag count mismatch: 2 tokens, 1 tags (expected one tag per token)"),
    ("jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a"], "tags": ["B_X"]}\n', 2, "unknown BIO tag 'B_X'"),
    ("jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a"]\n', 2, "malformed JSON"),
    ("jsonl", '{"words": ["a"], "tags": ["O"]}\n', 1, 'missing "tokens" or "tags" list'),
    ("jsonl", '{"tokens": [], "tags": []}\n', 1, "empty sentence"),
    ("mtod", MTOD_OK + MTOD_OK.replace("4:9:", "4:30:"), 2, "slot span 4:30 outside the utterance (9 characters)"),
    ("mtod", MTOD_OK + MTOD_OK.replace("4:9:", "four:9:"), 2, "malformed slot span 'four:9:reminder/noun'"),
    ("mtod", MTOD_OK + MTOD_OK.replace(MTOD_JSON, MTOD_JSON[:-3]), 2, "malformed tokens JSON"),
    ("mtod", MTOD_OK + MTOD_OK.replace('"length": 5', '"length": 50'), 2, "token span 4:54 outside the utterance"),
    ("mtod", MTOD_OK + MTOD_OK.replace("set alarm", "set  alarm").replace("4:9:", "3:4:"), 2, "slot span 3:4 (reminder/noun) covers no token"),
    ("mtod", MTOD_OK + "alarm/set_alarm\t\tset alarm\ten\n", 2, "4 tab-separated columns (expected 5 tab-separated columns"),
    ("mtop", MTOP8_OK + MTOP8_OK.replace("4:9:SL", "4:12:SL"), 2, "slot span 4:12 outside the utterance"),
    ("mtop", MTOP8_OK + MTOP8_OK.replace("4:9:SL:THING", "4:9:THING"), 2, "malformed slot span '4:9:THING'"),
    ("mtop", MTOP8_OK + MTOP8_OK.replace('"tokens"', '"toks"'), 2, "malformed tokens JSON"),
    ("mtop", MTOP5_OK + MTOP5_OK.replace("for 7am ]", "for 8am ]", 1), 2, "slot text 'for 8am' (DATE_TIME) not found in the utterance"),
    ("mtop", MTOP5_OK + MTOP5_OK.replace("[IN:CREATE_ALARM [SL", "[IN:CREATE_ALARM [SL:X [SL", 1), 2, "malformed parse"),
    ("mtop", MTOP5_OK + "Set alarm\t[IN:X ]\talarm\n", 2, "3 tab-separated columns"),
    ("mtop", MTOP5_OK + MTOP8_OK, 2, "8 tab-separated columns"),
]


@pytest.mark.parametrize(("fmt", "content", "line", "message"), CASES)
def test_bad_file(tmp_path, fmt, content, line, message):
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(HLError) as caught:
        read_file(path, format=fmt, task="t")
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("fmt", ["conll", "mit", "jsonl", "mtop", "mtod"])
def test_empty_file(tmp_path, fmt):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(HLError, match=rf"^{path}: empty file \(expected "):
        read_file(path, format=fmt, task="t")


@pytest.mark.parametrize("fmt", ["conll", "mit", "jsonl", "mtop", "mtod"])
def test_undecodable_bytes_name_the_line(tmp_path, fmt):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"a\tO\nb\tO\n\nd\xe9j\xe0\tO\n")
    with pytest.raises(HLError, match=rf"^{path}:4: undecodable bytes at column 2 \(expected UTF-8 text\)"):
        read_file(path, format=fmt, task="t")


@pytest.mark.parametrize("fmt", ["conll", "mit", "jsonl", "mtop", "mtod", "goo"])
def test_missing_path(tmp_path, fmt):
    path = tmp_path / "nope"
    with pytest.raises(HLError, match=rf"^{path}: (file|folder) not found \(expected .+\)"):
        read_file(path, format=fmt, task="t")


def test_folder_given_for_file(tmp_path):
    with pytest.raises(HLError, match=rf"^{tmp_path}: is a folder, not a file"):
        read_file(tmp_path, format="conll", task="t")


def _goo(folder: Path, seq_in: str, seq_out: str, label: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text(seq_in)
    (folder / "seq.out").write_text(seq_out)
    if label is not None:
        (folder / "label").write_text(label)
    return folder


def test_goo_errors(tmp_path):
    folder = _goo(tmp_path / "a", "a b\nc d\n", "O O\nO\n", "x\ny\n")
    with pytest.raises(HLError, match=rf"^{folder / 'seq.out'}:2: token/tag count mismatch: 2 tokens in seq.in, 1 tags"):
        read_file(folder, format="goo", task="t")
    folder = _goo(tmp_path / "b", "a b\nc d\n", "O O\nO\n", "x\n")
    with pytest.raises(HLError, match=rf"^{folder / 'label'}: 1 lines but seq.in has 2"):
        read_file(folder, format="goo", task="t")
    folder = _goo(tmp_path / "c", "a b\n", "O I_X\n", None)
    with pytest.raises(HLError, match=rf"^{folder / 'seq.out'}:1: unknown BIO tag 'I_X'"):
        read_file(folder, format="goo", task="t")
    (tmp_path / "d").mkdir()
    with pytest.raises(HLError, match=rf"^{tmp_path / 'd' / 'seq.in'}: file not found \(expected a folder with line-aligned seq.in"):
        read_file(tmp_path / "d", format="goo", task="t")
    folder = _goo(tmp_path / "e", "a b\n", "O B-X\n", None)
    assert read_file(folder, format="goo", task="t")[0].intent is None  # label is optional


def test_mit_without_tag_column(tmp_path):
    path = tmp_path / "words.bio"
    path.write_text("a\tb\nc\td\n")
    with pytest.raises(HLError, match=rf"^{path}:1: no column of BIO tags found"):
        read_file(path, format="mit", task="t")


def test_i_after_o_is_kept_not_repaired(tmp_path):
    path = tmp_path / "loose.conll"
    path.write_text("a O\nb I-X\n")
    assert read_file(path, format="conll", task="t")[0].tags == ("O", "I-X")


def test_cli_bad_corpus_file_exit_1_no_traceback(tmp_path):
    _goo(tmp_path / "atis" / "train", "a b\n", "O B-X\n", "x\n")
    _goo(tmp_path / "atis" / "valid", "a b\n", "O B-X\n", "x\n")
    _goo(tmp_path / "atis" / "test", "a b\nc\n", "O B-X\nBLOC\n", "x\nx\n")
    result = CliRunner().invoke(app, ["data", "stats", "--data-dir", str(tmp_path), "--tasks", "atis"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'atis' / 'test' / 'seq.out'}:2: unknown BIO tag 'BLOC'" in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0  # one line
