"""``hl convert`` and :func:`hlcli.convert.convert` on the real corpora and on bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from hlcli import sentt
from hlcli.cli import app
from hlcli.convert import convert
from hlcli.data.tasks import load_split
from hlcli.data.readers import read_file
from hlcli.errors import HLError, UsageError

runner = CliRunner()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_convert_split_to_stdout_matches_the_corpus(data_dir):
    result = runner.invoke(app, ["convert", "atis", "--split", "val", "--data-dir", str(data_dir), "-o", "-"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in _lines(result.stdout)]
    examples = load_split("atis", "val", data_dir=data_dir)
    assert len(records) == len(examples) == 500
    for record, example in zip(records, examples):
        assert set(record) == {"input", "target", "task", "split"}
        assert (record["task"], record["split"]) == ("atis", "val")
        assert (record["input"], record["target"]) == sentt.encode(example)
        assert sentt.sbio_to_bio(sentt.decode(record["target"], len(example.tokens))) == list(example.tags)


def test_convert_all_splits_to_a_file(data_dir, tmp_path):
    out = tmp_path / "sub" / "movie.jsonl"
    result = runner.invoke(app, ["convert", "movie", "--data-dir", str(data_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    splits = [json.loads(line)["split"] for line in out.read_text(encoding="utf-8").splitlines()]
    for split in ("train", "val", "test"):
        assert splits.count(split) == len(load_split("movie", split, data_dir=data_dir))
    assert len(splits) == 12218
    assert "12218 sentences" in result.stderr
    assert not list(out.parent.glob(".*.tmp"))


def test_convert_to_a_folder_writes_one_file_per_split(data_dir, tmp_path):
    result = convert("snips", to="sentt", output=f"{tmp_path}/out/", output_format="jsonl", data_dir=data_dir)
    assert result.sentences == {"train": 13084, "val": 700, "test": 700}
    assert result.records == result.sentences
    for split, count in result.sentences.items():
        path = tmp_path / "out" / f"snips.{split}.jsonl"
        assert str(path) in result.outputs
        assert len(path.read_text(encoding="utf-8").splitlines()) == count


def test_csv_header_and_rows(data_dir, tmp_path):
    out = tmp_path / "snips.csv"
    result = runner.invoke(
        app, ["convert", "snips", "--split", "test", "--output-format", "csv", "--data-dir", str(data_dir), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "input,target,task,split"
    rows = list(csv.DictReader(io.StringIO(text)))
    examples = load_split("snips", "test", data_dir=data_dir)
    assert len(rows) == len(examples) == 700
    assert (rows[0]["input"], rows[0]["target"]) == sentt.encode(examples[0])


def test_bio_output_reads_back_with_the_jsonl_reader(data_dir, tmp_path):
    out = tmp_path / "mtop.jsonl"
    result = runner.invoke(app, ["convert", "mtop", "--to", "bio", "--split", "val", "--data-dir", str(data_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_file(out, format="jsonl", task="mtop") == load_split("mtop", "val", data_dir=data_dir)


def test_fraction_matches_load_split(data_dir):
    result = convert("restaurant", to="sentt", split="train", output="-", data_dir=data_dir, fraction=0.1, seed=3)
    assert result.sentences["train"] == len(load_split("restaurant", "train", data_dir=data_dir, fraction=0.1, seed=3))


def test_library_prints_nothing(data_dir, tmp_path, capsys):
    convert("atis", to="bio", split="test", output=tmp_path / "a.jsonl", data_dir=data_dir)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_long_sentence_becomes_windows(tmp_path):
    source = tmp_path / "long.jsonl"
    tags = ["O"] * 250
    tags[80:90] = ["B-X"] + ["I-X"] * 9
    source.write_text(json.dumps({"tokens": [f"w{i}" for i in range(250)], "tags": tags}) + "\n", encoding="utf-8")
    out = tmp_path / "long.sentt.jsonl"
    result = convert(str(source), to="sentt", output=out)
    assert result.sentences == {"all": 1} and result.records == {"all": 3}
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    spans = sentt.windows(250)
    labels = [sentt.decode(r["target"], end - start) for r, (start, end) in zip(records, spans)]
    assert labels[1][0] == "I"  # word 84 continues the span that started at word 80
    assert sentt.sbio_to_bio(sentt.stitch(labels, spans, 250)) == tags


def test_malformed_file_exits_1_and_leaves_no_output(tmp_path):
    source = tmp_path / "bad.conll"
    source.write_text("play O\nthe O\nsong B-MUSIC\n\nhello\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["convert", str(source), "--input-format", "conll", "-o", str(out)])
    assert result.exit_code == 1
    error_lines = _lines(result.stderr)
    assert len(error_lines) == 1
    assert f"{source}:5:" in error_lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_existing_output_is_untouched_on_failure(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a"]\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    result = runner.invoke(app, ["convert", str(source), "-o", str(out)])
    assert result.exit_code == 1
    assert f"{source}:2:" in result.stderr
    assert out.read_text(encoding="utf-8") == "previous\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "nosuchcorpus"], "neither a corpus nor an existing file"),
        (["convert", "atis", "--to", "iob2"], "unknown target format 'iob2'"),
        (["convert", "atis", "--split", "dev2"], "unknown split 'dev2'"),
        (["convert", "atis", "--output-format", "xml"], "unknown output format 'xml'"),
        (["convert", "atis", "--fraction", "0"], "--fraction"),
    ],
)
def test_bad_options_exit_2(args, message, data_dir):
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_file_without_format(tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("a O\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--input-format"):
        convert(str(source), to="sentt", output="-")
    with pytest.raises(HLError):
        convert(str(source), to="sentt", output="-", file_format="nosuch")


@pytest.mark.parametrize("name", ["my.bio", "engtrain.bio.txt"])
def test_bio_is_a_format_name_and_inferred_from_the_extension(tmp_path, name):
    source = tmp_path / name
    source.write_text("B-Cuisine\titalian\nO\tplace\n\nO\tcheap\n", encoding="utf-8")
    inferred = convert(str(source), to="bio", output=tmp_path / "a.jsonl")
    named = runner.invoke(app, ["convert", str(source), "--input-format", "bio", "--to", "bio", "-o", str(tmp_path / "b.jsonl")])
    assert named.exit_code == 0, named.output
    assert inferred.total_sentences == 2
    records = [json.loads(line) for line in _lines((tmp_path / "a.jsonl").read_text(encoding="utf-8"))]
    assert [(r["tokens"], r["tags"]) for r in records] == [(["italian", "place"], ["B-Cuisine", "O"]), (["cheap"], ["O"])]
    assert (tmp_path / "b.jsonl").read_text(encoding="utf-8") == (tmp_path / "a.jsonl").read_text(encoding="utf-8")


def test_old_format_option_still_reads_the_input_with_a_deprecation_warning(tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("play O\nAdele B-artist\n", encoding="utf-8")
    result = runner.invoke(app, ["convert", str(source), "--format", "conll", "--to", "bio", "-o", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tags"] == ["O", "B-artist"]
    assert "--format is deprecated; use --input-format" in result.stderr
    both = runner.invoke(app, ["convert", str(source), "--format", "conll", "--input-format", "conll"])
    assert both.exit_code == 2 and "--input-format only" in both.stderr


def test_help_shows_an_example():
    result = runner.invoke(app, ["convert", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and "hl convert atis" in result.stdout
