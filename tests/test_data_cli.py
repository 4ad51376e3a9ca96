"""``hl data stats``: Table 2 on the real corpora, JSON output, errors as one line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hlcli.cli import app

runner = CliRunner()


def test_stats_table(data_dir):
    result = runner.invoke(app, ["data", "stats", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    assert rows["ATIS"] == ["4,478", "500", "893", "83", "68"]
    assert rows["SNIPS"][:4] == ["13,084", "700", "700", "39"]
    assert rows["Movie"][:4] == ["8,798*", "977", "2,443", "12"]
    assert rows["MovieTrivia"][:4] == ["7,035*", "781", "1,953", "12"]
    assert rows["Restaurant"][:4] == ["6,894*", "766", "1,521", "8"]
    assert rows["mTOP"][:4] == ["15,667", "2,235", "4,386", "75"]
    assert rows["mTOD"][:4] == ["30,521", "4,181", "8,621", "16†"]
    text = " ".join(result.stdout.split())
    assert "Movie 9,775, MovieTrivia 7,816, Restaurant 7,660" in text
    assert "the paper reports 9" in text


def test_stats_json_subset(data_dir):
    result = runner.invoke(app, ["data", "stats", "--data-dir", str(data_dir), "--tasks", "atis,movie", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["task"] for row in data] == ["atis", "movie"]
    assert data[1] == {
        "task": "movie",
        "title": "Movie",
        "train": 8798,
        "val": 977,
        "test": 2443,
        "labels": 12,
        "paper_labels": 12,
        "adjacent_same_type": 2,
        "held_out_val": True,
    }


def test_stats_data_dir_from_env(data_dir, monkeypatch):
    monkeypatch.setenv("HL_DATA_DIR", str(data_dir))
    result = runner.invoke(app, ["data", "stats", "--tasks", "snips", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["train"] == 13084


def test_stats_missing_data_dir(tmp_path):
    result = runner.invoke(app, ["data", "stats", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"{tmp_path / 'missing'}: data folder not found (from --data-dir)" in result.stderr
    assert "HL_DATA_DIR" in result.stderr and "Traceback" not in result.output


def test_stats_missing_corpus_folder(tmp_path):
    result = runner.invoke(app, ["data", "stats", "--data-dir", str(tmp_path), "--tasks", "mtod"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'mtod'}: corpus folder for task 'mtod' not found" in result.stderr


def test_stats_unknown_task(data_dir):
    result = runner.invoke(app, ["data", "stats", "--data-dir", str(data_dir), "--tasks", "atis,ner"])
    assert result.exit_code == 2
    assert "unknown task 'ner'; known tasks: atis, movie, movietrivia, mtod, mtop, restaurant, snips" in result.stderr


def test_help_has_example():
    result = runner.invoke(app, ["data", "stats", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "hl data stats --data-dir" in result.output
