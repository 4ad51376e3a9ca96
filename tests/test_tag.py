"""``hl tag`` / tag_lines: formats, one output per input line, streaming, odd input."""

from __future__ import annotations

import itertools
import json
from typing import Sequence

import pytest
from typer.testing import CliRunner

from hlcli.cli import app
from hlcli.errors import UsageError
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.tagging import tag_lines


class RuleTagger(TaggingModel):
    """Capitalised words are NAME chunks (consecutive ones continue the chunk); digits are NUM."""

    method = "rule"

    def __init__(self) -> None:
        super().__init__([TaskSpec("names", ["NAME", "NUM"]), TaskSpec("other", [])])
        self.calls: list[list[list[str]]] = []

    def collate(self, task, examples):
        raise NotImplementedError

    def loss(self, task, batch, *, label_smoothing=0.0):
        raise NotImplementedError

    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        self.calls.append([list(s) for s in sentences])
        out = []
        for sentence in sentences:
            tags, previous = [], "O"
            for word in sentence:
                if word[:1].isupper():
                    tags.append("I-NAME" if previous.endswith("NAME") else "B-NAME")
                elif word.isdigit():
                    tags.append("B-NUM")
                else:
                    tags.append("O")
                previous = tags[-1]
            out.append(tags)
        return out


TRICKY = [
    "Ann met Bob Smith in 2020\n",
    "\n",
    "   \t  \n",
    "tab\tseparated\tNew York\n",
    "emoji 🎉 Paris 🚀 ok\n",
    "RTL שלום Tel Aviv עולם\n",
    "  leading and trailing Spaces   \r\n",
    "no newline at End",
]


def run(lines, fmt, **kwargs):
    return list(tag_lines(RuleTagger(), "names", lines, format=fmt, **kwargs))


def test_sbio_one_line_per_input_line():
    out = run(TRICKY, "sbio")
    assert len(out) == len(TRICKY)
    assert out[0] == "Ann/NAME met/O Bob/NAME Smith/I in/O 2020/NUM"
    assert out[1] == "" and out[2] == ""
    assert out[3] == "tab/O separated/O New/NAME York/I"
    assert out[4] == "emoji/O 🎉/O Paris/NAME 🚀/O ok/O"
    assert out[5] == "RTL/NAME שלום/O Tel/NAME Aviv/I עולם/O"
    assert out[6] == "leading/O and/O trailing/O Spaces/NAME"
    assert out[7] == "no/O newline/O at/O End/NAME"
    assert all("\n" not in line and "\r" not in line for line in out)


def test_conll_one_block_per_input_line():
    out = run(TRICKY, "conll")
    assert len(out) == len(TRICKY)
    assert out[0] == "Ann\tB-NAME\nmet\tO\nBob\tB-NAME\nSmith\tI-NAME\nin\tO\n2020\tB-NUM\n"
    assert out[1] == "" and out[2] == ""
    # What the CLI writes (each block + "\n"): the N-th blank line closes the N-th input line.
    lines = "".join(block + "\n" for block in out).split("\n")[:-1]
    assert lines.count("") == len(TRICKY)
    assert lines[:8] == ["Ann\tB-NAME", "met\tO", "Bob\tB-NAME", "Smith\tI-NAME", "in\tO", "2020\tB-NUM", "", ""]


def test_jsonl_spans_have_offsets_into_the_original_line():
    out = [json.loads(line) for line in run(TRICKY, "jsonl")]
    assert len(out) == len(TRICKY)
    for record, line in zip(out, TRICKY):
        text = line.rstrip("\r\n")
        assert record["text"] == text
        assert len(record["tokens"]) == len(record["tags"]) == len(text.split())
        for span in record["spans"]:
            assert text[span["start"] : span["end"]] == span["text"]
    assert out[0]["spans"] == [
        {"type": "NAME", "start": 0, "end": 3, "text": "Ann"},
        {"type": "NAME", "start": 8, "end": 17, "text": "Bob Smith"},
        {"type": "NUM", "start": 21, "end": 25, "text": "2020"},
    ]
    assert out[3]["spans"] == [{"type": "NAME", "start": 14, "end": 22, "text": "New York"}]
    assert out[5]["spans"][1]["text"] == "Tel Aviv"
    assert out[1] == {"text": "", "tokens": [], "tags": [], "spans": []}
    assert out[2]["tokens"] == [] and out[2]["text"] == "   \t  "


def test_chunks_are_length_sorted_and_order_is_restored():
    model = RuleTagger()
    lines = [" ".join(["w"] * n) + f" End{n}" for n in (5, 1, 3, 0, 4, 2, 6)]
    out = list(tag_lines(model, "names", lines, chunk_size=3))
    assert [line.split()[-1] for line in out] == [f"End{n}/NAME" for n in (5, 1, 3, 0, 4, 2, 6)]
    assert len(model.calls) == 3  # one model call per chunk
    for call in model.calls:
        lengths = [len(s) for s in call]
        assert lengths == sorted(lengths)


def test_streams_without_reading_all_input():
    endless = (f"Line {i}" for i in itertools.count())
    first = next(iter(tag_lines(RuleTagger(), "names", endless, chunk_size=4)))
    assert first == "Line/NAME 0/NUM"


def test_unknown_task_and_format():
    with pytest.raises(UsageError, match="unknown task 'atis'; known tasks: names, other"):
        list(tag_lines(RuleTagger(), "atis", ["x"]))
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        list(tag_lines(RuleTagger(), "names", ["x"], format="xml"))


def test_jsonl_spans_are_the_chunks_the_scorer_reads(monkeypatch):
    """Lenient IOB, as seqeval's default mode: a stray I- opens a chunk, a type change splits one."""
    model = RuleTagger()
    monkeypatch.setattr(model, "predict", lambda task, sentences, batch_size: [["B-A", "I-A", "O", "I-B", "I-B", "B-B", "I-A"]])
    (line,) = tag_lines(model, "names", ["a bb c dd e ff g"], format="jsonl")
    spans = [(s["type"], s["start"], s["end"], s["text"]) for s in json.loads(line)["spans"]]
    assert spans == [("A", 0, 4, "a bb"), ("B", 7, 11, "dd e"), ("B", 12, 14, "ff"), ("A", 15, 16, "g")]


# -- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    import hlcli.checkpoint

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")  # only its presence matters to the fake loader
    monkeypatch.setattr(hlcli.checkpoint, "load_model", lambda path: RuleTagger())
    return folder


def test_cli_stdin_to_stdout_with_invalid_utf8_reported_once(checkpoint):
    data = b"Ann met Bob\n\xff\xfe bad Bytes\n\nmore \xc3 Broken\n"
    result = CliRunner().invoke(app, ["tag", "--run", str(checkpoint), "--task", "names"], input=data)
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n") == ["Ann/NAME met/O Bob/NAME", "\ufffd\ufffd/O bad/O Bytes/NAME", "", "more/O \ufffd/O Broken/NAME", ""]
    assert result.stderr.count("invalid UTF-8") == 1 and "<stdin>:2:" in result.stderr


def test_cli_file_to_file_jsonl_with_hl_run(checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("Ann met Bob\n \nParis\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        ["tag", "--task", "names", "--input", str(source), "--format", "jsonl", "-o", str(target)],
        env={"HL_RUN": str(checkpoint)},
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == ["Ann met Bob", " ", "Paris"]
    assert result.stdout == ""


def test_cli_errors(checkpoint, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["tag", "--run", str(checkpoint), "--task", "atis"], input=b"x\n")
    assert result.exit_code == 2 and "unknown task 'atis'; known tasks: names, other" in result.stderr
    result = runner.invoke(app, ["tag", "--task", "names"], input=b"x\n")
    assert result.exit_code == 2 and "HL_RUN" in result.stderr
    result = runner.invoke(app, ["tag", "--run", str(tmp_path / "nope"), "--task", "names"], input=b"x\n")
    assert result.exit_code == 1 and "no such run or checkpoint folder" in result.stderr
    result = runner.invoke(app, ["tag", "--run", str(checkpoint), "--task", "names", "--input", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "cannot read input" in result.stderr
    assert "Example" in runner.invoke(app, ["tag", "--help"]).stdout
